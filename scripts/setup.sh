#!/bin/sh
# The README's setup command (`npm run setup`): the system packages the tests run for real, then the
# npm dependencies. Debian or Ubuntu, as root (or with sudo). Safe to run again: it installs only
# what is missing.
#
#   dnsmasq-base   dnsmasq: a real DNS server for the DNS discovery tests
#   redis-server   redis-server: shared rate limits across meshes
#   prometheus     prometheus: scrapes the telemetry example's metrics
#   iproute2       ss: counts the connections a pool keeps open
#   openssl        openssl: checks what the development CA mints
set -eu
cd "$(dirname "$0")/.."

missing=""
has() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]; }
has dnsmasq || missing="$missing dnsmasq-base"
has redis-server || missing="$missing redis-server"
has prometheus || missing="$missing prometheus"
has ss || missing="$missing iproute2"
has openssl || missing="$missing openssl"

if [ -n "$missing" ]; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  echo "setup: installing system packages:$missing"
  mkdir -p .tmp
  # Quiet unless it fails: apt's progress and the services' start-up notes go to a log.
  if ! { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing; } >.tmp/setup-apt.log 2>&1; then
    tail -n 30 .tmp/setup-apt.log
    echo "setup: apt-get failed (full log: .tmp/setup-apt.log)" >&2
    exit 1
  fi
fi

echo "setup: npm install"
npm install --no-audit --no-fund
echo "setup: done. Next: npm run demo, then npm test"
