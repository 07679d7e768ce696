"""Per-request overhead of the gateway without the model.

identity (ES256 JWT verify) + two flag evaluations (OpenFeature, flagd in-process) +
boundaries on a 4 KB prompt + retrieval + the audit write (JSONL, fsync), over N requests with
a zero-latency model adapter. Printed beside the baseline measured in the same run: the bare
OpenFeature evaluation of the same two flags. Target: p50 <= 1 ms, p99 <= 3 ms.

    .venv/bin/python benchmarks/gateway.py [--requests 10000]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from controller.adapters.devidp import DevIdp  # noqa: E402
from controller.adapters.flag_file import write_flag_document  # noqa: E402
from controller.adapters.request_sinks import JsonlSink  # noqa: E402
from controller.bundle.models import load_bundle  # noqa: E402
from controller.core.flags import render_flag_document  # noqa: E402
from controller.core.release import create_release, model_choice  # noqa: E402
from controller.models.testing import CannedAdapter  # noqa: E402
from controller.service.compose import StatePaths, build_gateway, open_local_store  # noqa: E402


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=10_000)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="rollout-bench-"))
    try:
        bundle = load_bundle(REPO / "workflows/internal-docs-qa")
        state = tmp / "state"
        store = open_local_store(state)
        digest, _ = create_release(store, bundle, model_choice(bundle.workflow, "local"))
        paths = StatePaths(state)
        doc = render_flag_document(bundle.workflow, {"internal": digest}, killed=False)
        write_flag_document(paths.flags(bundle.id), doc)
        gateway = build_gateway(
            bundle, state, sink=JsonlSink(paths.requests), adapter_factory=lambda release, retriever: CannedAdapter()
        )
        idp = DevIdp(paths.idp)
        token = idp.mint("alice.moreau@corp.example", ["eng", "ai-pilot"], issuer=bundle.workflow.sso.idp.issuer,
                         audience=bundle.workflow.sso.idp.audience)
        filler = "We deploy with deployctl; the lock is held by another release during the rollout window. "
        prompt = ("How do I resolve 'lock held by another release' in deployctl? Context: " + filler * 60)[:4096]

        # Baseline: the bare OpenFeature evaluation of the same two flags, same client.
        flags = gateway.flags
        for _ in range(200):
            flags.decide("sub", "alice.moreau@corp.example", ("eng", "ai-pilot"))
        base = []
        for _ in range(args.requests):
            t = time.perf_counter()
            flags.decide("sub", "alice.moreau@corp.example", ("eng", "ai-pilot"))
            base.append((time.perf_counter() - t) * 1000)

        for _ in range(200):
            gateway.ask(prompt, token)
        lat = []
        decisions = set()
        for _ in range(args.requests):
            t = time.perf_counter()
            r = gateway.ask(prompt, token)
            lat.append((time.perf_counter() - t) * 1000)
            decisions.add(r.decision.value)
        gateway.sink.close()
        assert decisions == {"answered"}, decisions

        p50, p99 = percentile(lat, 50), percentile(lat, 99)
        b50, b99 = percentile(base, 50), percentile(base, 99)
        print(f"gateway overhead, {args.requests} requests, 4 KB prompt, zero-latency model, JSONL+fsync audit")
        print(f"{'':28}{'p50 ms':>10}{'p99 ms':>10}{'mean ms':>10}")
        print(f"{'baseline: 2 flag evals':28}{b50:>10.3f}{b99:>10.3f}{statistics.mean(base):>10.3f}")
        print(f"{'full gateway request':28}{p50:>10.3f}{p99:>10.3f}{statistics.mean(lat):>10.3f}")
        print(f"ratio full/baseline: p50 {p50 / b50:.1f}x, p99 {p99 / b99:.1f}x")
        ok50, ok99 = p50 <= 1.0, p99 <= 3.0
        print(f"target p50 <= 1 ms: {'PASS' if ok50 else 'FAIL'}; target p99 <= 3 ms: {'PASS' if ok99 else 'FAIL'}")
        return 0 if ok50 and ok99 else 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
