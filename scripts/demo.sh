#!/usr/bin/env bash
# The operator's story on the embedded default: local state directory, offline model.
# Every step runs the real CLI; nothing here talks to AWS.
set -euo pipefail
VENV=${VENV:-.venv}
STATE=${STATE:-.rollout/demo}
ROOT=$(pwd)
export ROLLOUT_STATE="$STATE"
export ROLLOUT_MODEL_ADAPTER=local
export COLUMNS=${COLUMNS:-160}  # wide enough for the tables when output is not a terminal
rollout() { "$ROOT/$VENV/bin/rollout" "$@"; }
py() { "$ROOT/$VENV/bin/python" "$@"; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
expect_exit() { # expect_exit CODE command...: run, and fail the demo unless it exits with CODE
  local want=$1; shift
  set +e; "$@"; local got=$?; set -e
  if [ "$got" != "$want" ]; then echo "demo: expected exit $want, got $got: $*" >&2; exit 1; fi
  echo "(exit $got, as expected)" >&2
}
ask() { rollout ask --workflow "$W" "$@"; }
INSIDER=(--as alice.moreau@corp.example --groups eng,ai-pilot)
OUTSIDER=(--as ben.okoro@corp.example --groups eng)
Q="How quickly must the primary on-call acknowledge a page?"

rm -rf "$STATE"
mkdir -p "$STATE"

# A working copy of the project's bundle for the story. Its bake times are shortened to zero so
# the whole rollout fits in a minute; everything else is the shipped bundle.
DEMO="$STATE/demo-project"
mkdir -p "$DEMO"
cp -r workflows flags runbooks "$DEMO/"
W="$DEMO/workflows/internal-docs-qa"
py - "$W/workflow.yaml" <<'EOF'
import sys
from pathlib import Path
path = Path(sys.argv[1])
text = path.read_text()
for before in ("bake_time: 24h", "bake_time: 72h"):
    text = text.replace(before, "bake_time: 0m  # DEMO ONLY: shortened so the story fits in a minute")
path.write_text(text)
EOF

step "1. Validate the workflow bundle (every artifact of the checklist)"
rollout validate --workflow workflows/internal-docs-qa

step "2. The published one-page policy and approved tools list (first lines)"
rollout policy --workflow workflows/internal-docs-qa | head -24
echo "... (rollout policy prints the whole page)"

step "3. Release 1: snapshot the bundle (content-addressed) and run the golden-set eval on exactly it"
rollout release create --workflow "$W"
rollout eval run --workflow "$W"

step "4. Promote release 1 to the internal cohort"
rollout promote --workflow "$W" --cohort internal --operator priya.natarajan --reason "pilot for the platform team"

step "5. An internal user (group ai-pilot) is answered, with citations"
ask "${INSIDER[@]}" "$Q"

step "6. An engineer outside the internal cohort gets the documented fallback"
ask "${OUTSIDER[@]}" "$Q"

step "7. A prompt carrying a (fake) AWS key is blocked; the key is never echoed or logged"
expect_exit 3 ask "${INSIDER[@]}" "deploy fails with aws_access_key_id AKIA""FAKE2TESTKEY7DOC, which role do I need?"

step "8. The same key hidden with zero-width spaces is blocked too; nothing of it reaches the request log"
ZW=$'\u200b'
expect_exit 3 ask "${INSIDER[@]}" "deploy fails with aws_access_key_id AKIA${ZW}FAKE${ZW}2TEST${ZW}KEY7DOC, which role do I need?"
if cat "$STATE"/requests/*.jsonl | grep -q "FAKE"; then echo "demo: a key fragment reached the request log" >&2; exit 1; fi
cat "$STATE"/requests/*.jsonl | grep -c 'aws_access_key_id \[REDACTED:aws-access-key\], which role' | sed 's/^/request log: no fragment of the key; records with the redacted prompt: /'

step "9. A personal account is refused before anything else happens"
expect_exit 3 ask --as alice.moreau@gmail.com --groups eng,ai-pilot "$Q"

step "10. Skipping a cohort, or promoting without the required approvals, is refused with every reason"
expect_exit 3 rollout promote --workflow "$W" --cohort general --operator priya.natarajan --reason "skip ahead"

step "11. Approvals are authenticated acts: a second person approves this exact digest and cohort; a forged approval is refused"
# Tokens from the local dev IdP (the bundle's issuer); with a real IdP: `--token`, ROLLOUT_TOKEN or `rollout login`.
token() { rollout dev-token --workflow "$W" --email "$1" --groups "${2:-}"; }
PRIYA=$(token priya.natarajan@corp.example ai-rollout-operators)
DANA=$(token dana.whitfield@corp.example ai-rollout-approvers)
SAM=$(token sam.okafor@corp.example ai-rollout-approvers)
R1=$(rollout status --workflow "$W" --json | py -c "import json,sys; print(json.load(sys.stdin)['state']['candidate']['release'])")
echo "-- a free name is not an approval (dana.whitfield typed by someone else):"
expect_exit 3 rollout approve --workflow "$W" --release "$R1" --cohort limited --operator dana.whitfield
echo "-- the operator cannot approve their own promotion (priya is an operator, not an approver):"
expect_exit 3 rollout approve --workflow "$W" --release "$R1" --cohort limited --token "$PRIYA"
echo "-- Dana, signed in, approves release ${R1:0:12} for limited; Priya promotes it:"
rollout approve --workflow "$W" --release "$R1" --cohort limited --token "$DANA" --reason "read the eval and the pilot notes"
rollout promote --workflow "$W" --cohort limited --token "$PRIYA" --reason "pilot went well"

step "12. General needs two approvals by people other than the operator; then release 1 is stable"
rollout approve --workflow "$W" --release "$R1" --cohort general --token "$DANA" --reason "limited clean"
expect_exit 3 rollout promote --workflow "$W" --cohort general --token "$PRIYA" --reason "one approval is not enough"
rollout approve --workflow "$W" --release "$R1" --cohort general --token "$SAM" --reason "no near-misses in review"
rollout promote --workflow "$W" --cohort general --token "$PRIYA" --reason "limited cohort clean for a week"
ask "${OUTSIDER[@]}" "$Q"

step "13. Kill switch: every answer becomes the fallback; releasing it restores them"
rollout kill --workflow "$W" --operator sam.okafor --reason "suspected data exposure, investigating"
ask "${INSIDER[@]}" "$Q" || true
rollout unkill --workflow "$W" --operator sam.okafor --reason "false alarm: no exposure found"
ask "${INSIDER[@]}" "$Q"

step "14. A careless change (the credentials boundary removed) is refused before any eval: its golden cases say why"
CARELESS="$STATE/careless-project"
mkdir -p "$CARELESS"
cp -r "$DEMO"/workflows "$DEMO"/flags "$DEMO"/runbooks "$CARELESS/"
py - "$CARELESS/workflows/internal-docs-qa/workflow.yaml" <<'EOF'
import sys
from pathlib import Path
from ruamel.yaml import YAML
path = Path(sys.argv[1]); yaml = YAML()
data = yaml.load(path.read_text())
data["data_boundaries"]["forbidden"] = [f for f in data["data_boundaries"]["forbidden"] if f["category"] != "credentials"]
with path.open("w") as fh:
    yaml.dump(data, fh)
EOF
# validate knows statically that the golden cases expecting a credentials block can no longer pass
expect_exit 2 rollout release create --workflow "$CARELESS/workflows/internal-docs-qa"
expect_exit 3 rollout promote --workflow "$CARELESS/workflows/internal-docs-qa" --cohort internal --operator priya.natarajan --reason "small cleanup"

step "15. Release 2 moves to the team's self-hosted endpoint (openai-compatible, simulated on 127.0.0.1)"
V2="$STATE/v2-project"
mkdir -p "$V2"
cp -r "$DEMO"/workflows "$DEMO"/flags "$DEMO"/runbooks "$V2/"
rm -f "$STATE/model-degraded" "$STATE/model-port"
# Started directly (not through the py function, whose subshell would hide the server's pid) and
# stopped on every exit, so `make demo` leaves no process behind.
"$ROOT/$VENV/bin/python" scripts/demo_model_server.py --corpus "$W/corpus" --port-file "$STATE/model-port" --degrade-flag "$STATE/model-degraded" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; wait $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 50); do [ -s "$STATE/model-port" ] && break; sleep 0.1; done
py - "$V2/workflows/internal-docs-qa/workflow.yaml" "$(cat "$STATE/model-port")" <<'EOF'
import sys
from pathlib import Path
from ruamel.yaml import YAML
path, port = Path(sys.argv[1]), sys.argv[2]
yaml = YAML(); data = yaml.load(path.read_text())
surface = data["surface"]
surface["endpoint"] = {"kind": "openai-compatible", "base_url": f"http://127.0.0.1:{port}"}
surface["models"] = [{"id": "northwind-docs-7b", "purpose": "answers (self-hosted vLLM)"}]
surface["default_model"] = "northwind-docs-7b"
with path.open("w") as fh:
    yaml.dump(data, fh)
EOF
rollout release create --workflow "$V2/workflows/internal-docs-qa" --adapter openai-compatible
rollout eval run --workflow "$V2/workflows/internal-docs-qa" --adapter openai-compatible > /dev/null && echo "release 2 eval: PASS"
rollout promote --workflow "$V2/workflows/internal-docs-qa" --adapter openai-compatible --cohort internal --operator priya.natarajan --reason "move to self-hosted model"
ask "${INSIDER[@]}" "$Q"

step "16. SIMULATED INCIDENT: the vendor swaps the model behind the endpoint; the nightly re-evaluation FAILS"
touch "$STATE/model-degraded"
expect_exit 3 rollout eval run --workflow "$V2/workflows/internal-docs-qa" --adapter openai-compatible --no-rollback --json > "$STATE/v2-reeval.json"
py -c "import json,sys; r=json.load(open(sys.argv[1]))['result']; print('re-evaluation of release 2:', r['verdict'], {k: f\"{v['passed']}/{v['total']}\" for k, v in r['categories'].items()})" "$STATE/v2-reeval.json"

step "17. The scheduled reconcile rolls release 2 back automatically: internal is served release 1 again"
rollout reconcile --workflow "$W"
ask "${INSIDER[@]}" "$Q"

step "18. The control-plane audit chain verifies, and the history shows who did what"
rollout audit verify --workflow "$W"
rollout history --workflow "$W"

step "19. The request audit trail: one record per request, redacted, subjects pseudonymous (last 3)"
tail -n 3 "$STATE"/requests/*.jsonl | cut -c1-200

step "20. The evidence: the weekly review, and the auditor's report of the Definition of Done"
rollout review --workflow "$W" --since 7d
rollout audit report --workflow "$W" --format md --out "$STATE/audit-report.md"
rollout audit report --workflow "$W" --format html --out "$STATE/audit-report.html"
echo "(no deployed stack here: the provisioned-configuration checks stay UNKNOWN until --stack-export names a real \`pulumi stack export\`)"
echo "For illustration only, the same report against an EXAMPLE stack export generated from the Pulumi mocks:"
rollout audit report --workflow "$W" --stack-export tests/fixtures/stack-export.json --format md --out "$STATE/audit-report-example-stack.md"
head -12 "$STATE/audit-report.md"
echo "... auditor's report written to $STATE/audit-report.md and $STATE/audit-report.html"

step "21. A second workflow of a different shape: support reply drafting (customer data redacted, never blocked)"
S="$DEMO/workflows/support-reply-drafting"
rollout validate --workflow support-reply-drafting
rollout release create --workflow "$S"
rollout eval run --workflow "$S" > /dev/null && echo "support-reply-drafting release 1 eval: PASS"
rollout promote --workflow "$S" --operator tomas.reyes --reason "pilot with the support leads"
rollout ask --workflow "$S" --as ana.silva@corp.example --groups support-leads \
  "Ticket from Jordan Example (jordan.example@customer.example, +1-202-555-0147): my robot arrived late. What do we offer on the next order when a delivery is late?"
rollout ask --workflow "$S" --as ana.silva@corp.example --groups support-leads --json \
  "Ticket: my order is late, what do we offer when a delivery is late?" \
  | py -c "import json,sys; d=json.load(sys.stdin); print('requires_human_verification:', d['requires_human_verification'])"

step "22. Both workflows at a glance; one command engages every kill switch"
rollout workflows
rollout kill --all --operator sam.okafor --reason "DEMO: vendor incident, every AI path off"
rollout workflows
