"""Prometheus metrics for ``/metrics``, observed from the audit records themselves.

``ObservedSink`` wraps the gateway's request sink: each record, already scrubbed, updates the
counters (requests by decision and cohort, boundary findings by type, upstream errors) and
the per-stage latency histograms. Labels are closed sets (decisions, cohort names, stage
names, detector ids, exception class names): never question text, subjects or outputs.
Each worker process keeps its own registry; scrape every worker or run one.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "GatewayMetrics", "ObservedSink"]

_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class GatewayMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("rollout_requests", "Gateway requests by decision and cohort",
                                ["decision", "cohort"], registry=self.registry)
        self.responses = Counter("rollout_http_responses", "HTTP responses by route and status",
                                 ["route", "status"], registry=self.registry)
        self.stage = Histogram("rollout_stage_seconds", "Latency of each pipeline stage", ["stage"],
                               buckets=_BUCKETS, registry=self.registry)
        self.findings = Counter("rollout_boundary_findings", "Data-boundary findings by where and type",
                                ["where", "type"], registry=self.registry)
        self.upstream_errors = Counter("rollout_upstream_errors", "Model and pipeline failures by error class",
                                       ["error"], registry=self.registry)
        self.rejected = Counter("rollout_rejected", "Requests refused before the handler (limits, overload)",
                                ["reason"], registry=self.registry)

    def observe(self, record: dict[str, Any]) -> None:
        cohort = (record.get("cohort") or {}).get("name") or "none"
        self.requests.labels(str(record.get("decision")), str(cohort)).inc()
        for stage, ms in (record.get("latency_ms") or {}).items():
            self.stage.labels(str(stage)).observe(float(ms) / 1000)
        for where, counts in (record.get("findings") or {}).items():
            for kind, n in counts.items():
                self.findings.labels(str(where), str(kind)).inc(n)
        if record.get("error"):
            self.upstream_errors.labels(str(record["error"])).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


class ObservedSink:
    """A RequestSink that updates the metrics, then writes to the wrapped sink."""

    def __init__(self, inner: Any, metrics: GatewayMetrics):
        self.inner, self.metrics = inner, metrics

    def write(self, record: dict[str, Any]) -> None:
        self.inner.write(record)
        self.metrics.observe(record)

    def close(self) -> None:
        self.inner.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)
