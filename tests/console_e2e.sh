#!/usr/bin/env bash
# seckill-console end to end, the way an operator uses it: the real daemon against
# the private stack, the console in a tmux pane driven with send-keys, and every
# check made on what capture-pane shows.
#
#   tests/console_e2e.sh [BUILD_DIR]      (default: build-ci; the stack must run)
#
# Creates an activity in the form (a validation error first), edits it, publishes
# it, watches the live screen while buyers reserve units with curl, then orders,
# blacklist, help, resizing to other sizes and back to 80x24, a monochrome
# terminal, a wrong token, and the daemon going away under the console.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "${1:-$ROOT/build-ci}" && pwd)
CONSOLE=$BUILD/tui/seckill-console
DAEMON=$BUILD/core/seckilld
MINT=$BUILD/core/seckill-mint-token
PLUGINS=$BUILD/plugins/.libs
for f in "$CONSOLE" "$DAEMON" "$MINT"; do
    [ -x "$f" ] || { echo "console_e2e: $f is not built (make in $BUILD first)" >&2; exit 1; }
done
for tool in tmux curl redis-cli mariadb python3; do
    command -v "$tool" >/dev/null || { echo "console_e2e: $tool missing: run scripts/deps.sh" >&2; exit 1; }
done

REDIS_HOST=${SK_TEST_REDIS_HOST:-127.0.0.1}
REDIS_PORT=${SK_TEST_REDIS_PORT:-6390}
MYSQL_HOST=${SK_TEST_MYSQL_HOST:-127.0.0.1}
MYSQL_PORT=${SK_TEST_MYSQL_PORT:-3390}
MYSQL_USER=${SK_TEST_MYSQL_USER:-seckill}
MYSQL_PASSWORD=${SK_TEST_MYSQL_PASSWORD:-seckill}
DB=sktest_console
REDIS_DB=9
ADMIN_TOKEN=console-e2e-admin-token-0123456789
JWT_SECRET=console-e2e-jwt-secret-0123456789
WAIT=${SK_E2E_WAIT:-15}   # seconds to wait for anything to show

WORK=$(mktemp -d /tmp/skconsole-e2e-XXXXXX)
TMUX_SOCK=sk-console-e2e-$$
T=(tmux -u -L "$TMUX_SOCK" -f /dev/null)
DAEMON_PID=
STEP=start

export LANG=C.UTF-8 LC_ALL=C.UTF-8
unset NO_COLOR SECKILL_ADMIN_TOKEN TMUX

