#!/usr/bin/env bash
# The benchmark of seckilld's hot path (docs/benchmarks.md explains every phase).
#
#   scripts/bench.sh            build, run every phase, check the stores, print the table
#
# What it does, in one run:
#   1. builds seckilld, seckill-mint-token and the redis plugin in build-bench/
#      (configure --enable-werror, -O2), starts the private stack (scripts/stack.sh),
#      mints one JWT per buyer, reads the plugin's reserve script (text, KEYS, ARGV)
#      from plugins/stock/redis/;
#   2. session 1, the stack's Redis (AOF, appendfsync always): a daemon with its own
#      MariaDB database and Redis key prefix; one activity with a big item (never
#      sells out), a small item (sold out first) and a big item for redis-benchmark;
#      then for each connection count: wrk on GET /healthz (the HTTP ceiling), on
#      POST /api/v1/seckill for the big item, and on the sold-out item, reading the
#      plugin's reserve counters on /metrics around each phase (the mean batch: the
#      plugin sends a connection's reservations of one loop turn as one script call);
#      then redis-benchmark running the plugin's reserve script twice (the Redis
#      ceiling): one reservation per call, and BENCH_RB_BATCH per call; then the
#      daemon's RSS with many keep-alive connections (scripts/bench/hold_conns.py);
#   3. session 2, a private redis-server with appendfsync no (temporary data
#      directory) and a second daemon: the reservation phases and both redis-benchmark
#      runs again, so that the table shows what appendfsync always costs;
#   4. checks every item in Redis (units reserved + units left = initial, buyers'
#      units = orders = log entries, no buyer above the limit), the answers counted
#      by wrk against the units taken and the plugin's counters, and that no phase
#      had an unexpected answer; prints PASS/FAIL lines and the table
#      (scripts/bench/report.py), and under it the closed-loop floor of the latency
#      (Little's law: C connections / throughput).
# Exit status: 0 when every check passes (missed performance targets are reported,
# not fatal, unless BENCH_STRICT=1: then 3), 1 when a check fails or a step breaks.
#
# Environment (defaults in brackets):
#   BENCH_DURATION [10]            seconds per wrk phase
#   BENCH_CONNECTIONS ["64 256"]   wrk connection counts, each a phase of its own
#   BENCH_THREADS [2]              wrk threads
#   BENCH_WORKERS [2]              the daemon's worker threads (workers:)
#   BENCH_BUYERS [100000]          distinct buyers (tokens); per-user limit 1000
#   BENCH_IDLE_CONNECTIONS [10000] idle keep-alive connections for the RSS figure
#   BENCH_REDIS_REQUESTS [300000]  reservations sent by each redis-benchmark run (in
#                                  this many calls at one per call, in 1/B as many
#                                  at B per call)
#   BENCH_RB_BATCH [16]            reservations per call B of the second redis-benchmark
#                                  run of each session (2 to 256)
#   BENCH_PORT [18480]             daemon's client port; the admin port is +1
#   BENCH_NOFSYNC_REDIS_PORT [16391]  the private appendfsync-no redis-server
#   BENCH_DATABASE [skbench]       MariaDB database (dropped and recreated)
#   BENCH_KEY_PREFIX [skbench]     Redis key prefix (its keys are deleted first)
#   BENCH_REDIS_DB [0]             Redis db of the benchmark's keys (scripts/demo.sh
#                                  flushes db 0 when it starts: not both at once)
#   BENCH_KEEP [0]                 1: keep the benchmark's Redis keys afterwards
#   BENCH_QUIET_WAIT [600]         seconds the whole run may wait, before each group of
#                                  measurements, until no test suite (check_*) or
#                                  compiler (cc1) runs and other processes use < 0.3
#                                  core; 0: do not wait
#   BENCH_PERF [0]                 1: perf record the daemon during the last
#                                  reservation phase (build-bench/bench/perf-*.txt)
#   BENCH_STRICT [0]               1: exit 3 when a performance target is missed
# Everything it writes (config, logs, tokens, wrk output, results) is under
# build-bench/bench/. It stops what it started: the daemons, the private redis,
# and the stack if the stack was not running before.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

BUILD=$ROOT/build-bench
OUT=$BUILD/bench
DURATION=${BENCH_DURATION:-10}
CONNECTIONS=${BENCH_CONNECTIONS:-"64 256"}
THREADS=${BENCH_THREADS:-2}
WORKERS=${BENCH_WORKERS:-2}
BUYERS=${BENCH_BUYERS:-100000}
IDLE_CONNS=${BENCH_IDLE_CONNECTIONS:-10000}
REDIS_N=${BENCH_REDIS_REQUESTS:-300000}
RB_BATCH=${BENCH_RB_BATCH:-16}
CLIENT_PORT=${BENCH_PORT:-18480}
ADMIN_PORT=$((CLIENT_PORT + 1))
NOFSYNC_PORT=${BENCH_NOFSYNC_REDIS_PORT:-16391}
DB=${BENCH_DATABASE:-skbench}
PREFIX=${BENCH_KEY_PREFIX:-skbench}
RDB=${BENCH_REDIS_DB:-0}
KEEP=${BENCH_KEEP:-0}
QUIET_WAIT=${BENCH_QUIET_WAIT:-600}
PERF=${BENCH_PERF:-0}
STRICT=${BENCH_STRICT:-0}

BIG_STOCK=10000000 # far above what sells in a run (~ a few hundred thousand)
BIG_LIMIT=1000     # the API's maximum; buyers rotate, so none gets near it
SMALL_STOCK=1000   # the item that is sold out on purpose
SMALL_LIMIT=1
RB_CLIENTS=50      # redis-benchmark -c
RB_PIPELINE=16     # redis-benchmark -P

CLIENT=http://127.0.0.1:$CLIENT_PORT
ADMIN=http://127.0.0.1:$ADMIN_PORT
LUA=$ROOT/scripts/bench/seckill.lua
RESULTS=$OUT/results.txt
TOKENS=$OUT/tokens.txt
JWT_SECRET=bench-jwt-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
ADMIN_TOKEN=bench-admin-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')

