#!/usr/bin/env bash
# Failover test (SPEC §3): a sale goes on while MariaDB and then Redis are killed with
# SIGKILL and started again. Afterwards every reservation answered to a buyer is
# exactly one MariaDB order, units reserved + units left = initial stock, no buyer
# holds more than the limit. It restarts the private stack's servers, so it runs
# alone, after the parallel suites (scripts/test.sh calls it).
#
# usage: scripts/failover-test.sh BUILD_DIR
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "${1:?usage: $0 BUILD_DIR}" && pwd)
cd "$ROOT"
eval "$(scripts/stack.sh env)"
WORK=$(mktemp -d /tmp/sk-failover-XXXXXX)
DAEMON_PID=
cleanup() {
    [ -n "$DAEMON_PID" ] && kill -TERM "$DAEMON_PID" 2>/dev/null && wait "$DAEMON_PID" 2>/dev/null || true
    scripts/stack.sh start >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT
fail() { echo "failover: FAIL: $*"; tail -n 40 "$WORK/daemon.log"; exit 1; }

DB=sk_failover
RDB=13
SECRET=failover-jwt-secret-0123456789
TOKEN=failover-admin-token-0123456789
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
CP=$(free_port); AP=$(free_port)
sql() { mariadb --no-defaults -h127.0.0.1 -P"$SK_TEST_MYSQL_PORT" -u"$SK_TEST_MYSQL_USER" -p"$SK_TEST_MYSQL_PASSWORD" -N -e "$1" ${2:-}; }
rcli() { redis-cli -h 127.0.0.1 -p "$SK_TEST_REDIS_PORT" -n $RDB "$@"; }
sql "DROP DATABASE IF EXISTS $DB; CREATE DATABASE $DB"
rcli FLUSHDB >/dev/null

cat >"$WORK/seckilld.yaml" <<YAML
log_level: info
workers: 2
listen: {client: "127.0.0.1:$CP", admin: "127.0.0.1:$AP"}
mariadb: {host: 127.0.0.1, port: $SK_TEST_MYSQL_PORT, user: $SK_TEST_MYSQL_USER, password: $SK_TEST_MYSQL_PASSWORD, database: $DB}
auth: {jwt_secret: $SECRET, admin_token: $TOKEN}
scheduler: {tick_ms: 100}
plugin_dir: $BUILD/plugins/.libs
plugins:
  stock: {name: redis, config: {host: 127.0.0.1, port: $SK_TEST_REDIS_PORT, db: $RDB}}
  queue: {name: redis_streams, config: {host: 127.0.0.1, port: $SK_TEST_REDIS_PORT, db: $RDB, claim_idle_ms: 2000}}
YAML
"$BUILD/core/seckilld" -c "$WORK/seckilld.yaml" 2>"$WORK/daemon.log" &
DAEMON_PID=$!
for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$CP/healthz" >/dev/null 2>&1 && break; sleep 0.1; done

STOCK=3000
now() { date -u -d "@$(( $(date +%s) + $1 ))" +%Y-%m-%dT%H:%M:%SZ; }
ADM=(-sS -H "Authorization: Bearer $TOKEN")
ACT=$(curl "${ADM[@]}" -d "{\"name\":\"failover\",\"starts_at\":\"$(now -5)\",\"ends_at\":\"$(now 3600)\",
  \"items\":[{\"sku\":\"F\",\"title\":\"F\",\"price_cents\":100,\"seckill_price_cents\":10,\"stock\":$STOCK,\"per_user_limit\":1}]}" \
  "http://127.0.0.1:$AP/admin/v1/activities")
AID=$(echo "$ACT" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
IID=$(echo "$ACT" | python3 -c 'import json,sys; print(json.load(sys.stdin)["items"][0]["id"])')
curl "${ADM[@]}" -X POST "http://127.0.0.1:$AP/admin/v1/activities/$AID/publish" >/dev/null
for _ in $(seq 1 50); do curl -fsS "http://127.0.0.1:$CP/api/v1/items/$IID" >/dev/null 2>&1 && break; sleep 0.1; done

# Buyers: 4 workers, each a stream of distinct buyers, recording every answer.
"$BUILD/core/seckill-mint-token" -s "$SECRET" -u 1 -n 1600 -t 3600 >"$WORK/tokens"
buyers() { # buyers FIRST COUNT OUT
    local first=$1 count=$2 out=$3
    sed -n "${first},$((first + count - 1))p" "$WORK/tokens" | while read -r tok; do
        curl -s -m 5 -H "Authorization: Bearer $tok" -d "{\"activity_id\":$AID,\"item_id\":$IID}" \
            "http://127.0.0.1:$CP/api/v1/seckill" || echo '{"error":{"code":"transport"}}'
        echo
        sleep 0.005
    done >"$out"
}
pids=()
for w in 0 1 2 3; do
    buyers $((w * 400 + 1)) 400 "$WORK/answers.$w" &
    pids+=($!)
done

sleep 1
echo "failover: killing mariadbd (SIGKILL) mid-sale"
kill -9 "$(cat "$SK_STACK_DIR/mariadb/mariadbd.pid")"
sleep 3
scripts/stack.sh start >/dev/null 2>&1
echo "failover: mariadb back"
sleep 1
echo "failover: killing redis-server (SIGKILL) mid-sale"
kill -9 "$(cat "$SK_STACK_DIR/redis/redis.pid")"
sleep 2
scripts/stack.sh start >/dev/null 2>&1
echo "failover: redis back (AOF replayed)"
wait "${pids[@]}"

cat "$WORK"/answers.* >"$WORK/answers"
answered=$(grep -c '"status":"reserved"' "$WORK/answers" || true)
refused=$(grep -c '"error"' "$WORK/answers" || true)
echo "failover: $answered reservations answered, $refused refused or failed (while a store was down)"
[ "$answered" -gt 0 ] || fail "no reservation succeeded"

# Drain: every unit taken in Redis becomes an order.
left=$(rcli GET "sk:{item:$IID}:stock")
taken=$((STOCK - left))
for _ in $(seq 1 200); do
    orders=$(sql "SELECT COUNT(*) FROM orders WHERE item_id = $IID" "$DB")
    [ "$orders" -eq "$taken" ] && break
    sleep 0.2
done
echo "failover: units taken in Redis $taken, orders in MariaDB $orders, units left $left"
[ "$orders" -eq "$taken" ] || fail "orders ($orders) != units reserved ($taken)"
distinct=$(sql "SELECT COUNT(DISTINCT order_no) FROM orders WHERE item_id = $IID" "$DB")
[ "$distinct" -eq "$orders" ] || fail "duplicate order numbers"
over=$(sql "SELECT COUNT(*) FROM (SELECT user_id FROM orders WHERE item_id = $IID GROUP BY user_id HAVING COUNT(*) > 1) x" "$DB")
[ "$over" -eq 0 ] || fail "$over buyers above the limit"
held=$(rcli HLEN "sk:{item:$IID}:orders")
[ $((held + left)) -eq $STOCK ] || fail "units reserved ($held) + units left ($left) != stock ($STOCK)"
# every order number answered to a buyer is an order
grep -o '"order_no":"[^"]*"' "$WORK/answers" | cut -d'"' -f4 >"$WORK/answered_nos"
# one query: how many of the answered numbers are orders (numbers are [0-9A-Z_])
list=$(grep -E '^[0-9A-Z_]+$' "$WORK/answered_nos" | sed "s/.*/'&'/" | paste -sd, -)
found=$(sql "SELECT COUNT(*) FROM orders WHERE order_no IN ($list)" "$DB")
[ "$found" -eq "$answered" ] || fail "$((answered - found)) answered reservations have no order"
echo "failover: PASS: $answered answered reservations, $orders orders, no loss, no duplicate, stock balanced"
echo "1 passed, 0 failed"
