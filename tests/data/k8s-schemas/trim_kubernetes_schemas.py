"""Regenerate kubernetes-v*/ from the JSON schemas that the ``kubernetes-validate`` wheel ships.

Those schemas are the Kubernetes OpenAPI definitions turned into JSON Schema (openapi2jsonschema,
strict: unknown fields refused). The whole set is 1.4 MB of definitions per version; this keeps
the kind files the manifests under deploy/ use and only the definitions they reach.

    pip download --no-deps kubernetes-validate==1.37.0 && unzip kubernetes_validate-*.whl -d kv
    python tests/data/k8s-schemas/trim_kubernetes_schemas.py kv/kubernetes_validate/kubernetes-json-schema v1.33.0
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

KINDS = (
    "configmap-v1", "cronjob-batch-v1", "deployment-apps-v1", "networkpolicy-networking-v1",
    "poddisruptionbudget-policy-v1", "role-rbac-v1", "rolebinding-rbac-v1", "service-v1", "serviceaccount-v1",
)


def refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"].rsplit("/", 1)[-1]} if isinstance(node.get("$ref"), str) else set()
        return found.union(*(refs(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(refs(v) for v in node))
    return set()


def main() -> None:
    source, version = Path(sys.argv[1]), sys.argv[2]
    src = source / f"{version}-local-strict"
    out = Path(__file__).resolve().parent / f"kubernetes-{version}"
    out.mkdir(exist_ok=True)
    defs = json.loads((src / "_definitions.json").read_text())
    todo: set[str] = set()
    for kind in KINDS:
        schema = json.loads((src / f"{kind}.json").read_text())
        (out / f"{kind}.json").write_text(json.dumps(schema, indent=1, sort_keys=True) + "\n")
        todo |= refs(schema)
    keep: dict[str, Any] = {}
    while todo:
        name = todo.pop()
        if name not in keep:
            keep[name] = defs["$defs"][name]
            todo |= refs(keep[name]) - set(keep)
    trimmed = {**{k: v for k, v in defs.items() if k != "$defs"}, "$defs": dict(sorted(keep.items()))}
    (out / "_definitions.json").write_text(json.dumps(trimmed, indent=1, sort_keys=True) + "\n")
    print(f"{len(KINDS)} kinds, {len(keep)} of {len(defs['$defs'])} definitions -> {out}")


if __name__ == "__main__":
    main()