say() { printf '\n== %s\n' "$*"; }
log() { echo "bench: $*" >&2; }
die() { log "$*"; exit 1; }

is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }
if ! is_uint "$RDB" || [ "$RDB" -gt 15 ]; then die "BENCH_REDIS_DB must be 0 to 15, not '$RDB'"; fi
for v in DURATION THREADS WORKERS BUYERS IDLE_CONNS REDIS_N CLIENT_PORT NOFSYNC_PORT; do
    if ! is_uint "${!v}" || [ "${!v}" -eq 0 ]; then die "$v must be a positive integer, not '${!v}'"; fi
done
if ! is_uint "$RB_BATCH" || [ "$RB_BATCH" -lt 2 ] || [ "$RB_BATCH" -gt 256 ]; then
    die "BENCH_RB_BATCH must be 2 to 256 reservations per call, not '$RB_BATCH'"
fi
# Two redis-benchmark runs per session take units of one item: they must not sell it out.
[ "$REDIS_N" -le $((BIG_STOCK / 4)) ] || die "BENCH_REDIS_REQUESTS must be at most $((BIG_STOCK / 4))"
is_uint "$QUIET_WAIT" || die "BENCH_QUIET_WAIT must be a number of seconds, not '$QUIET_WAIT'"
[ "$DURATION" -ge 3 ] || die "BENCH_DURATION must be at least 3 seconds"
for c in $CONNECTIONS; do
    if ! is_uint "$c" || [ "$c" -lt "$THREADS" ]; then
        die "BENCH_CONNECTIONS: '$c' is not a number >= BENCH_THREADS ($THREADS)"
    fi
done
[[ $DB =~ ^[A-Za-z0-9_]{1,63}$ ]] || die "BENCH_DATABASE must be letters, digits and _, not '$DB'"
[[ $PREFIX =~ ^[A-Za-z0-9_]{1,40}$ ]] || die "BENCH_KEY_PREFIX must be letters, digits and _, not '$PREFIX'"
[ "$BUYERS" -ge "$THREADS" ] || die "BENCH_BUYERS must be at least BENCH_THREADS"

DAEMON_PID=""
NOFSYNC_PID=""
HOLD_PID=""
PERF_PID=""
TMP=""
STACK_STARTED=0
REDIS_PORT=""
FAILS=0
DISTURBED=0 # 1: measured while the machine was busy

