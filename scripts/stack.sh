#!/usr/bin/env bash
# The private stack: redis-server and mariadbd on loopback, on non-default ports,
# with their data under .stack/ (git-ignored). Idempotent: `start` reuses what runs.
#
#   scripts/stack.sh start     start both (installs nothing: see scripts/deps.sh)
#   scripts/stack.sh stop      stop both cleanly
#   scripts/stack.sh status    say what runs
#   scripts/stack.sh env       print the SK_TEST_* exports for tests and tools
#   scripts/stack.sh restart-redis | restart-mariadb   (for failure tests)
#
# Environment: SK_STACK_DIR (default <repo>/.stack), SK_REDIS_PORT (6390),
# SK_MYSQL_PORT (3390).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=${SK_STACK_DIR:-$ROOT/.stack}
REDIS_PORT=${SK_REDIS_PORT:-6390}
MYSQL_PORT=${SK_MYSQL_PORT:-3390}
MYSQL_USER=seckill
MYSQL_PASSWORD=seckill
PATH=$PATH:/usr/sbin:/sbin

mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
MYSQL_SOCK=$DIR/mariadb/mariadbd.sock

log() { echo "stack: $*" >&2; }
die() { log "$*"; exit 1; }

redis_up() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; }
mysql_root() { mariadb --no-defaults -uroot --socket="$MYSQL_SOCK" "$@"; }
mysql_up() { mariadb-admin --no-defaults -uroot --socket="$MYSQL_SOCK" ping >/dev/null 2>&1; }

wait_for() { # wait_for SECONDS CMD...
    local deadline=$((SECONDS + $1)); shift
    until "$@"; do
        [ $SECONDS -lt $deadline ] || return 1
        sleep 0.2
    done
}

start_redis() {
    if redis_up; then log "redis already on 127.0.0.1:$REDIS_PORT"; return; fi
    command -v redis-server >/dev/null || die "redis-server missing: run scripts/deps.sh"
    mkdir -p "$DIR/redis"
    # appendfsync always: a reservation answered to a buyer is on disk (SPEC §3).
    redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$DIR/redis" \
        --daemonize yes --pidfile "$DIR/redis/redis.pid" --logfile "$DIR/redis/redis.log" \
        --appendonly yes --appendfsync always --save "" --protected-mode yes \
        --maxclients 20000 >/dev/null
    wait_for 10 redis_up || die "redis did not start; see $DIR/redis/redis.log"
    log "redis on 127.0.0.1:$REDIS_PORT (AOF, appendfsync always)"
}

start_mariadb() {
    if mysql_up; then log "mariadb already on 127.0.0.1:$MYSQL_PORT"; return; fi
    command -v mariadbd >/dev/null || die "mariadbd missing: run scripts/deps.sh"
    mkdir -p "$DIR/mariadb"
    local fresh=0
    if [ ! -d "$DIR/mariadb/data/mysql" ]; then
        fresh=1
        mariadb-install-db --no-defaults --datadir="$DIR/mariadb/data" --user="$(id -un)" \
            --auth-root-authentication-method=socket --skip-test-db >"$DIR/mariadb/install.log" 2>&1 \
            || die "mariadb-install-db failed; see $DIR/mariadb/install.log"
    fi
    # setsid: the server outlives this script and ignores the caller's terminal.
    setsid mariadbd --no-defaults --datadir="$DIR/mariadb/data" --port="$MYSQL_PORT" \
        --bind-address=127.0.0.1 --socket="$MYSQL_SOCK" --pid-file="$DIR/mariadb/mariadbd.pid" \
        --log-error="$DIR/mariadb/error.log" --user="$(id -un)" --skip-name-resolve \
        --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci \
        --default-time-zone=+00:00 --innodb-buffer-pool-size=256M \
        --innodb-flush-log-at-trx-commit=1 --max-connections=500 \
        </dev/null >/dev/null 2>&1 &
    wait_for 60 mysql_up || die "mariadbd did not start; see $DIR/mariadb/error.log"
    if [ $fresh = 1 ]; then
        mysql_root <<SQL
CREATE USER IF NOT EXISTS '$MYSQL_USER'@'127.0.0.1' IDENTIFIED BY '$MYSQL_PASSWORD';
CREATE USER IF NOT EXISTS '$MYSQL_USER'@'localhost' IDENTIFIED BY '$MYSQL_PASSWORD';
GRANT ALL PRIVILEGES ON *.* TO '$MYSQL_USER'@'127.0.0.1';
GRANT ALL PRIVILEGES ON *.* TO '$MYSQL_USER'@'localhost';
CREATE DATABASE IF NOT EXISTS seckill CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
FLUSH PRIVILEGES;
SQL
    fi
    log "mariadb on 127.0.0.1:$MYSQL_PORT (user $MYSQL_USER, database seckill)"
}

stop_redis() {
    if redis_up; then
        redis-cli -h 127.0.0.1 -p "$REDIS_PORT" shutdown >/dev/null 2>&1 || true
        wait_for 10 bash -c "! redis-cli -h 127.0.0.1 -p $REDIS_PORT ping >/dev/null 2>&1" || log "redis still answering"
        log "redis stopped"
    fi
}

stop_mariadb() {
    if mysql_up; then
        mariadb-admin --no-defaults -uroot --socket="$MYSQL_SOCK" shutdown >/dev/null 2>&1 || true
        log "mariadb stopped"
    elif [ -f "$DIR/mariadb/mariadbd.pid" ] && kill -0 "$(cat "$DIR/mariadb/mariadbd.pid")" 2>/dev/null; then
        kill "$(cat "$DIR/mariadb/mariadbd.pid")"
        log "mariadb stopped"
    fi
}

case "${1:-}" in
start) start_redis; start_mariadb ;;
stop) stop_redis; stop_mariadb ;;
restart-redis) stop_redis; start_redis ;;
restart-mariadb) stop_mariadb; start_mariadb ;;
status)
    if redis_up; then echo "redis: up on 127.0.0.1:$REDIS_PORT"; else echo "redis: down"; fi
    if mysql_up; then echo "mariadb: up on 127.0.0.1:$MYSQL_PORT"; else echo "mariadb: down"; fi ;;
env)
    cat <<ENV
export SK_TEST_REDIS_HOST=127.0.0.1
export SK_TEST_REDIS_PORT=$REDIS_PORT
export SK_TEST_MYSQL_HOST=127.0.0.1
export SK_TEST_MYSQL_PORT=$MYSQL_PORT
export SK_TEST_MYSQL_USER=$MYSQL_USER
export SK_TEST_MYSQL_PASSWORD=$MYSQL_PASSWORD
export SK_STACK_DIR=$DIR
ENV
    ;;
*) echo "usage: $0 start|stop|status|env|restart-redis|restart-mariadb" >&2; exit 2 ;;
esac
