#!/usr/bin/env bash
# Starts a Strom broker (installing Strom into ./.venv first); arguments go to `strom serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/strom serve "$@"
