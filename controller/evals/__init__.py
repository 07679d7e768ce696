"""Golden-set evals of one release.

    scoring.py   pure: one observation against its case's expectations; the verdict of a set
    results.py   the stored result document, its key, and the loader that re-verifies it
    runner.py    the cases through the gateway (bounded retries when a dependency is down)

The verdict itself (PASS / FAIL / INCONCLUSIVE) is ``controller.core.verdict.Verdict``.
"""
