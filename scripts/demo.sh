#!/usr/bin/env bash
# The demo sale, end to end, on a fresh Debian 12 machine: installs what is
# missing, builds, starts the private stack and seckilld with the example config,
# then runs a sale through the admin API and prints what happened.
# What the demo covers grows with the product: today an operator creates an
# activity, schedules it, and watches the daemon publish it to Redis on time,
# start it and end it.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BUILD=$ROOT/build-demo
ADMIN_TOKEN=${SECKILL_ADMIN_TOKEN:-demo-admin-token-change-me-0123456789}

say() { printf '\n== %s\n' "$*"; }

say "dependencies and build"
scripts/deps.sh
./autogen.sh >/dev/null 2>&1
mkdir -p "$BUILD"
(cd "$BUILD" && { [ -f Makefile ] || ../configure --quiet; } && make -j2 >/dev/null)

say "private stack"
scripts/stack.sh start
eval "$(scripts/stack.sh env)"

# The example config, with the plugins taken from the build tree.
mkdir -p .stack/demo
cp config/seckilld.yaml .stack/demo/seckilld.yaml
printf '\nplugin_dir: %s/plugins/.libs\n' "$BUILD" >> .stack/demo/seckilld.yaml
export SECKILL_ADMIN_TOKEN=$ADMIN_TOKEN
"$BUILD/core/seckilld" --check-config -c .stack/demo/seckilld.yaml

say "seckilld"
"$BUILD/core/seckilld" -c .stack/demo/seckilld.yaml 2>.stack/demo/seckilld.log &
DAEMON=$!
trap 'kill -TERM $DAEMON 2>/dev/null; wait $DAEMON 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -fsS http://127.0.0.1:8080/healthz >/dev/null 2>&1 && break; sleep 0.1; done
curl -fsS http://127.0.0.1:8080/readyz; echo

admin() { # admin METHOD PATH [BODY]
    curl -sS -X "$1" -H "Authorization: Bearer $ADMIN_TOKEN" ${3:+-H 'Content-Type: application/json' -d "$3"} \
        "http://127.0.0.1:8081$2"
}
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
at() { date -u -d "@$(( $(date +%s) + $1 ))" +%Y-%m-%dT%H:%M:%SZ; }

say "an operator creates an activity (publish in 3 s, start in 6 s, end in 12 s)"
BODY=$(cat <<JSON
{"name":"Demo flash sale","starts_at":"$(at 6)","ends_at":"$(at 12)",
 "items":[{"sku":"PHONE-X","title":"秒杀手机 X","price_cents":399900,"seckill_price_cents":99900,"stock":1000,"per_user_limit":1},
          {"sku":"EARBUDS","title":"Earbuds","price_cents":59900,"seckill_price_cents":9900,"stock":5000,"per_user_limit":2}]}
JSON
)
ID=$(admin POST /admin/v1/activities "$BODY" | json 'd["id"]')
echo "activity $ID created"
admin POST "/admin/v1/activities/$ID/publish" "{\"at\":\"$(at 3)\"}" | json '"state: "+d["state"]+", publish_at: "+d["publish_at"]'

say "the scheduler moves it through its states"
last=""
for _ in $(seq 1 160); do
    state=$(admin GET "/admin/v1/activities/$ID" | json 'd["state"]')
    if [ "$state" != "$last" ]; then
        echo "$(date -u +%H:%M:%S) $state"
        if [ "$state" = published ] || [ "$state" = running ]; then
            admin GET "/admin/v1/activities/$ID/stock" |
                json '"\n".join("   item %d %-8s initial %d remaining %d (%s)" % (i["item_id"], i["sku"], i["initial"], i["remaining"], i["sale_state"]) for i in d["items"])'
        fi
        last=$state
    fi
    [ "$state" = ended ] && break
    sleep 0.1
done

say "summary"
admin GET "/admin/v1/activities/$ID/stock" |
    json '"\n".join("item %d %-8s initial %d reserved %d paid %d remaining %d" % (i["item_id"], i["sku"], i["initial"], i["reserved"], i["paid"], i["remaining"]) for i in d["items"])'
curl -fsS http://127.0.0.1:8080/metrics | grep -E '^seckill_http_requests_total' | head -5
echo "daemon log: .stack/demo/seckilld.log; stop the stack with scripts/stack.sh stop"
