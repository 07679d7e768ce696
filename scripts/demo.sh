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

step "3. Snapshot the bundle as a release (content-addressed; same content, same digest)"
rollout release create
rollout release show

step "4. Run the golden-set eval on exactly that release; the result is stored under its digest"
rollout eval run
rollout eval list

step "5. Serve it to the internal cohort (local convenience until 'rollout promote' lands)"
rollout release create --point-flag internal

step "6. An internal user (group ai-pilot) is answered, with citations, through the full gateway path"
rollout ask --as alice.moreau@corp.example --groups eng,ai-pilot "How quickly must the primary on-call acknowledge a page?"

step "7. An engineer outside the internal cohort gets the documented fallback"
rollout ask --as ben.okoro@corp.example --groups eng "How quickly must the primary on-call acknowledge a page?"

step "8. A prompt carrying a (fake) AWS key is blocked; the key is never echoed or logged"
rollout ask --as alice.moreau@corp.example --groups eng,ai-pilot \
  "deploy fails with aws_access_key_id AKIA""FAKE2TESTKEY7DOC, which role do I need?" || echo "(exit $? : blocked)"

step "9. A personal account is refused before anything else happens"
rollout ask --as alice.moreau@gmail.com --groups eng,ai-pilot "What is the VPN address?" || echo "(exit $? : refused)"

step "10. The request audit trail: one record per request, redacted, subjects pseudonymous"
tail -n 4 "$STATE"/requests/*.jsonl | cut -c1-220