# shellcheck disable=SC2317 # reached through the trap
cleanup() {
    local rc=$?
    set +e
    for pid in "$HOLD_PID" "$PERF_PID"; do
        if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; fi
    done
    stop_daemon
    if [ -n "$NOFSYNC_PID" ]; then
        redis-cli -h 127.0.0.1 -p "$NOFSYNC_PORT" shutdown nosave >/dev/null 2>&1 || kill -TERM "$NOFSYNC_PID" 2>/dev/null
        wait "$NOFSYNC_PID" 2>/dev/null
    fi
    [ -n "$TMP" ] && rm -rf "$TMP"
    # Keys stay after a failure (for a look) and with BENCH_KEEP=1; the next run
    # deletes them first in any case.
    if [ -n "$REDIS_PORT" ]; then
        if [ "$KEEP" != 1 ] && { [ "$rc" = 0 ] || [ "$rc" = 3 ]; }; then
            drop_keys "$REDIS_PORT"
        else
            log "the benchmark's keys are kept in redis 127.0.0.1:$REDIS_PORT db $RDB under $PREFIX:*"
        fi
    fi
    if [ "$STACK_STARTED" = 1 ]; then scripts/stack.sh stop; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- helpers

# Wait until the machine is quiet: no test suite (check_*) or compiler (cc1) runs
# and everything else together keeps less than 0.3 of a core busy for 2 s. On a
# machine whose cores are shared, a build or a suite running next to the benchmark
# makes every figure meaningless.
busy() {
    local b0
    pgrep -f '(^|/)check_[a-z0-9_]+( |$)' >/dev/null && return 0
    pgrep -x cc1 >/dev/null && return 0
    b0=$(busy_ms)
    sleep 2
    [ $(($(busy_ms) - b0)) -ge 600 ]
}
QUIET_LEFT=$QUIET_WAIT # what is left of the waiting budget, for the whole run
wait_quiet() {
    local waited=0
    [ "$QUIET_WAIT" -gt 0 ] || return 0
    while busy; do
        if [ "$QUIET_LEFT" -le 0 ]; then
            log "the machine is still busy and the ${QUIET_WAIT} s waiting budget is spent: measuring anyway"
            DISTURBED=1
            return 0
        fi
        [ "$waited" -gt 0 ] || log "the machine is busy (test suites, compilers or other load): waiting (budget left: ${QUIET_LEFT} s)"
        sleep 10
        waited=$((waited + 12))
        QUIET_LEFT=$((QUIET_LEFT - 12))
    done
}

rcli() { # rcli PORT ARGS...: the benchmark's db of a loopback redis, raw replies
    local port=$1
    shift
    redis-cli -h 127.0.0.1 -p "$port" -n "$RDB" --raw "$@"
}

drop_keys() { # drop_keys PORT: every key of this benchmark's prefix, nothing else
    rcli "$1" --scan --pattern "$PREFIX:*" | xargs -r -n 200 redis-cli -h 127.0.0.1 -p "$1" -n "$RDB" UNLINK >/dev/null
}

mysql_bench() {
    mariadb --no-defaults -h "$SK_TEST_MYSQL_HOST" -P "$SK_TEST_MYSQL_PORT" -u "$SK_TEST_MYSQL_USER" \
        -p"$SK_TEST_MYSQL_PASSWORD" "$@"
}

json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
at() { date -u -d "@$(($(date +%s) + $1))" +%Y-%m-%dT%H:%M:%SZ; }

admin() { # admin METHOD PATH [BODY]: the answer on stdout; a non-2xx answer fails
    curl -sS --fail-with-body -X "$1" -H "Authorization: Bearer $ADMIN_TOKEN" \
        ${3:+-H 'Content-Type: application/json' -d "$3"} "$ADMIN$2"
}

vm_kb() { # vm_kb FIELD: VmRSS or VmHWM of the daemon, in kB
    awk -v f="$1:" '$1 == f { print $2 }' "/proc/$DAEMON_PID/status"
}

# shellcheck disable=SC2317 # called through check
arith() { (($1)); } # arith EXPR: for check, e.g. arith "3 <= 4 && 1 == 1"

check() { # check WHAT CMD...: one PASS/FAIL line
    local what=$1
    shift
    if "$@"; then
        echo "PASS $what"
    else
        echo "FAIL $what"
        FAILS=$((FAILS + 1))
    fi
}

write_config() { # write_config FILE REDIS_PORT
    cat >"$1" <<YAML
# Written by scripts/bench.sh; the example config's settings except: $WORKERS workers,
# warn logging, ports, the benchmark's own database and Redis key prefix, and a
# long idle timeout so that the idle connections of the RSS phase stay open.
log_level: warn
workers: $WORKERS
listen:
  client: 127.0.0.1:$CLIENT_PORT
  admin: 127.0.0.1:$ADMIN_PORT
http:
  max_body_bytes: 16384
  idle_timeout_ms: 120000
  max_connections: 20000
mariadb:
  host: $SK_TEST_MYSQL_HOST
  port: $SK_TEST_MYSQL_PORT
  user: $SK_TEST_MYSQL_USER
  password: $SK_TEST_MYSQL_PASSWORD
  database: $DB
  pool_size: 4
auth:
  jwt_secret: $JWT_SECRET
  admin_token: $ADMIN_TOKEN
order_timeout: 15m
scheduler:
  tick_ms: 250
plugin_dir: $BUILD/plugins/.libs
plugins:
  stock:
    name: redis
    config:
      host: 127.0.0.1
      port: $2
      db: $RDB
      connect_timeout_ms: 1000
      command_timeout_ms: 1000
      key_prefix: $PREFIX
YAML
}

start_daemon() { # start_daemon CONFIG LOG
    if curl -s -o /dev/null "$CLIENT/healthz" || curl -s -o /dev/null "$ADMIN/healthz"; then
        die "something already answers on port $CLIENT_PORT or $ADMIN_PORT: set BENCH_PORT"
    fi
    "$BUILD/core/seckilld" --check-config -c "$1" >/dev/null
    "$BUILD/core/seckilld" -c "$1" >"$2" 2>&1 &
    DAEMON_PID=$!
    for _ in $(seq 1 150); do
        if curl -fsS -o /dev/null "$CLIENT/readyz" 2>/dev/null; then return 0; fi
        kill -0 "$DAEMON_PID" 2>/dev/null || { tail -n 20 "$2" >&2; DAEMON_PID=""; die "seckilld exited; see $2"; }
        sleep 0.1
    done
    die "seckilld not ready within 15 s; see $2"
}

stop_daemon() {
    [ -n "$DAEMON_PID" ] || return 0
    kill -TERM "$DAEMON_PID" 2>/dev/null || true
    for _ in $(seq 1 150); do
        kill -0 "$DAEMON_PID" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$DAEMON_PID" 2>/dev/null; then
        log "seckilld did not stop within 15 s of SIGTERM: SIGKILL"
        kill -KILL "$DAEMON_PID" 2>/dev/null || true
    fi
    wait "$DAEMON_PID" 2>/dev/null || true
    DAEMON_PID=""
}

# new_sale NAME ITEMS_JSON: creates and publishes an activity that starts in 3 s
# and ends in two hours, waits until the daemon's catalog shows it running, and
# sets ACT and ITEM_<SKU> (item ids).
new_sale() {
    local body answer id sku
    body="{\"name\":\"$1\",\"starts_at\":\"$(at 3)\",\"ends_at\":\"$(at 7200)\",\"items\":$2}"
    answer=$(admin POST /admin/v1/activities "$body") || die "cannot create the activity: $answer"
    ACT=$(echo "$answer" | json 'd["id"]')
    while read -r id sku; do
        printf -v "ITEM_$sku" '%s' "$id"
    done < <(echo "$answer" | json '"\n".join("%d %s" % (i["id"], i["sku"]) for i in d["items"])')
    answer=$(admin POST "/admin/v1/activities/$ACT/publish") || die "cannot publish activity $ACT: $answer"
    id=$(echo "$answer" | json 'd["items"][0]["id"]')
    for _ in $(seq 1 150); do
        if [ "$(curl -s "$CLIENT/api/v1/items/$id" | json 'd.get("activity_state", "")' 2>/dev/null)" = running ]; then
            return 0
        fi
        sleep 0.1
    done
    die "activity $ACT is not running in the daemon's catalog 15 s after publishing"
}

items_json() { # items_json SKU:STOCK:LIMIT...
    local out="" sku stock limit
    for spec in "$@"; do
        IFS=: read -r sku stock limit <<<"$spec"
        out+="${out:+,}{\"sku\":\"$sku\",\"title\":\"bench $sku\",\"price_cents\":10000,"
        out+="\"seckill_price_cents\":100,\"stock\":$stock,\"per_user_limit\":$limit}"
    done
    echo "[$out]"
}

wait_line() { # wait_line WORD: until hold_conns.py prints it (60 s)
    for _ in $(seq 1 600); do
        if grep -q "^$1 " "$OUT/hold.out"; then return 0; fi
        kill -0 "$HOLD_PID" 2>/dev/null || { cat "$OUT/hold.err" >&2; die "hold_conns.py failed"; }
        sleep 0.1
    done
    die "hold_conns.py did not say '$1' within 60 s"
}

metric() { # metric NAME{LABELS}: its value on /metrics (0 when absent)
    curl -s "$CLIENT/metrics" | awk -v k="$1" '$1 == k { v = $2 } END { print v + 0 }'
}

# reserve_counters: "CALLS RESERVATIONS" of the redis stock plugin so far, read from
# one /metrics answer: the reserve script calls it sent and the reservations they
# carried (their ratio is the mean batch). Stops the run when /metrics does not
# answer or lacks them: a mean batch of 0 would be read as a figure.
reserve_counters() {
    local page
    page=$(curl -fsS "$CLIENT/metrics") || die "GET $CLIENT/metrics failed"
    echo "$page" | awk '$1 == "seckill_plugin_redis_reserve_calls_total" { c = $2; nc++ }
        $1 == "seckill_plugin_redis_reserve_batched_total" { b = $2; nb++ }
        END { if (nc != 1 || nb != 1) exit 1; printf "%d %d\n", c, b }' \
        || die "the daemon's /metrics lacks seckill_plugin_redis_reserve_calls_total or seckill_plugin_redis_reserve_batched_total"
}

cpu_ms() { # cpu_ms PID: CPU time (user + system) the process used so far, in ms
    awk -v hz="$CLK_TCK" '{ printf "%d\n", ($14 + $15) * 1000 / hz }' "/proc/$1/stat"
}

busy_ms() { # busy_ms: CPU time all processes used so far (every core), in ms
    awk -v hz="$CLK_TCK" '$1 == "cpu" { printf "%d\n", ($2 + $3 + $4 + $7 + $8) * 1000 / hz }' /proc/stat
}

steal_ms() { # steal_ms: time the hypervisor gave our virtual CPUs to others so far, in ms
    awk -v hz="$CLK_TCK" '$1 == "cpu" { printf "%d\n", $9 * 1000 / hz }' /proc/stat
}

# run_wrk PHASE MODE CONNS SECONDS PATH [ITEM]: one wrk run; appends its BENCH line
# and the CPU time the daemon and Redis spent meanwhile to the results, and prints
# a one-line summary. With ITEM (a reservation or sold-out phase) also the plugin's
# reserve calls and the reservations they carried meanwhile, and their ratio, the
# mean batch (reserve_calls, reserve_batched, mean_batch; 0 when no call went out).
run_wrk() {
    local phase=$1 mode=$2 conns=$3 secs=$4 path=$5 item=${6:-} out line d0 r0 b0 s0
    local calls0=0 batched0=0 calls1=0 batched1=0 counters batch_kv="" batch_text=""
    local args=("$mode" "$THREADS")
    [ -z "$item" ] || args+=("$TOKENS" "$ACT" "$item")
    out=$OUT/wrk-$phase-$conns.txt
    if [ -n "$item" ]; then
        counters=$(reserve_counters) || exit 1 # reserve_counters said why
        read -r calls0 batched0 <<<"$counters"
    fi
    d0=$(cpu_ms "$DAEMON_PID")
    r0=$(cpu_ms "$REDIS_PID")
    b0=$(busy_ms)
    s0=$(steal_ms)
    wrk -t "$THREADS" -c "$conns" -d "${secs}s" --timeout 2s -s "$LUA" "$CLIENT$path" -- "${args[@]}" >"$out" 2>&1 \
        || { cat "$out" >&2; die "wrk failed in phase $phase ($conns connections)"; }
    line=$(grep '^BENCH ' "$out") || { cat "$out" >&2; die "wrk printed no BENCH line in phase $phase"; }
    if [ -n "$item" ]; then
        counters=$(reserve_counters) || exit 1
        read -r calls1 batched1 <<<"$counters"
        batch_kv="reserve_calls=$((calls1 - calls0)) reserve_batched=$((batched1 - batched0))"
        batch_kv+=" mean_batch=$(awk -v c=$((calls1 - calls0)) -v b=$((batched1 - batched0)) \
            'BEGIN { printf "%.2f", (c > 0 ? b / c : 0) }')"
        batch_text=$(awk -v c=$((calls1 - calls0)) -v b=$((batched1 - batched0)) 'BEGIN {
            if (c > 0) printf "  mean batch: %.1f reservations per reserve call (%d in %d)", b / c, b, c
            else printf "  no reserve call" }')
    fi
    if [ -n "$item" ] && [ "$(rcli "$REDIS_PORT_NOW" EXISTS "$PREFIX:{item:$item}:meta")" != 1 ]; then
        die "item $item is gone from redis 127.0.0.1:$REDIS_PORT_NOW db $RDB during phase $phase (did something flush it? scripts/demo.sh flushes db 0)"
    fi
    echo "phase=$phase mode=$mode conns=$conns item=${item:-0} ${line#BENCH}" \
        "daemon_cpu_ms=$(($(cpu_ms "$DAEMON_PID") - d0)) redis_cpu_ms=$(($(cpu_ms "$REDIS_PID") - r0))" \
        "busy_cpu_ms=$(($(busy_ms) - b0)) steal_ms=$(($(steal_ms) - s0))${batch_kv:+ $batch_kv}" >>"$RESULTS"
    echo "$line" | awk -v p="$phase" -v c="$conns" -v bt="$batch_text" '{
        for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
        printf "%-16s %4d conns: %9.0f req/s  p50 %6.2f ms  p99 %6.2f ms  200:%d 409 limit:%d 409 sold out:%d " \
               "other 4xx:%d 5xx:%d transport errors:%d%s\n", p, c, v["rps"], v["p50_us"] / 1000, v["p99_us"] / 1000,
               v["s200"], v["s409_limit"], v["s409_sold"], v["s409_other"] + v["s4xx"], v["s5xx"],
               v["connect"] + v["read"] + v["write"] + v["timeout"], bt }'
}

