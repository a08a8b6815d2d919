#!/usr/bin/env bash
# The demo sale, end to end, on a fresh Debian 12 machine: installs what is missing,
# builds, starts the private Redis and MariaDB, the Alipay gateway emulator and
# seckilld (config/seckilld.yaml plus the payment plugin and a 20 s order timeout),
# then runs a sale: an operator publishes an activity, a burst of buyers reserves,
# some pay through the emulator, the rest time out and their units go back, and a
# summary checks the invariants.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BUILD=$ROOT/build-demo
DEMO=$ROOT/.stack/demo
ADMIN_TOKEN=${SECKILL_ADMIN_TOKEN:-demo-admin-token-change-me-0123456789}
APP_ID=2021000000000001
ALIPAY_PORT=8090

say() { printf '\n== %s\n' "$*"; }

say "dependencies and build"
scripts/deps.sh
./autogen.sh >/dev/null 2>&1
mkdir -p "$BUILD"
(cd "$BUILD" && { [ -f Makefile ] || ../configure --quiet; } && make -j2 >/dev/null)

say "private stack"
scripts/stack.sh start
eval "$(scripts/stack.sh env)"
mkdir -p "$DEMO"
# A fresh database and Redis db for every demo run.
mariadb --no-defaults -h127.0.0.1 -P"$SK_TEST_MYSQL_PORT" -u"$SK_TEST_MYSQL_USER" -p"$SK_TEST_MYSQL_PASSWORD" \
    -e 'DROP DATABASE IF EXISTS seckill_demo; CREATE DATABASE seckill_demo'
redis-cli -p "$SK_TEST_REDIS_PORT" -n 0 FLUSHDB >/dev/null

say "Alipay gateway emulator (the sandbox stand-in) on 127.0.0.1:$ALIPAY_PORT"
if [ ! -f "$DEMO/app_priv.pem" ]; then
    openssl genrsa -out "$DEMO/app_priv.pem" 2048 2>/dev/null
    openssl rsa -in "$DEMO/app_priv.pem" -pubout -out "$DEMO/app_pub.pem" 2>/dev/null
    openssl genrsa -out "$DEMO/alipay_priv.pem" 2048 2>/dev/null
    openssl rsa -in "$DEMO/alipay_priv.pem" -pubout -out "$DEMO/alipay_pub.pem" 2>/dev/null
fi
rm -rf "$DEMO/alipay-data"
/usr/bin/python3 scripts/alipay-emulator.py --port $ALIPAY_PORT --data "$DEMO/alipay-data" --app-id $APP_ID \
    --app-public-key "$DEMO/app_pub.pem" --alipay-private-key "$DEMO/alipay_priv.pem" \
    >"$DEMO/alipay.log" 2>&1 &
ALIPAY=$!
DAEMON=
cleanup() {
    [ -n "$DAEMON" ] && kill -TERM "$DAEMON" 2>/dev/null && wait "$DAEMON" 2>/dev/null || true
    kill -TERM "$ALIPAY" 2>/dev/null && wait "$ALIPAY" 2>/dev/null || true
}
trap cleanup EXIT
for _ in $(seq 1 50); do grep -q listening "$DEMO/alipay.log" 2>/dev/null && break; sleep 0.1; done

# The example config, with a short order timeout, the demo database, the plugins
# from the build tree and the payment plugin pointed at the emulator.
sed -e 's/^order_timeout: .*/order_timeout: 20s/' -e 's/^  database: seckill$/  database: seckill_demo/' \
    config/seckilld.yaml >"$DEMO/seckilld.yaml"
cat >>"$DEMO/seckilld.yaml" <<YAML
  payment:
    name: alipay
    config:
      gateway_url: http://127.0.0.1:$ALIPAY_PORT/gateway.do
      app_id: "$APP_ID"
      app_private_key_file: $DEMO/app_priv.pem
      alipay_public_key_file: $DEMO/alipay_pub.pem
      notify_url: http://127.0.0.1:8080/api/v1/pay/notify/alipay
      method: precreate

plugin_dir: $BUILD/plugins/.libs
YAML
export SECKILL_ADMIN_TOKEN=$ADMIN_TOKEN
"$BUILD/core/seckilld" --check-config -c "$DEMO/seckilld.yaml"

say "seckilld"
"$BUILD/core/seckilld" -c "$DEMO/seckilld.yaml" 2>"$DEMO/seckilld.log" &
DAEMON=$!
for _ in $(seq 1 100); do curl -fsS http://127.0.0.1:8080/healthz >/dev/null 2>&1 && break; sleep 0.1; done
curl -fsS http://127.0.0.1:8080/readyz; echo

status=0
/usr/bin/python3 scripts/demo_sale.py --admin-token "$ADMIN_TOKEN" --mint "$BUILD/core/seckill-mint-token" \
    --config "$DEMO/seckilld.yaml" --alipay "http://127.0.0.1:$ALIPAY_PORT" --timeout 20 || status=$?
echo
echo "logs: $DEMO/seckilld.log, $DEMO/alipay.log; stop the stack with scripts/stack.sh stop"
exit $status
