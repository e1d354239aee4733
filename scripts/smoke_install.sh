#!/usr/bin/env bash
# Installs Strom into a fresh venv WITHOUT the test extras, as a new user would, and checks that
# `strom serve`, `strom topics create/list` and `strom produce/consume` work from it alone.
set -euo pipefail
cd "$(dirname "$0")/.."
work="$(mktemp -d /tmp/strom-smoke.XXXXXX)"
server=""
cleanup() {
    if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

python3 -m venv "$work/venv"
if ! "$work/venv/bin/python" -m pip install -q . > "$work/pip.log" 2>&1; then
    grep -v "is ignored" "$work/pip.log" >&2
    exit 1
fi
strom="$work/venv/bin/strom"
port="$("$work/venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
(cd "$work" && exec "$strom" serve --data-dir "$work/data" --listen "127.0.0.1:$port" > "$work/serve.log" 2>&1) &
server=$!
for _ in $(seq 1 200); do
    grep -q "listening on" "$work/serve.log" 2>/dev/null && break
    kill -0 "$server" 2>/dev/null || { cat "$work/serve.log" >&2; exit 1; }
    sleep 0.05
done
b="127.0.0.1:$port"
fail() { echo "smoke install: $*" >&2; cat "$work/serve.log" >&2; exit 1; }
"$strom" topics create smoke --partitions 3 -b "$b" > /dev/null || fail "topics create failed"
"$strom" topics list -b "$b" | grep -qw smoke || fail "topics list does not show the topic"
seq 1 500 | "$strom" produce smoke -b "$b" > /dev/null 2>&1 || fail "produce failed"
got="$("$strom" consume smoke -b "$b" --from-beginning --max-messages 500 --timeout 20 2>/dev/null | sort -n | uniq | wc -l)"
[ "$got" = 500 ] || fail "consumed $got distinct records of 500"
kill "$server"
wait "$server" || fail "strom serve did not stop cleanly"
server=""
echo "smoke install: strom from a fresh venv without test extras serves, creates, lists, produces and consumes"