sum_results() { # sum_results PHASE KEY: summed over the phase's connection counts
    awk -v p="phase=$1" -v k="$2" '$1 == p { for (i = 1; i <= NF; i++) { split($i, kv, "=");
        if (kv[1] == k) s += kv[2] } } END { print s + 0 }' "$RESULTS"
}

sum_conns() { # sum_conns PHASE: connections of all the phase's runs (requests in flight at the end)
    awk -v p="phase=$1" '$1 == p { split($3, kv, "="); s += kv[2] } END { print s + 0 }' "$RESULTS"
}

reserved_units() { # reserved_units PORT ITEM: initial - remaining in Redis
    local k="$PREFIX:{item:$2}" initial left
    initial=$(rcli "$1" HGET "$k:meta" initial)
    left=$(rcli "$1" GET "$k:stock")
    if ! is_uint "$initial" || ! [[ $left =~ ^-?[0-9]+$ ]]; then
        die "item $2 is gone from redis 127.0.0.1:$1 db $RDB (did something flush it? scripts/demo.sh flushes db 0)"
    fi
    echo $((initial - left))
}

# rb_arg NAME NOW ITEM: the value redis_bench gives the reserve script's ARGV entry NAME:
# a random buyer (0..99999) and a random order number per reservation, so that every
# reservation takes a unit, as the daemon's do. A name it does not know stops the
# benchmark rather than guessing.
rb_arg() {
    case $1 in
    user_id) echo __rand_int__ ;;
    order_no) echo BN__rand_int____rand_int__ ;; # 26 characters, as the daemon's
    now_ms) echo "$2" ;;
    expires_at_ms) echo $(($2 + 900000)) ;;
    activity_id) echo "$ACT" ;;
    item_id) echo "$3" ;;
    deadline_ms) echo $(($2 + 3600000)) ;; # a real deadline: the script reads Redis' clock
    *) die "the reserve script takes ARGV '$1', which redis_bench in $0 does not know" ;;
    esac
}

