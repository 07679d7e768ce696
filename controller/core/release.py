"""Releases: content-addressed snapshots of everything that changes the workflow's behaviour.

The gateway serves releases, never the working copy of the bundle, and an eval judges exactly
one release. A release is workflow.yaml, the prompt templates, the golden set and the corpus
(each by sha256), plus the model id and adapter and the package version, described by a
canonical JSON manifest whose sha256 is the release digest. Same content, same digest.

Store layout (create-only):
    releases/<digest>/files/<path>     the snapshot's files, by their path in the bundle
    releases/<digest>/manifest.json    written last: a release exists once its manifest does
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from controller import __version__
from controller.bundle.models import (
    Bundle,
    CorpusDoc,
    EndpointKind,
    GoldenSet,
    PromptTemplate,
    Workflow,
)
from controller.bundle.yamlio import YamlSyntaxError, parse_yaml
from controller.core.canonical import canonical_json, sha256_hex
from controller.errors import Conflict, InvalidInput

__all__ = [
    "LOCAL_MODEL_ID",
    "MANIFEST_SCHEMA",
    "ModelChoice",
    "Release",
    "build_manifest",
    "canonical_json",
    "create_release",
    "current_digest",
    "list_releases",
    "load_release",
    "model_choice",
    "release_digest",
]

MANIFEST_SCHEMA = "ai-rollout.release/v1"
LOCAL_MODEL_ID = "local-extractive-v1"


sha256 = sha256_hex


@dataclass(frozen=True)
class ModelChoice:
    """Which adapter answers and with which model id; part of what a release is."""

    adapter: str
    model_id: str
    region: str | None = None
    base_url: str | None = None
    guardrail: tuple[str, str] | None = None  # (id, version): Bedrock guardrail applied to every call

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"adapter": self.adapter, "id": self.model_id}
        if self.region:
            out["region"] = self.region
        if self.base_url:
            out["base_url"] = self.base_url
        if self.guardrail:
            out["guardrail"] = {"id": self.guardrail[0], "version": self.guardrail[1]}
        return out


def model_choice(workflow: Workflow, adapter: str | None = None) -> ModelChoice:
    """The bundle's sanctioned endpoint, or the offline baseline when ``adapter`` is ``local``."""
    kind = adapter or workflow.surface.endpoint.kind.value
    if kind not in {k.value for k in EndpointKind}:
        raise InvalidInput(f"model adapter {kind!r}: choose one of bedrock, openai-compatible, local.")
    if kind == EndpointKind.LOCAL:
        return ModelChoice("local", LOCAL_MODEL_ID)
    endpoint = workflow.surface.endpoint
    if kind != endpoint.kind.value:
        raise InvalidInput(
            f"model adapter {kind!r} does not match the bundle's sanctioned endpoint "
            f"({endpoint.kind.value}); only the offline 'local' baseline may replace it."
        )
    guardrail = workflow.surface.guardrail
    return ModelChoice(
        kind,
        workflow.surface.default_model,
        endpoint.region,
        endpoint.base_url,
        (guardrail.id, guardrail.version) if guardrail and kind == EndpointKind.BEDROCK else None,
    )


def _snapshot_files(bundle: Bundle) -> dict[str, bytes]:
    files = {"workflow.yaml": (bundle.root / "workflow.yaml").read_bytes()}
    for ref in bundle.workflow.prompts:
        files[ref.path] = (bundle.root / ref.path).read_bytes()
    files[bundle.workflow.eval.golden_set] = (bundle.root / bundle.workflow.eval.golden_set).read_bytes()
    for doc in bundle.corpus:
        files[f"corpus/{doc.path.name}"] = doc.path.read_bytes()
    return files


def build_manifest(bundle: Bundle, model: ModelChoice, files: Mapping[str, bytes]) -> dict[str, Any]:
    """The manifest: pure function of the snapshot's bytes, the model choice and the version."""
    corpus = {name: sha256(data) for name, data in sorted(files.items()) if name.startswith("corpus/")}
    return {
        "schema": MANIFEST_SCHEMA,
        "workflow": bundle.workflow.id,
        "package_version": __version__,
        "model": model.to_dict(),
        "prompt": {
            "id": bundle.prompt.id,
            "version": bundle.prompt.version,
            "sha256": sha256(bundle.prompt.text.encode("utf-8")),
        },
        "files": {
            name: {"sha256": sha256(data), "size": len(data)}
            for name, data in sorted(files.items())
            if not name.startswith("corpus/")
        },
        "corpus": {"digest": sha256(canonical_json(corpus)), "documents": corpus},
    }


def release_digest(manifest: Mapping[str, Any]) -> str:
    return sha256(canonical_json(manifest))


