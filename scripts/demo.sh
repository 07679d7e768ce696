#!/usr/bin/env bash
# The operator's story on the embedded default: local state directory, offline model.
# Grows with the project; each step runs the real CLI.
set -euo pipefail
VENV=${VENV:-.venv}
STATE=${STATE:-.rollout/demo}
export ROLLOUT_STATE="$STATE"
export ROLLOUT_MODEL_ADAPTER=local
rollout() { "$VENV/bin/rollout" "$@"; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

rm -rf "$STATE"
step "1. Validate the workflow bundle (every artifact of the checklist)"
rollout validate

step "2. The published one-page policy and approved tools list"
rollout policy | head -40
echo "... (rollout policy prints the whole page)"