# redis_bench PHASE PORT ITEM B: the plugin's reserve script under redis-benchmark, on
# the keys of ITEM of activity ACT, B reservations per call (the plugin's batch):
# the script's fixed ARGV once, then its per-reservation ARGV B times, in the order
# the script's comment in scripts.c names them (redis-benchmark draws every
# __rand_int__ of a command on its own). BENCH_REDIS_REQUESTS reservations in all,
# so ceil(REDIS_N / B) calls, rounded up to a multiple of the pipeline: redis-benchmark
# sends whole pipelines (it would overshoot -n otherwise), and the check below needs
# the exact number sent.
redis_bench() {
    local phase=$1 port=$2 item=$3 batch=$4 out=$OUT/redis-benchmark-$1.csv
    local now before after taken csv suffix name loaded calls sent res_rps keys=() argv=() one=() i
    for suffix in "${RESERVE_KEYS[@]}"; do keys+=("$PREFIX:{item:$item}:$suffix"); done
    now=$(date +%s%3N)
    for name in "${RESERVE_FIXED[@]}"; do argv+=("$(rb_arg "$name" "$now" "$item")") || exit 1; done
    for name in "${RESERVE_PER[@]}"; do one+=("$(rb_arg "$name" "$now" "$item")") || exit 1; done
    for ((i = 0; i < batch; i++)); do argv+=("${one[@]}"); done
    calls=$(((REDIS_N + batch - 1) / batch))
    calls=$(((calls + RB_PIPELINE - 1) / RB_PIPELINE * RB_PIPELINE))
    sent=$((calls * batch))
    loaded=$(rcli "$port" -x SCRIPT LOAD <"$OUT/reserve.lua")
    [ "$loaded" = "$SHA" ] || die "SCRIPT LOAD of the reserve script answered '$loaded', not $SHA"
    before=$(reserved_units "$port" "$item")
    redis-benchmark -h 127.0.0.1 -p "$port" --dbnum "$RDB" -c "$RB_CLIENTS" -P "$RB_PIPELINE" -n "$calls" \
        -r 100000 --csv EVALSHA "$SHA" ${#keys[@]} "${keys[@]}" "${argv[@]}" >"$out" 2>&1 \
        || { cat "$out" >&2; die "redis-benchmark failed ($phase)"; }
    after=$(reserved_units "$port" "$item")
    taken=$((after - before))
    # "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
    csv=$(grep '^"EVALSHA' "$out" | tail -n 1 | tr -d '"') || true
    [ -n "$csv" ] || { cat "$out" >&2; die "redis-benchmark printed no result ($phase)"; }
    IFS=, read -r _ rps _ _ p50 _ p99 _ <<<"$csv"
    res_rps=$(awk -v v="$rps" -v b="$batch" 'BEGIN { printf "%.2f", v * b }')
    echo "phase=$phase mode=redis conns=${RB_CLIENTS}xP$RB_PIPELINE item=$item batch=$batch rps=$rps" \
        "res_rps=$res_rps p50_us=$(awk -v v="$p50" 'BEGIN { printf "%d", v * 1000 }')" \
        "p99_us=$(awk -v v="$p99" 'BEGIN { printf "%d", v * 1000 }') requests=$calls reservations=$sent" \
        "reserved=$taken" >>"$RESULTS"
    printf '%-20s %s, B=%-3d %9.0f scripts/s = %9.0f reservations/s  p50 %s ms  p99 %s ms  units taken: %d of %d reservations in %d calls\n' \
        "$phase" "${RB_CLIENTS}xP$RB_PIPELINE" "$batch" "$rps" "$res_rps" "$p50" "$p99" "$taken" "$sent" "$calls"
    # A reservation whose random order number repeats an earlier one answers without
    # taking a unit (the retry rule), so a few may be missing; many would mean the
    # script did not run (NOSCRIPT, a wrong key, a refused batch).
    check "$phase: redis-benchmark took a unit on >= 99 % of its $sent reservations ($taken; $calls calls of $batch)" \
        arith "$taken >= $((sent * 99 / 100)) && $taken <= $sent"
    if ! arith "$taken >= $((sent * 99 / 100)) && $taken <= $sent"; then
        # What the script answers now, for one reservation, and the item as Redis has it.
        local probe=("${argv[@]:0:${#RESERVE_FIXED[@]}}")
        for name in "${RESERVE_PER[@]}"; do
            case $name in
            user_id) probe+=("$((RANDOM + 100000))") ;;
            order_no) probe+=("BNPROBE$(date +%s%N)") ;;
            *) probe+=("$(rb_arg "$name" "$now" "$item")") ;;
            esac
        done
        log "$phase: one reserve call now answers: $(rcli "$port" EVALSHA "$SHA" ${#keys[@]} "${keys[@]}" "${probe[@]}" | head -n 12 | tr '\n' ' ')"
        log "$phase: item $item meta: $(rcli "$port" HGETALL "$PREFIX:{item:$item}:meta" | tr '\n' ' ') stock: $(rcli "$port" GET "$PREFIX:{item:$item}:stock")"
    fi
}

