#!/usr/bin/env bash
# Installs the peer benchmark's peers outside dtask's environment: Ray into a bench-only virtualenv (pip),
# task-spooler from Debian's package task-spooler (apt-get install as root, else the package unpacked here).
# A peer that cannot be installed is reported and left out; this script never fails for it.
# Usage: bench/install_peers.sh VENV PYTHON   (prints the tsp binary to use on its last line)
set -u
venv=$1
python=$2
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv" || echo "bench-peers: cannot create $venv; Ray will be skipped" >&2
fi
if [ -x "$venv/bin/python" ] && ! "$venv/bin/python" -c "import ray" 2>/dev/null; then
  "$venv/bin/python" -m pip install -q --disable-pip-version-check ray >&2 \
    || echo "bench-peers: Ray could not be installed into $venv; it will be skipped" >&2
fi
tsp=$(command -v tsp || true)
if [ -z "$tsp" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  { apt-get install -y -q task-spooler || { apt-get update -q && apt-get install -y -q task-spooler; }; } >&2 \
    || echo "bench-peers: apt-get could not install task-spooler" >&2
  tsp=$(command -v tsp || true)
fi
if [ -z "$tsp" ] && command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null; then
  mkdir -p "$venv/debs" \
    && (cd "$venv/debs" && apt-get download task-spooler >&2) \
    && dpkg-deb -x "$(ls "$venv"/debs/task-spooler_*.deb | tail -1)" "$venv/task-spooler" \
    && tsp="$venv/task-spooler/usr/bin/tsp"
fi
[ -n "$tsp" ] && [ -x "$tsp" ] || { echo "bench-peers: task-spooler is not available; it will be skipped" >&2; tsp=none; }
echo "$tsp"
