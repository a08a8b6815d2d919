#!/usr/bin/env bash
# Start seckilld under valgrind against the private stack, ask it something on
# both listeners, stop it with SIGTERM and fail on any error or definite leak.
# usage: scripts/valgrind-daemon.sh BUILD_DIR
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "${1:?usage: $0 BUILD_DIR}" && pwd)
eval "$("$ROOT/scripts/stack.sh" env)"
WORK=$(mktemp -d /tmp/sk-valgrind-XXXXXX)
trap 'rm -rf "$WORK"' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
CP=$(free_port); AP=$(free_port)
mariadb --no-defaults -h127.0.0.1 -P"$SK_TEST_MYSQL_PORT" -u"$SK_TEST_MYSQL_USER" -p"$SK_TEST_MYSQL_PASSWORD" \
    -e 'DROP DATABASE IF EXISTS sk_valgrind; CREATE DATABASE sk_valgrind'
cat >"$WORK/seckilld.yaml" <<YAML
log_level: info
workers: 2
listen: {client: "127.0.0.1:$CP", admin: "127.0.0.1:$AP"}
mariadb: {host: 127.0.0.1, port: $SK_TEST_MYSQL_PORT, user: $SK_TEST_MYSQL_USER, password: $SK_TEST_MYSQL_PASSWORD, database: sk_valgrind}
auth: {jwt_secret: valgrind-jwt-secret-0123456789, admin_token: valgrind-admin-token-0123456789}
plugin_dir: $BUILD/plugins/.libs
plugins:
  stock: {name: redis, config: {host: 127.0.0.1, port: $SK_TEST_REDIS_PORT, db: 14}}
YAML
valgrind --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
    --suppressions="$ROOT/tests/valgrind.supp" \
    --show-leak-kinds=definite --log-file="$WORK/valgrind.log" \
    "$BUILD/core/seckilld" -c "$WORK/seckilld.yaml" 2>"$WORK/daemon.log" &
PID=$!
for _ in $(seq 1 300); do
    curl -fsS "http://127.0.0.1:$CP/healthz" >/dev/null 2>&1 && break
    kill -0 $PID 2>/dev/null || break
    sleep 0.2
done
curl -fsS "http://127.0.0.1:$CP/readyz" >/dev/null
curl -fsS "http://127.0.0.1:$CP/metrics" >/dev/null
curl -fsS -H "Authorization: Bearer valgrind-admin-token-0123456789" \
    -d '{"name":"vg","starts_at":"2030-01-01T00:00:00Z","ends_at":"2030-01-02T00:00:00Z","items":[{"sku":"a","title":"A","price_cents":100,"seckill_price_cents":50,"stock":5}]}' \
    "http://127.0.0.1:$AP/admin/v1/activities" >/dev/null
kill -TERM $PID
status=0; wait $PID || status=$?
if [ $status -ne 0 ]; then
    echo "valgrind: seckilld exited with $status"; cat "$WORK/valgrind.log"; tail -n 30 "$WORK/daemon.log"; exit 1
fi
if ! grep -q "\[daemon\] stopped" "$WORK/daemon.log"; then
    echo "valgrind: seckilld did not go through its graceful stop"; tail -n 30 "$WORK/daemon.log"; exit 1
fi
echo "valgrind: clean start, requests and graceful shutdown ($(grep -c . "$WORK/daemon.log") log lines, no errors, no definite leaks)"
