#!/usr/bin/env bash
# Build seckill and run every test, from a fresh clone:
# deps, autogen, private stack, the emulators' protocol tests, configure, build and
# `make check` with warnings as errors, the console under tmux, the failover test,
# `make check` again in an ASan+UBSan build, the valgrind shutdown check; stops what
# it started.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
JOBS=${JOBS:-2}

step() { printf '\n==== %s\n' "$*"; }

step "dependencies"
scripts/deps.sh

step "autogen"
./autogen.sh >/dev/null 2>&1 || ./autogen.sh

# Stop at the end only what this run started (a developer's running stack stays).
started_stack=0
status=$(scripts/stack.sh status)
case "$status" in
*"redis: up"*"mariadb: up"*) ;;
*) started_stack=1 ;;
esac
cleanup() {
    if [ $started_stack = 1 ]; then scripts/stack.sh stop || true; fi
}
trap cleanup EXIT

step "private stack"
scripts/stack.sh start
eval "$(scripts/stack.sh env)"

step "Alipay gateway emulator: protocol test"
/usr/bin/python3 tests/alipay_emulator_test.py

# run_suite NAME CONFIGURE-FLAGS...: build in build-NAME and run make check.
run_suite() {
    local name=$1; shift
    step "build ($name): configure $*"
    mkdir -p "build-$name"
    (cd "build-$name" && ../configure --quiet "$@" && make -j"$JOBS" >/dev/null)
    step "tests ($name)"
    if ! (cd "build-$name" && make -j"$JOBS" check); then
        for f in "build-$name"/tests/*.log; do
            if grep -qE '^(FAIL|ERROR)' "${f%.log}.trs" 2>/dev/null; then
                echo "---- $f"; tail -n 80 "$f"
            fi
        done
        exit 1
    fi
}

run_suite ci --enable-werror

step "order pipeline through kafka_rest (the Kafka REST Proxy emulator)"
(cd build-ci && SK_TEST_QUEUE=kafka_rest SK_DAEMON="$PWD/core/seckilld" SK_PLUGIN_BUILD_DIR="$PWD/plugins/.libs" \
    CK_DEFAULT_TIMEOUT=120 ./tests/check_orders)

step "console end to end (tmux)"
tests/console_e2e.sh build-ci

# Kills and restarts the stack's MariaDB and Redis: runs alone, after the suites.
step "failover: MariaDB and Redis killed mid-sale"
scripts/failover-test.sh build-ci

ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1} \
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
LSAN_OPTIONS=suppressions=$ROOT/tests/lsan.supp:print_suppressions=0 \
    run_suite asan --enable-werror --enable-sanitizers

step "valgrind: daemon start and graceful shutdown"
scripts/valgrind-daemon.sh build-ci

step "all tests passed"
