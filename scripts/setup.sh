#!/usr/bin/env bash
# Installs what Strom needs into ./.venv (and, with --test, the test tools: Python packages, kcat
# and ZooKeeper).
set -euo pipefail
cd "$(dirname "$0")/.."
want_test=0
[ "${1:-}" = "--test" ] && want_test=1

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
stamp=.venv/.strom-installed
extra=""
[ "$want_test" = 1 ] && extra="[test]"
key="$(cat pyproject.toml | sha1sum | cut -c1-12)${extra}"
if [ ! -f "$stamp" ] || ! grep -qxF "$key" "$stamp"; then
    for args in "--upgrade pip" "-e .${extra}"; do
        # shellcheck disable=SC2086
        if ! .venv/bin/python -m pip install -q $args > .venv/pip.log 2>&1; then
            grep -v "is ignored" .venv/pip.log >&2
            exit 1
        fi
    done
    echo "$key" >> "$stamp"
fi
# bytecode for every module now (an editable install gets none): start-up reads it, not source
.venv/bin/python -m compileall -q src > /dev/null

if [ "$want_test" = 1 ]; then
    missing=()
    command -v kcat >/dev/null 2>&1 || missing+=(kcat)
    # the cluster tests start their own standalone ZooKeeper from Debian's jar
    [ -f /usr/share/java/zookeeper.jar ] || missing+=(zookeeper)
    if [ "${#missing[@]}" -gt 0 ]; then
        SUDO=""
        [ "$(id -u)" -ne 0 ] && SUDO="sudo"
        export DEBIAN_FRONTEND=noninteractive
        $SUDO apt-get update -qq >/dev/null
        $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 || $SUDO apt-get install -y "${missing[@]}"
    fi
fi