def current_digest(bundle: Bundle, model: ModelChoice) -> str:
    """The digest ``create_release`` would give the bundle as it is now, without storing it."""
    return release_digest(build_manifest(bundle, model, _snapshot_files(bundle)))


@dataclass(frozen=True)
class Release:
    """A loaded, verified release: what the gateway serves and an eval judges."""

    digest: str
    manifest: dict[str, Any]
    workflow: Workflow
    golden: GoldenSet
    prompt: PromptTemplate
    corpus: tuple[CorpusDoc, ...]

    @property
    def model(self) -> ModelChoice:
        m = self.manifest["model"]
        g = m.get("guardrail")
        guardrail = (g["id"], g["version"]) if g else None
        return ModelChoice(m["adapter"], m["id"], m.get("region"), m.get("base_url"), guardrail)

    @property
    def short(self) -> str:
        return self.digest[:12]


def _key(digest: str, *parts: str) -> str:
    return "/".join(("releases", digest, *parts))


def create_release(store: Any, bundle: Bundle, model: ModelChoice) -> tuple[str, bool]:
    """Snapshot ``bundle`` into ``store``; return (digest, created). Idempotent."""
    files = _snapshot_files(bundle)
    manifest = build_manifest(bundle, model, files)
    digest = release_digest(manifest)
    if store.get(_key(digest, "manifest.json")) is not None:
        return digest, False
    for name, data in files.items():
        _create_or_match(store, _key(digest, "files", name), data)
    _create_or_match(store, _key(digest, "manifest.json"), canonical_json(manifest))
    return digest, True


def _create_or_match(store: Any, key: str, data: bytes) -> None:
    """Create-only write that tolerates an identical earlier write (a crashed or racing create)."""
    try:
        store.create(key, data)
    except Conflict:
        existing = store.get(key)
        if existing is None or existing.data != data:
            raise InvalidInput(f"release object {key} exists with different content; the store is corrupt.") from None


def list_releases(store: Any) -> list[str]:
    return sorted(
        {key.split("/")[1] for key in store.list("releases/") if key.endswith("/manifest.json")}
    )


def resolve_digest(store: Any, prefix: str) -> str:
    """A full digest from an unambiguous prefix (at least 8 hex characters)."""
    if len(prefix) == 64:
        return prefix
    if len(prefix) < 8:
        raise InvalidInput(f"release {prefix!r}: give at least 8 hex characters of a digest (`rollout release list`).")
    matches = [d for d in list_releases(store) if d.startswith(prefix)]
    if not matches:
        raise InvalidInput(f"release {prefix!r}: no release stored starts with it (`rollout release list`).")
    if len(matches) > 1:
        raise InvalidInput(f"release {prefix!r}: {len(matches)} releases start with it; give more characters.")
    return matches[0]


def load_release(store: Any, digest: str) -> Release:
    """Read and re-verify a release; ``InvalidInput`` when it is missing, edited or truncated."""
    raw = store.get(_key(digest, "manifest.json"))
    if raw is None:
        raise InvalidInput(f"release {digest[:12]} is not in the store ({store.describe()}).")
    if sha256(raw.data) != digest:
        raise InvalidInput(f"release {digest[:12]}: manifest does not hash to its digest; it was modified.")
    manifest = json.loads(raw.data)
    files: dict[str, bytes] = {}
    expected = {**manifest["files"], **{k: {"sha256": v} for k, v in manifest["corpus"]["documents"].items()}}
    for name, meta in expected.items():
        obj = store.get(_key(digest, "files", name))
        if obj is None or sha256(obj.data) != meta["sha256"]:
            state = "missing" if obj is None else "modified"
            raise InvalidInput(f"release {digest[:12]}: file {name} is {state}; the release cannot be trusted.")
        files[name] = obj.data
    try:
        workflow = Workflow.model_validate(parse_yaml(files["workflow.yaml"].decode("utf-8")).data)
        golden = GoldenSet.model_validate(parse_yaml(files[workflow.eval.golden_set].decode("utf-8")).data)
    except (ValidationError, YamlSyntaxError, KeyError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"release {digest[:12]}: snapshot does not parse ({exc}).") from None
    p = manifest["prompt"]
    ref = next(r for r in workflow.prompts if r.id == p["id"] and r.version == p["version"])
    prompt = PromptTemplate(ref.id, ref.version, ref.path, files[ref.path].decode("utf-8"))  # type: ignore[arg-type]
    corpus = tuple(
        CorpusDoc(name.removeprefix("corpus/").removesuffix(".md"), name, files[name].decode("utf-8"))  # type: ignore[arg-type]
        for name in sorted(manifest["corpus"]["documents"])
    )
    return Release(digest, manifest, workflow, golden, prompt, corpus)
