#!/usr/bin/env bash
# Runs the whole test suite (lint, then pytest), installing what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
.venv/bin/ruff check src tests tools bench
.venv/bin/ruff format --check src tests tools bench
if [ -d ../shared/kafka-protocol ]; then
    .venv/bin/python tools/gen_protocol.py --check
fi
exec .venv/bin/python -m pytest "$@"