# check_item LABEL PORT ITEM: the invariants of one item, read from Redis.
check_item() {
    local label=$1 port=$2 k="$PREFIX:{item:$3}" initial limit left sum max n orders entries
    initial=$(rcli "$port" HGET "$k:meta" initial)
    limit=$(rcli "$port" HGET "$k:meta" limit)
    left=$(rcli "$port" GET "$k:stock")
    if ! is_uint "$initial" || ! is_uint "$limit" || ! [[ $left =~ ^-?[0-9]+$ ]]; then
        check "$label (item $3): published in Redis (initial '$initial', limit '$limit', left '$left')" false
        return 0
    fi
    read -r sum max n < <(rcli "$port" HVALS "$k:buyers" |
        awk '{ s += $1; if ($1 + 0 > m) m = $1 + 0; n++ } END { printf "%d %d %d\n", s, m, n }')
    orders=$(rcli "$port" HLEN "$k:orders")
    entries=$(rcli "$port" XLEN "$k:log")
    check "$label (item $3): initial $initial = units left $left + units reserved $sum" \
        arith "$left + $sum == $initial"
    check "$label (item $3): no oversell (units left $left >= 0)" arith "$left >= 0"
    check "$label (item $3): buyers' units $sum = orders $orders = log entries $entries" \
        arith "$sum == $orders && $orders == $entries"
    check "$label (item $3): no buyer above the limit (most held: $max, limit $limit, $n buyers)" \
        arith "$max <= $limit"
}

# ---------------------------------------------------------------- build and stack

say "build ($BUILD, configure --enable-werror)"
scripts/deps.sh
# autogen only when configure is missing or stale: regenerating it under a build
# that another job is running would make that build reconfigure itself mid-way.
if [ ! -x configure ] || [ configure.ac -nt configure ]; then ./autogen.sh >/dev/null 2>&1 || ./autogen.sh; fi
mkdir -p "$BUILD" "$OUT"
if [ ! -f "$BUILD/Makefile" ]; then
    (cd "$BUILD" && "$ROOT/configure" --quiet --enable-werror)
fi
make -C "$BUILD" -j2 core/seckilld core/seckill-mint-token plugins/stock_redis.la >"$OUT/make.log" 2>&1 \
    || { tail -n 40 "$OUT/make.log" >&2; die "build failed; see $OUT/make.log"; }
rm -f "$OUT"/wrk-*.txt "$OUT"/redis-benchmark-*.csv "$OUT"/perf-* "$OUT"/hold.*
: >"$RESULTS"

say "private stack"
status=$(scripts/stack.sh status)
if [[ $status != *"redis: up"* || $status != *"mariadb: up"* ]]; then STACK_STARTED=1; fi
scripts/stack.sh start
eval "$(scripts/stack.sh env)"
REDIS_PORT=$SK_TEST_REDIS_PORT
REDIS_PORT_NOW=$REDIS_PORT # the redis the running daemon uses
REDIS_PID=$(rcli "$REDIS_PORT" INFO server | tr -d '\r' | awk -F: '$1 == "process_id" { print $2 }')
[ -r "/proc/$REDIS_PID/stat" ] || die "cannot find the stack's redis-server process (pid '$REDIS_PID')"
CLK_TCK=$(getconf CLK_TCK)
[ "$(rcli "$REDIS_PORT" CONFIG GET appendfsync | tail -n 1)" = always ] \
    || log "warning: the stack's redis does not run with appendfsync always"

# 10k idle connections need as many descriptors in the daemon (and in the tool).
hard=$(ulimit -H -n)
if [ "$hard" != unlimited ] && [ "$hard" -lt $((IDLE_CONNS + 1024)) ]; then
    die "BENCH_IDLE_CONNECTIONS=$IDLE_CONNS needs a file descriptor limit of $((IDLE_CONNS + 1024)); the hard limit is $hard"
fi
[ "$hard" = unlimited ] && hard=1048576
ulimit -S -n "$hard"

say "tokens for $BUYERS buyers"
"$BUILD/core/seckill-mint-token" -s "$JWT_SECRET" -u 1 -n "$BUYERS" -t 7200 >"$TOKENS"
[ "$(wc -l <"$TOKENS")" -eq "$BUYERS" ] || die "seckill-mint-token did not print $BUYERS tokens"

