#!/usr/bin/env bash
# Install the Debian packages that seckill needs to build, test and run its demo.
# As root it installs what is missing; otherwise it prints the exact command to run.
set -euo pipefail

PACKAGES=(
    build-essential autoconf automake libtool pkg-config
    libuv1-dev libh2o-dev libhiredis-dev libmariadb-dev libyaml-dev
    libcurl4-openssl-dev libssl-dev libncurses-dev libjansson-dev check
    redis-server redis-tools mariadb-server mariadb-client
    openssl curl wrk valgrind tmux python3 python3-cryptography
)

missing=()
for p in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    echo "deps: all ${#PACKAGES[@]} packages present"
    exit 0
fi

cmd="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
    echo "deps: missing packages: ${missing[*]}" >&2
    echo "deps: run as root: $cmd" >&2
    exit 1
fi

echo "deps: installing ${missing[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
# The packaged services must not hold the default ports or run on their own: the
# project starts private instances (scripts/stack.sh).
for svc in redis-server mariadb; do
    if command -v systemctl >/dev/null 2>&1; then systemctl disable --now "$svc" >/dev/null 2>&1 || true; fi
    service "$svc" stop >/dev/null 2>&1 || true
done
echo "deps: done"
