#!/usr/bin/env bash
# Runs the whole test suite (lint, then pytest), installing what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
.venv/bin/ruff check .
.venv/bin/ruff format --check .
if [ -d ../shared/kafka-protocol ]; then
    .venv/bin/python tools/gen_protocol.py --check
fi
if [ "$#" -eq 0 ]; then
    # the README's first command, as a new user runs it: no test extras installed
    bash scripts/smoke_install.sh
fi
exec .venv/bin/python -m pytest "$@"
