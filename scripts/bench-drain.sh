#!/usr/bin/env bash
# Drain benchmark of the order pipeline (issue 4's target): a sale of DRAIN_UNITS units
# is sold out by wrk as fast as the daemon takes reservations, and the script reports,
# for each queue plugin, how long after the last reservation the last order is in
# MariaDB, how fast the writer inserted orders, and how fast reservations came in.
# Target: the whole sale in MariaDB within 10 s of its last reservation.
#
#   scripts/bench-drain.sh        (redis_streams, then kafka_rest)
#
# Environment: DRAIN_UNITS [100000], DRAIN_BUYERS [1000] (per-user limit =
# units / buyers), DRAIN_CONNECTIONS [128], DRAIN_PLUGINS ["redis_streams kafka_rest"].
# Everything it writes is under build-drain/drain/. It uses Redis db 15 and the
# MariaDB databases skdrain_*; it stops what it started.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BUILD=$ROOT/build-drain
OUT=$BUILD/drain
UNITS=${DRAIN_UNITS:-100000}
BUYERS=${DRAIN_BUYERS:-1000}
CONNS=${DRAIN_CONNECTIONS:-128}
PLUGINS=${DRAIN_PLUGINS:-"redis_streams kafka_rest"}
RDB=15
SECRET=drain-jwt-secret-0123456789
TOKEN=drain-admin-token-0123456789
LIMIT=$(( (UNITS + BUYERS - 1) / BUYERS ))

echo "== build (build-drain, -O2)"
scripts/deps.sh >/dev/null
[ -f configure ] || ./autogen.sh >/dev/null 2>&1
mkdir -p "$OUT"
(cd "$BUILD" && { [ -f Makefile ] || ../configure --quiet; } && make -j2 >/dev/null)
stack_was_up=1
case "$(scripts/stack.sh status)" in *"redis: up"*"mariadb: up"*) ;; *) stack_was_up=0 ;; esac
scripts/stack.sh start >/dev/null
eval "$(scripts/stack.sh env)"