# The plugin's reserve script and the keys it takes, read once from the sources the
# daemon was just built from (scripts/bench/lua_from_c.py); session 2 checks that
# the daemon runs this very text.
RS_DIR=plugins/stock/redis
python3 scripts/bench/lua_from_c.py text $RS_DIR/scripts.c reserve >"$OUT/reserve.lua"
SHA=$(sha1sum <"$OUT/reserve.lua" | cut -d' ' -f1)
mapfile -t RESERVE_KEYS < <(python3 scripts/bench/lua_from_c.py keys $RS_DIR/scripts.c reserve)
mapfile -t RESERVE_ARGV < <(python3 scripts/bench/lua_from_c.py argv $RS_DIR/scripts.c reserve)
[ ${#RESERVE_KEYS[@]} -gt 0 ] || die "cannot read the reserve script's keys from $RS_DIR"
[ ${#RESERVE_ARGV[@]} -gt 0 ] || die "cannot read the reserve script's ARGV from $RS_DIR/scripts.c"
# The fixed ARGV, a line "--", then those repeated per reservation (a batched script).
RESERVE_FIXED=()
RESERVE_PER=()
seen_sep=0
for name in "${RESERVE_ARGV[@]}"; do
    if [ "$name" = -- ]; then
        seen_sep=1
    elif [ "$seen_sep" = 1 ]; then
        RESERVE_PER+=("$name")
    else
        RESERVE_FIXED+=("$name")
    fi
done
if [ "$seen_sep" = 0 ] || [ ${#RESERVE_PER[@]} -eq 0 ]; then
    die "the reserve script's ARGV in $RS_DIR/scripts.c has no per-reservation part ('ARGV: a, b; then per reservation: c, d.'): read '${RESERVE_ARGV[*]}'"
fi
echo "reserve script: SHA1 $SHA, KEYS: ${RESERVE_KEYS[*]}; ARGV: ${RESERVE_FIXED[*]}; then per reservation: ${RESERVE_PER[*]}"

# ---------------------------------------------------------------- session "always"

say "session 1: the stack's redis (127.0.0.1:$REDIS_PORT, appendfsync always)"
mysql_bench -e "DROP DATABASE IF EXISTS \`$DB\`; CREATE DATABASE \`$DB\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
drop_keys "$REDIS_PORT"
write_config "$OUT/seckilld-always.yaml" "$REDIS_PORT"
start_daemon "$OUT/seckilld-always.yaml" "$OUT/seckilld-always.log"
new_sale "bench appendfsync always" \
    "$(items_json "BIG:$BIG_STOCK:$BIG_LIMIT" "SMALL:$SMALL_STOCK:$SMALL_LIMIT" "RB:$BIG_STOCK:$BIG_LIMIT")"
BIG=$ITEM_BIG SMALL=$ITEM_SMALL RB=$ITEM_RB
echo "activity $ACT: item $BIG (stock $BIG_STOCK), item $SMALL (stock $SMALL_STOCK, to sell out), item $RB (redis-benchmark)"

say "sold out: item $SMALL sold out first (hammered below)"
run_wrk sellout reserve $((THREADS > 16 ? THREADS : 16)) 2 /api/v1/seckill "$SMALL"
sold=$(curl -s "$CLIENT/api/v1/items/$SMALL" | json 'd["sold_out"]')
check "item $SMALL shows sold_out in the catalog after the sell-out" [ "$sold" = True ]

# Per connection count: the ceiling, then the phases measured against it, one
# right after the other, so that a change in the machine's load between them
# shows as little as it can.
local_before=$(metric 'seckill_reservations_total{outcome="sold_out_local"}')
for c in $CONNECTIONS; do
    wait_quiet
    say "$c connections: GET /healthz (the HTTP ceiling), POST /api/v1/seckill on item $BIG, then on sold-out item $SMALL"
    run_wrk warmup get "$c" 2 /healthz # not in the table: the first seconds at a new count
    run_wrk healthz get "$c" "$DURATION" /healthz
    if [ "$PERF" = 1 ] && [ "$c" = "${CONNECTIONS##* }" ]; then
        perf record -e cpu-clock -F 499 -p "$DAEMON_PID" -o "$OUT/perf-reserve.data" -- sleep $((DURATION - 2)) \
            >"$OUT/perf-record.log" 2>&1 &
        PERF_PID=$!
    fi
    run_wrk reserve reserve "$c" "$DURATION" /api/v1/seckill "$BIG"
    if [ -n "$PERF_PID" ]; then
        wait "$PERF_PID" || log "perf record failed; see $OUT/perf-record.log"
        PERF_PID=""
        perf report -i "$OUT/perf-reserve.data" --stdio --sort dso,symbol 2>/dev/null |
            grep -v '^$' | head -n 80 >"$OUT/perf-reserve.txt" || true
        echo "perf profile of the daemon: $OUT/perf-reserve.txt"
    fi
    run_wrk soldout soldout "$c" "$DURATION" /api/v1/seckill "$SMALL"
done
local_after=$(metric 'seckill_reservations_total{outcome="sold_out_local"}')
soldout_answers=$(sum_results soldout s409_sold)
echo "sold-out answers from the local flag (no Redis): $((local_after - local_before)) of $soldout_answers counted by wrk"
check "sold-out phase: every sold_out answer came from the local flag" \
    arith "$local_after - $local_before >= $soldout_answers"

say "redis-benchmark: the reserve script on item $RB (the Redis ceiling, appendfsync always), 1 and $RB_BATCH reservations per call"
wait_quiet
redis_bench redis_always "$REDIS_PORT" "$RB" 1
redis_bench redis_always_batch "$REDIS_PORT" "$RB" "$RB_BATCH"

say "daemon RSS with $IDLE_CONNS keep-alive connections"
# Three states: connections open without a request; one request answered on each,
# one connection at a time (idle keep-alive connections: the target); one request
# on every connection at once (a sale's first second), whose memory the allocator
# may keep after it is freed.
python3 scripts/bench/hold_conns.py 127.0.0.1 "$CLIENT_PORT" "$IDLE_CONNS" /healthz >"$OUT/hold.out" 2>"$OUT/hold.err" &
HOLD_PID=$!
rss_base=$(vm_kb VmRSS)
wait_line connected
sleep 1
rss_connected=$(vm_kb VmRSS)
kill -USR1 "$HOLD_PID"
wait_line idle
sleep 1
rss_idle=$(vm_kb VmRSS)
kill -USR1 "$HOLD_PID"
wait_line burst
sleep 1
rss_burst=$(vm_kb VmRSS)
read -r _ _ idle_ok < <(grep '^idle ' "$OUT/hold.out")
read -r _ _ burst_ok < <(grep '^burst ' "$OUT/hold.out")
kill -TERM "$HOLD_PID"
wait "$HOLD_PID" || log "hold_conns.py ended with an error; see $OUT/hold.err"
HOLD_PID=""
check "$IDLE_CONNS keep-alive connections: every request got 200 (one at a time: $idle_ok, all at once: $burst_ok)" \
    arith "$idle_ok == $IDLE_CONNS && $burst_ok == $IDLE_CONNS"
echo "phase=rss mode=rss conns=$IDLE_CONNS rss_base_kb=$rss_base rss_connected_kb=$rss_connected" \
    "rss_idle_kb=$rss_idle rss_burst_kb=$rss_burst" >>"$RESULTS"
printf 'VmRSS: %d kB before; %d connections open: %d kB; idle after one request each: %d kB; after a burst: %d kB\n' \
    "$rss_base" "$IDLE_CONNS" "$rss_connected" "$rss_idle" "$rss_burst"
# VmHWM lags VmRSS by the kernel's per-thread counter caches: take the larger.
hwm=$(vm_kb VmHWM)
for kb in "$rss_connected" "$rss_idle" "$rss_burst"; do [ "$kb" -le "$hwm" ] || hwm=$kb; done
echo "phase=hwm mode=rss conns=0 session=always hwm_kb=$hwm" >>"$RESULTS"
stop_daemon

# ---------------------------------------------------------------- session "no"

say "session 2: a private redis-server (127.0.0.1:$NOFSYNC_PORT, appendfsync no)"
if rcli "$NOFSYNC_PORT" PING >/dev/null 2>&1; then
    die "something already answers on port $NOFSYNC_PORT: set BENCH_NOFSYNC_REDIS_PORT"
fi
TMP=$(mktemp -d)
redis-server --bind 127.0.0.1 --port "$NOFSYNC_PORT" --dir "$TMP" --appendonly yes --appendfsync no \
    --save "" --protected-mode yes --maxclients 20000 --logfile "$OUT/redis-nofsync.log" >/dev/null &
NOFSYNC_PID=$!
for _ in $(seq 1 100); do
    if [ "$(rcli "$NOFSYNC_PORT" PING 2>/dev/null)" = PONG ]; then break; fi
    kill -0 "$NOFSYNC_PID" 2>/dev/null || die "redis-server did not start; see $OUT/redis-nofsync.log"
    sleep 0.1
done
REDIS_PID=$NOFSYNC_PID
REDIS_PORT_NOW=$NOFSYNC_PORT
write_config "$OUT/seckilld-nofsync.yaml" "$NOFSYNC_PORT"
start_daemon "$OUT/seckilld-nofsync.yaml" "$OUT/seckilld-nofsync.log"
new_sale "bench appendfsync no" "$(items_json "BIG:$BIG_STOCK:$BIG_LIMIT" "RB:$BIG_STOCK:$BIG_LIMIT")"
BIG2=$ITEM_BIG RB2=$ITEM_RB
echo "activity $ACT: item $BIG2 (stock $BIG_STOCK), item $RB2 (redis-benchmark)"

say "POST /api/v1/seckill, item $BIG2, appendfsync no"
for c in $CONNECTIONS; do
    wait_quiet
    run_wrk reserve_nofsync reserve "$c" "$DURATION" /api/v1/seckill "$BIG2"
done

# This redis-server is fresh: it knows the reserve script only from the daemon's
# own calls, so finding our SHA1 there proves that redis-benchmark runs exactly the
# daemon's script (extracted from scripts.c).
check "the reserve script extracted from scripts.c is the one the daemon runs (SHA1 $SHA)" \
    [ "$(rcli "$NOFSYNC_PORT" SCRIPT EXISTS "$SHA")" = 1 ]
say "redis-benchmark: the reserve script on item $RB2 (appendfsync no), 1 and $RB_BATCH reservations per call"
wait_quiet
redis_bench redis_nofsync "$NOFSYNC_PORT" "$RB2" 1
redis_bench redis_nofsync_batch "$NOFSYNC_PORT" "$RB2" "$RB_BATCH"
echo "phase=hwm mode=rss conns=0 session=no hwm_kb=$(vm_kb VmHWM)" >>"$RESULTS"
stop_daemon

# ---------------------------------------------------------------- checks

say "checks"
check_item "appendfsync always, reserve" "$REDIS_PORT" "$BIG"
check_item "appendfsync always, sold out" "$REDIS_PORT" "$SMALL"
check_item "appendfsync always, redis-benchmark" "$REDIS_PORT" "$RB"
check_item "appendfsync no, reserve" "$NOFSYNC_PORT" "$BIG2"
check_item "appendfsync no, redis-benchmark" "$NOFSYNC_PORT" "$RB2"

# Every 200 that wrk read is a unit taken; the units whose answer wrk did not read
# when its clock ran out (at most one per connection) are the only difference.
for spec in "reserve:$REDIS_PORT:$BIG" "reserve_nofsync:$NOFSYNC_PORT:$BIG2"; do
    IFS=: read -r phase port item <<<"$spec"
    taken=$(reserved_units "$port" "$item")
    answered=$(sum_results "$phase" s200)
    inflight=$(sum_conns "$phase")
    check "$phase: units taken $taken - 200 answers $answered is in [0, $inflight] (requests in flight at the end)" \
        arith "$taken - $answered >= 0 && $taken - $answered <= $inflight"
    # Every 200 came from a reservation the plugin sent in a reserve call while wrk
    # ran, so its counters (the mean batch's source) cannot have counted fewer.
    calls=$(sum_results "$phase" reserve_calls)
    batched=$(sum_results "$phase" reserve_batched)
    check "$phase: the plugin's counters saw every reservation ($batched sent in $calls reserve calls >= $answered 200 answers)" \
        arith "$calls >= 1 && $batched >= $calls && $batched >= $answered"
done
taken=$(reserved_units "$REDIS_PORT" "$SMALL")
check "sold-out item: every unit sold ($taken of $SMALL_STOCK), none after (200 answers in the sold-out phase: $(sum_results soldout s200))" \
    arith "$taken == $SMALL_STOCK && $(sum_results soldout s200) == 0"
check "sold-out item: 200 answers $(sum_results sellout s200) <= units $SMALL_STOCK" \
    arith "$(sum_results sellout s200) <= $SMALL_STOCK"
for phase in healthz reserve soldout reserve_nofsync; do
    errs=$(awk -v p="phase=$phase" '$1 == p { for (i = 1; i <= NF; i++) { split($i, kv, "=");
        if (kv[1] ~ /^(connect|read|write|timeout|s4xx|s5xx|sother|s409_other)$/) s += kv[2] } } END { print s + 0 }' "$RESULTS")
    check "$phase: no transport errors, 4xx other than 409, or 5xx ($errs)" arith "$errs == 0"
done

say "results ($(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) CPUs, ${DURATION} s per phase, $THREADS wrk threads, $BUYERS buyers)"
if [ "$DISTURBED" = 1 ]; then
    echo "WARNING: the machine was busy (test suites, compilers or other load) during some measurements; the figures are disturbed"
fi
rc=0
if [ "$STRICT" = 1 ]; then
    python3 scripts/bench/report.py "$RESULTS" --strict || rc=$?
else
    python3 scripts/bench/report.py "$RESULTS" || rc=$?
fi
echo
echo "files: $OUT (results.txt, wrk-*.txt, redis-benchmark-*.csv, seckilld-*.log)"
if [ "$FAILS" -gt 0 ]; then
    echo "$FAILS check(s) FAILED"
    exit 1
fi
echo "all checks passed"
exit "$rc"