cleanup() {
    local rc=$?
    if [ $rc -ne 0 ]; then
        echo "console_e2e: FAILED at step: $STEP" >&2
        echo "---- daemon log (tail)" >&2
        tail -n 30 "$WORK/seckilld.log" >&2 2>/dev/null || true
    fi
    "${T[@]}" kill-server >/dev/null 2>&1 || true
    if [ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null; then
        kill -TERM "$DAEMON_PID" 2>/dev/null || true
        wait "$DAEMON_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
    exit $rc
}
trap cleanup EXIT

step() { STEP=$*; echo "console_e2e: $*"; }
fail() {
    echo "console_e2e: $*" >&2
    if [ -n "${PANE:-}" ]; then
        echo "---- screen of $PANE" >&2
        "${T[@]}" capture-pane -p -t "$PANE" >&2 || true
    fi
    exit 1
}

# A loopback port nobody listens on, below the ephemeral range (32768+) so that no
# outgoing connection holds it either.
free_port() {
    local p
    for _ in $(seq 1 100); do
        p=$((20000 + RANDOM % 12000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
    done
    fail "no free port"
}

screen() { "${T[@]}" capture-pane -p -t "$PANE"; }
keys() { "${T[@]}" send-keys -t "$PANE" "$@"; }
typed() { "${T[@]}" send-keys -t "$PANE" -l "$1"; }

# wait_for TEXT: until the pane shows TEXT (fixed string).
wait_for() {
    local deadline=$((SECONDS + WAIT))
    until screen | grep -qF -- "$1"; do
        [ $SECONDS -lt $deadline ] || fail "waited ${WAIT}s for: $1"
        sleep 0.2
    done
}
# wait_re REGEX: until a line of the pane matches the extended regex.
wait_re() {
    local deadline=$((SECONDS + WAIT))
    until screen | grep -qE -- "$1"; do
        [ $SECONDS -lt $deadline ] || fail "waited ${WAIT}s for /$1/"
        sleep 0.2
    done
}
# wait_gone TEXT: until the pane no longer shows TEXT.
wait_gone() {
    local deadline=$((SECONDS + WAIT))
    while screen | grep -qF -- "$1"; do
        [ $SECONDS -lt $deadline ] || fail "waited ${WAIT}s for this to go: $1"
        sleep 0.2
    done
}
alive() {
    [ "$("${T[@]}" display-message -p -t "$PANE" '#{pane_dead}')" = 0 ] || fail "the console died"
}
# The pane's size and the shape of what it shows: title on the first line, the
# help bar on the last, no line wider than the pane.
check_frame() {
    local w=$1 h=$2 s
    local deadline=$((SECONDS + WAIT))
    until [ "$("${T[@]}" display-message -p -t "$PANE" '#{pane_width}x#{pane_height}')" = "${w}x${h}" ]; do
        [ $SECONDS -lt $deadline ] || fail "the pane did not become ${w}x${h}"
        sleep 0.1
    done
    deadline=$((SECONDS + WAIT))
    while :; do
        s=$(screen)
        if [ "$(printf '%s\n' "$s" | wc -l)" -eq "$h" ] &&
            printf '%s\n' "$s" | head -n 1 | grep -q '^ seckill  1 Activities' &&
            printf '%s\n' "$s" | tail -n 1 | grep -q '^? Help  q Quit'; then
            break
        fi
        [ $SECONDS -lt $deadline ] || fail "the screen was not redrawn for ${w}x${h}"
        sleep 0.2
    done
    printf '%s\n' "$s" | python3 -c '
import sys, unicodedata
w = int(sys.argv[1])
for n, line in enumerate(sys.stdin.read().splitlines(), 1):
    cols = sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in line)
    if cols > w:
        sys.exit("line %d is %d columns wide in a %d-column pane: %r" % (n, cols, w, line))
' "$w" || fail "a line overflows the ${w}-column pane"
}
admin() { # admin METHOD PATH [BODY]
    curl -s -X "$1" -H "Authorization: Bearer $ADMIN_TOKEN" ${3:+-d "$3"} "$ADMIN_URL$2"
}
# Reserve one unit for each of COUNT users from FIRST; prints the HTTP codes.
reserve() { # reserve FIRST COUNT ACTIVITY ITEM
    local jwt
    for jwt in $("$MINT" -s "$JWT_SECRET" -u "$1" -n "$2"); do
        curl -s -o /dev/null -w '%{http_code} ' -H "Authorization: Bearer $jwt" \
            -d "{\"activity_id\":$3,\"item_id\":$4}" "$CLIENT_URL/api/v1/seckill"
    done
}
# Does the daemon have route PATH (a 404 "no such resource" means no)?
has_route() {
    ! admin GET "$1" | grep -q '"no such resource'
}

# ---- the daemon ------------------------------------------------------------------
step "fresh database $DB and redis db $REDIS_DB"
mariadb --no-defaults -h "$MYSQL_HOST" -P "$MYSQL_PORT" -u "$MYSQL_USER" -p"$MYSQL_PASSWORD" \
    -e "DROP DATABASE IF EXISTS $DB; CREATE DATABASE $DB" || fail "MariaDB unreachable: scripts/stack.sh start"
redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" -n "$REDIS_DB" flushdb >/dev/null || fail "Redis unreachable"

# start_daemon: a config with two fresh ports, then seckilld until /healthz answers;
# returns 1 when a port was taken meanwhile (the caller tries others).
start_daemon() {
    CLIENT_PORT=$(free_port)
    ADMIN_PORT=$(free_port)
    while [ "$ADMIN_PORT" = "$CLIENT_PORT" ]; do ADMIN_PORT=$(free_port); done
    CLIENT_URL=http://127.0.0.1:$CLIENT_PORT
    ADMIN_URL=http://127.0.0.1:$ADMIN_PORT
    cat >"$WORK/seckilld.yaml" <<EOF
log_level: info
workers: 2
listen:
  client: 127.0.0.1:$CLIENT_PORT
  admin: 127.0.0.1:$ADMIN_PORT
mariadb:
  host: $MYSQL_HOST
  port: $MYSQL_PORT
  user: $MYSQL_USER
  password: $MYSQL_PASSWORD
  database: $DB
auth:
  jwt_secret: $JWT_SECRET
  admin_token: $ADMIN_TOKEN
scheduler:
  tick_ms: 100
plugin_dir: $PLUGINS
plugins:
  stock:
    name: redis
    config:
      host: $REDIS_HOST
      port: $REDIS_PORT
      db: $REDIS_DB
EOF
    # With a queue, reservations become MariaDB orders that the orders screen lists.
    if [ -f "$PLUGINS/queue_redis_streams.so" ]; then
        cat >>"$WORK/seckilld.yaml" <<EOF
  queue:
    name: redis_streams
    config:
      host: $REDIS_HOST
      port: $REDIS_PORT
      db: $REDIS_DB
EOF
    fi
    "$DAEMON" -c "$WORK/seckilld.yaml" >"$WORK/seckilld.log" 2>&1 &
    DAEMON_PID=$!
    for _ in $(seq 1 300); do
        curl -sf "$ADMIN_URL/healthz" >/dev/null 2>&1 && return 0
        if ! kill -0 "$DAEMON_PID" 2>/dev/null; then
            wait "$DAEMON_PID" 2>/dev/null || true
            DAEMON_PID=
            grep -q "Address already in use" "$WORK/seckilld.log" && return 1
            fail "seckilld exited during start-up"
        fi
        sleep 0.1
    done
    fail "seckilld did not answer /healthz within 30 s"
}
step "start seckilld"
for attempt in 1 2 3 4 5; do
    start_daemon && break
    [ "$attempt" -lt 5 ] || fail "no free ports for seckilld"
done
echo "console_e2e: seckilld on $ADMIN_URL (admin) and $CLIENT_URL (buyers)"

# ---- the console -----------------------------------------------------------------
step "console starts in 80x24"
# The shell around it says how the console ended, on the pane once it has left (and
# stays, since tmux may drop the last output of a pane whose process is gone).
"${T[@]}" new-session -d -s e2e -n main -x 80 -y 24 \
    "env SECKILL_ADMIN_TOKEN=$ADMIN_TOKEN $CONSOLE --url $ADMIN_URL; echo \"console exit status \$?\"; sleep 600"
"${T[@]}" set-option -g remain-on-exit on >/dev/null
PANE=e2e:main
wait_for "No activities yet: press n to create one."
check_frame 80 24
screen | tail -n 1 | grep -qF '? Help  q Quit  n New  e Edit  p Publish' || fail "help bar"

step "create an activity in the form: a validation error first"
keys n
wait_for "New activity"
typed "双十一 Test"
keys Tab Tab
typed "now"
keys Tab
typed "+10m"
keys Tab
typed "PHONE-1"
keys Tab
typed "秒杀手机"
keys Tab
typed "3999"
keys Tab
typed "4999"
keys Tab
wait_for "Item 1 Seckill price: must not be above the price"
keys F2
wait_for "Item 1 Seckill price: must not be above the price"
screen | grep -qF "New activity" || fail "the form closed on a validation error"
# Saving moved the focus to the field at fault: Item 1 Seckill price.
keys BSpace BSpace BSpace BSpace
typed "999"
keys Tab
typed "10"
keys F2
wait_for 'activity 1 "双十一 Test" created (draft)'
wait_re '^ +1 双十一 Test +draft '
wait_re 'PHONE-1 +秒杀手机 +¥999\.00 +¥3999\.00 +10 +1'
alive

step "edit it"
keys e
wait_for "Edit activity 1"
typed " B"
keys F2
wait_for 'activity 1 "双十一 Test B" saved (draft)'
wait_re '^ +1 双十一 Test B +draft '

step "publish it now"
keys p
wait_for 'Publish activity 1 "双十一 Test B" now? (y/n)'
keys y
wait_re '^ +1 双十一 Test B +running .* end in [0-9]m[0-9]{2}s'

step "live screen"
keys 2
wait_re 'Activity 1 · running · end in [0-9]m[0-9]{2}s · 双十一 Test B'
wait_re '^ 秒杀手机 +10 +0 +0 +10 '
if has_route /admin/v1/stats; then
    wait_re '^ Requests +[0-9.k]+/s +p50 [0-9.]+ ms +p99 [0-9.]+ ms +reservations [0-9.k]+/s'
    wait_re '^ Queue lag ([0-9]+|-) +up [0-9dhms]+ +redis ok · mariadb ok'
    wait_re '^ Orders +reserved [0-9]+ created [0-9]+ paying [0-9]+ paid [0-9]+ closed [0-9]+'
else
    wait_for "Daemon: stats not available on this daemon"
fi

step "buyers reserve 4 units: the live screen follows"
codes=$(reserve 5001 4 1 1)
[ "$codes" = "200 200 200 200 " ] || fail "reservations answered: $codes"
wait_re '^ 秒杀手机 +10 +4 +0 +6 '
wait_re '^   \[=+\.+\] *$'
wait_re '^ 秒杀手机 +10 +4 +0 +6 +[0-9.]+/s'

step "the rest sells out"
codes=$(reserve 6001 7 1 1)
[ "$codes" = "200 200 200 200 200 200 409 " ] || fail "reservations answered: $codes"
wait_re '^ 秒杀手机 +10 +10 +0 +0 '
wait_re '^   \[=+\] SOLD OUT'

step "orders"
keys 3
if has_route /admin/v1/orders; then
    wait_for "10 orders"
    wait_re ' (reserved|created) +¥999\.00 +1[0-9]m[0-9]{2}s$'
    keys x
    wait_re '^Close order [^ ]+ \(user [0-9]+, ¥999\.00\) by hand\? \(y/n\)$'
    keys y
    wait_re 'order .* closed by hand'
    wait_re ' closed +¥999\.00 +-$'
    keys 2
    wait_re '^ 秒杀手机 +10 +9 +0 +1 '
    keys 3
else
    wait_for "orders: not available on this daemon"
fi
alive

step "blacklist"
keys 4
if has_route /admin/v1/blacklist; then
    keys a
    wait_for "Blacklist user id:"
    typed "4242"
    keys Enter
    wait_for "Reason for blacklisting user 4242:"
    typed "脚本抢购"
    keys Enter
    wait_for "user 4242 blacklisted"
    wait_re '^ +4242  .*脚本抢购'
    keys x
    wait_for "Take user 4242 off the blacklist? (y/n)"
    keys y
    wait_for "user 4242 is off the blacklist"
else
    wait_for "blacklist: not available on this daemon"
fi

step "help"
keys 1 '?'
wait_for "Keys (times are UTC)"
wait_re 'p +publish now'
keys Escape
wait_gone "Keys (times are UTC)"
wait_re '^ +1 双十一 Test B '

step "resize: larger, too small, back to 80x24"
"${T[@]}" resize-window -t "$PANE" -x 120 -y 40
check_frame 120 40
wait_re 'Publish \(UTC\) +Starts \(UTC\) +Ends \(UTC\)'
"${T[@]}" resize-window -t "$PANE" -x 50 -y 10
wait_for "terminal too small:"
"${T[@]}" resize-window -t "$PANE" -x 80 -y 24
check_frame 80 24
wait_re '^ +1 双十一 Test B +running '
screen | grep -qF "terminal too small" && fail "leftovers of the small size"
alive

step "colours, and none on a monochrome request (NO_COLOR)"
"${T[@]}" capture-pane -p -e -t "$PANE" | grep -qP '\x1b\[(?:[0-9]+;)*(?:3[0-7]|4[0-7])(?:;[0-9]+)*m' ||
    fail "no colours on a colour terminal"
"${T[@]}" new-window -d -t e2e -n mono "env NO_COLOR=1 SECKILL_ADMIN_TOKEN=$ADMIN_TOKEN $CONSOLE --url $ADMIN_URL"
PANE=e2e:mono
wait_re '^ +1 双十一 Test B +running '
if "${T[@]}" capture-pane -p -e -t "$PANE" | grep -qP '\x1b\[(?:[0-9]+;)*(?:3[0-7]|4[0-7])(?:;[0-9]+)*m'; then
    fail "colours on a monochrome request"
fi
"${T[@]}" capture-pane -p -e -t "$PANE" | grep -qP '\x1b\[(?:[0-9]+;)*7(?:;[0-9]+)*m' ||
    fail "no reverse video for the selection on a monochrome terminal"
keys q

step "a wrong token is shown, not fatal"
"${T[@]}" new-window -d -t e2e -n bad "$CONSOLE --url $ADMIN_URL --token wrong-token-0123456789"
PANE=e2e:bad
wait_for "bad admin token (401): wrong admin token"
sleep 1.5
alive
keys q

step "the daemon goes away under the console"
PANE=e2e:main
keys 2
kill -TERM "$DAEMON_PID"
wait "$DAEMON_PID" || true
DAEMON_PID=
wait_for "daemon unreachable:"
sleep 2
alive
wait_for "daemon unreachable:"
keys 1
wait_re '^ +1 双十一 Test B '   # the last list stays on screen

step "q leaves with status 0"
keys q
wait_for "console exit status 0"

step "all passed"