DAEMON= KAFKA=
cleanup() {
    [ -n "$DAEMON" ] && kill -TERM "$DAEMON" 2>/dev/null && wait "$DAEMON" 2>/dev/null || true
    [ -n "$KAFKA" ] && kill -TERM "$KAFKA" 2>/dev/null && wait "$KAFKA" 2>/dev/null || true
    [ $stack_was_up = 1 ] || scripts/stack.sh stop >/dev/null 2>&1 || true
}
trap cleanup EXIT
sql() { mariadb --no-defaults -h127.0.0.1 -P"$SK_TEST_MYSQL_PORT" -u"$SK_TEST_MYSQL_USER" -p"$SK_TEST_MYSQL_PASSWORD" -N -e "$1" ${2:-}; }
rcli() { redis-cli -h 127.0.0.1 -p "$SK_TEST_REDIS_PORT" -n $RDB "$@"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
iso() { date -u -d "@$(( $(date +%s) + $1 ))" +%Y-%m-%dT%H:%M:%SZ; }

"$BUILD/core/seckill-mint-token" -s "$SECRET" -u 1 -n "$BUYERS" -t 7200 >"$OUT/tokens"
results=()
for plugin in $PLUGINS; do
    echo "== $plugin: $UNITS units, $BUYERS buyers (limit $LIMIT each), wrk $CONNS connections"
    db=skdrain_$plugin
    sql "DROP DATABASE IF EXISTS $db; CREATE DATABASE $db"
    rcli FLUSHDB >/dev/null
    CP=$(free_port); AP=$(free_port)
    queue_conf="{name: redis_streams, config: {host: 127.0.0.1, port: $SK_TEST_REDIS_PORT, db: $RDB}}"
    if [ "$plugin" = kafka_rest ]; then
        KP=$(free_port)
        rm -rf "$OUT/kafka" && mkdir -p "$OUT/kafka"
        /usr/bin/python3 scripts/kafka-rest-emulator.py --port "$KP" --data "$OUT/kafka" >"$OUT/kafka.log" 2>&1 &
        KAFKA=$!
        sleep 1
        queue_conf="{name: kafka_rest, config: {url: \"http://127.0.0.1:$KP\", topic: drain, relay_batch: 5000, max_bytes: 8388608, host: 127.0.0.1, port: $SK_TEST_REDIS_PORT, db: $RDB}}"
    fi
    cat >"$OUT/$plugin.yaml" <<YAML
log_level: warn
workers: 2
listen: {client: "127.0.0.1:$CP", admin: "127.0.0.1:$AP"}
http: {max_connections: 20000}
mariadb: {host: 127.0.0.1, port: $SK_TEST_MYSQL_PORT, user: $SK_TEST_MYSQL_USER, password: $SK_TEST_MYSQL_PASSWORD, database: $db}
auth: {jwt_secret: $SECRET, admin_token: $TOKEN}
order_timeout: 2h
plugin_dir: $BUILD/plugins/.libs
plugins:
  stock: {name: redis, config: {host: 127.0.0.1, port: $SK_TEST_REDIS_PORT, db: $RDB}}
  queue: $queue_conf
YAML
    "$BUILD/core/seckilld" -c "$OUT/$plugin.yaml" 2>"$OUT/$plugin.log" &
    DAEMON=$!
    for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$CP/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
    act=$(curl -sS -H "Authorization: Bearer $TOKEN" -d "{\"name\":\"drain\",\"starts_at\":\"$(iso -5)\",
      \"ends_at\":\"$(iso 7200)\",\"items\":[{\"sku\":\"D\",\"title\":\"D\",\"price_cents\":100,
      \"seckill_price_cents\":10,\"stock\":$UNITS,\"per_user_limit\":$LIMIT}]}" "http://127.0.0.1:$AP/admin/v1/activities")
    aid=$(echo "$act" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
    iid=$(echo "$act" | python3 -c 'import json,sys; print(json.load(sys.stdin)["items"][0]["id"])')
    curl -sS -H "Authorization: Bearer $TOKEN" -X POST "http://127.0.0.1:$AP/admin/v1/activities/$aid/publish" >/dev/null
    for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$CP/api/v1/items/$iid" >/dev/null 2>&1 && break; sleep 0.1; done

    # Sell out: wrk runs until the stock is gone (polled), then stops.
    wrk -t2 -c"$CONNS" -d120s -s scripts/bench/seckill.lua "http://127.0.0.1:$CP/api/v1/seckill" \
        -- reserve 2 "$OUT/tokens" "$aid" "$iid" >"$OUT/$plugin.wrk" 2>&1 &
    WRK=$!
    while [ "$(rcli GET "sk:{item:$iid}:stock")" != 0 ] && kill -0 $WRK 2>/dev/null; do sleep 0.1; done
    kill -INT $WRK 2>/dev/null || true
    wait $WRK 2>/dev/null || true
    sold=$((UNITS - $(rcli GET "sk:{item:$iid}:stock")))

    # Drain: wait until every unit sold is an order.
    for _ in $(seq 1 1200); do
        n=$(sql "SELECT COUNT(*) FROM orders WHERE item_id = $iid" "$db")
        [ "$n" -ge "$sold" ] && break
        sleep 0.1
    done
    read -r first_res last_res first_ins last_ins < <(sql "SELECT UNIX_TIMESTAMP(MIN(reserved_at)),
        UNIX_TIMESTAMP(MAX(reserved_at)), UNIX_TIMESTAMP(MIN(created_at)), UNIX_TIMESTAMP(MAX(created_at))
        FROM orders WHERE item_id = $iid" "$db")
    line=$(python3 - "$plugin" "$sold" "$n" "$first_res" "$last_res" "$first_ins" "$last_ins" <<'PY'
import sys
p, sold, n, fr, lr, fi, li = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), *map(float, sys.argv[4:])
drain = li - lr
res_rate = sold / max(lr - fr, 1e-3)
ins_rate = n / max(li - fi, 1e-3)
met = "yes" if n == sold and drain <= 10 else "NO"
print("%-14s units %7d  orders %7d  reservations/s %8.0f  orders/s written %8.0f  drain after last "
      "reservation %6.2f s  target <= 10 s: %s" % (p, sold, n, res_rate, ins_rate, drain, met))
PY
)
    echo "$line"
    results+=("$line")
    kill -TERM "$DAEMON"; wait "$DAEMON" 2>/dev/null || true; DAEMON=
    if [ -n "$KAFKA" ]; then kill -TERM "$KAFKA"; wait "$KAFKA" 2>/dev/null || true; KAFKA=; fi
done
echo
echo "== drain figures ($(nproc) cores, wrk on the same machine)"
printf '%s\n' "${results[@]}"
