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
free_port() { "$work/venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port="$(free_port)"
rport="$(free_port)"
(cd "$work" && exec "$strom" serve --data-dir "$work/data" --listen "127.0.0.1:$port" \
    --registry-listen "127.0.0.1:$rport" > "$work/serve.log" 2>&1) &
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
# the schema registry beside the broker: register a schema, read it back by id
"$work/venv/bin/python" - "$rport" <<'PY' || fail "the schema registry did not answer"
import json, sys, time, urllib.request
url = f"http://127.0.0.1:{sys.argv[1]}"
ct = {"Content-Type": "application/vnd.schemaregistry.v1+json"}
for _ in range(200):
    try:
        urllib.request.urlopen(url + "/subjects", timeout=2)
        break
    except OSError:
        time.sleep(0.1)
body = json.dumps({"schema": json.dumps({"type": "record", "name": "R", "fields": [{"name": "a", "type": "int"}]})})
req = urllib.request.Request(url + "/subjects/smoke-value/versions", body.encode(), ct, method="POST")
sid = json.load(urllib.request.urlopen(req, timeout=10))["id"]
got = json.load(urllib.request.urlopen(f"{url}/schemas/ids/{sid}", timeout=10))
assert json.loads(got["schema"])["name"] == "R", got
PY
kill "$server"
wait "$server" || fail "strom serve did not stop cleanly"
server=""
echo "smoke install: strom from a fresh venv without test extras serves, creates, lists, produces, consumes and registers a schema"
