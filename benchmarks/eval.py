"""Eval runner throughput: N golden cases through a model that takes a fixed latency.

Every case goes through the real gateway path (dev-IdP token + signature check, flags,
boundaries, retrieval, audit record to JSONL with fsync) to a model adapter that sleeps
``--latency-ms`` and then answers with the offline local model. The ideal wall time is
cases x latency / concurrency; the runner's overhead is the ratio to it.

    .venv/bin/python benchmarks/eval.py [--cases 30] [--latency-ms 200] [--concurrency 1 8]

Target: within 15% of ideal at concurrency 8. The golden set here is correctness cases only
(every case must reach the model), so the verdict itself is FAIL by design (no policy or
refusal cases); the benchmark reports how many cases passed instead. (With 30 cases and 8 workers the last wave is
partial, so the best possible is ceil(30/8) x 200 ms = 800 ms, ratio 1.067.)
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

REPO = Path(__file__).resolve().parent.parent
BUNDLE = "workflows/internal-docs-qa"


class Delayed:
    """Sleeps, then delegates: a remote model's latency without a remote model."""

    name = "delayed"

    def __init__(self, inner: Any, seconds: float):
        self.inner, self.seconds = inner, seconds

    def complete(self, request: Any) -> Any:
        time.sleep(self.seconds)
        return self.inner.complete(request)


def _project(dest: Path, cases: int) -> Path:
    """A copy of the bundle whose golden set is ``cases`` answerable cases (all reach the model)."""
    for part in ("workflows", "flags", "runbooks"):
        shutil.copytree(REPO / part, dest / part)
    golden_path = dest / BUNDLE / "golden.yaml"
    yaml = YAML(typ="rt")
    doc = yaml.load(golden_path.read_text(encoding="utf-8"))
    answerable = [c for c in doc["cases"] if c["category"] == "correctness"]
    out = []
    for i in range(cases):
        case = dict(answerable[i % len(answerable)])
        case["id"] = f"{case['id']}-{i:02d}"
        out.append(case)
    doc["cases"] = out
    with golden_path.open("w", encoding="utf-8") as fh:
        yaml.dump(doc, fh)
    return dest / BUNDLE


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=30)
    parser.add_argument("--latency-ms", type=float, default=200.0)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    args = parser.parse_args()

    from controller.adapters.devidp import DevIdp
    from controller.bundle.models import load_bundle
    from controller.core.release import create_release, model_choice
    from controller.evals.runner import run_eval
    from controller.service.compose import StatePaths, build_gateway, make_model_adapter, open_local_store

    latency = args.latency_ms / 1000
    with tempfile.TemporaryDirectory(prefix="eval-bench-") as tmp:
        root = Path(tmp)
        bundle = load_bundle(_project(root, args.cases))
        state = root / "state"
        store = open_local_store(state)
        digest, _ = create_release(store, bundle, model_choice(bundle.workflow, "local"))
        idp = DevIdp(StatePaths(state).idp)
        idp.ensure()

        def factory(release: Any, retriever: Any) -> Any:
            return Delayed(make_model_adapter(release, retriever), latency)

        gateway = build_gateway(bundle, state, store=store, adapter_factory=factory)
        try:
            # warm-up: load the release, build its retriever and redactor once
            sso = bundle.workflow.sso.idp
            token = idp.mint("bench@corp.example", ["eng"], issuer=sso.issuer, audience=sso.audience)
            gateway.ask("warm up", token, eval_of=digest)

            print(f"eval runner: {args.cases} cases, model latency {args.latency_ms:.0f} ms, local store + JSONL audit")
            print(f"{'concurrency':>11}  {'wall s':>7}  {'ideal s':>7}  {'ratio':>6}  {'best possible':>13}  passed")
            worst = 0.0
            for n in args.concurrency:
                started = time.perf_counter()
                result = run_eval(gateway, digest, minter=idp, concurrency=n, operator="benchmark")
                wall = time.perf_counter() - started
                ideal = args.cases * latency / n
                best = math.ceil(args.cases / n) * latency
                ratio = wall / ideal
                if n == max(args.concurrency):
                    worst = ratio
                passed = f"{sum(c['passed'] for c in result.cases)}/{len(result.cases)}"
                print(f"{n:>11}  {wall:7.3f}  {ideal:7.3f}  {ratio:6.3f}  {best / ideal:13.3f}  {passed}")
        finally:
            gateway.sink.close()
            gateway.flags.close()
    target = 1.15
    ok = worst <= target
    print(f"target: ratio <= {target} at concurrency {max(args.concurrency)}: {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
