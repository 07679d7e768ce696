"""The composition root for the local default: where each piece of state lives, and the
one place that wires a Gateway from a bundle and a state directory.

State directory layout (default ``.rollout/``):
    releases/ evals/ audit/ state/    the object store (LocalStore), see controller.adapters
    flags/<workflow>.flagd.json       the live flag document the gateway's flagd provider reads
    requests/YYYY-MM-DD.jsonl         the request audit trail
    idp/                              the local dev IdP's signing key and JWKS
    subject-key                       the key for pseudonymous subject hashes (0600)
"""

from __future__ import annotations

import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controller.bundle.models import Bundle, Endpoint

__all__ = ["StatePaths", "build_gateway", "make_model_adapter", "open_local_store", "subject_key"]


@dataclass(frozen=True)
class StatePaths:
    root: Path

    def flags(self, workflow_id: str) -> Path:
        return self.root / "flags" / f"{workflow_id}.flagd.json"

    @property
    def requests(self) -> Path:
        return self.root / "requests"

    @property
    def idp(self) -> Path:
        """The directory a ``DevIdp`` is rooted at; it keeps its key and JWKS in ``idp/`` beneath."""
        return self.root

    @property
    def subject_key(self) -> Path:
        return self.root / "subject-key"


def open_local_store(state: Path) -> Any:
    from controller.adapters.local import LocalStore

    state.mkdir(parents=True, exist_ok=True)
    return LocalStore(state)


def subject_key(path: Path) -> bytes:
    """A per-deployment secret for pseudonyms; created once, atomically, readable only by us."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(secrets.token_bytes(32))
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)  # never replaces a key another process created first
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
    return path.read_bytes()


def ensure_live_flags(bundle: Bundle, paths: StatePaths) -> Path:
    """The live flag document; starts as the bundle's own definition (everything off)."""
    live = paths.flags(bundle.id)
    if not live.exists():
        live.parent.mkdir(parents=True, exist_ok=True)
        tmp = live.with_name(f".{live.name}.tmp")
        shutil.copyfile(bundle.flags_path, tmp)
        os.replace(tmp, live)
    return live


def make_model_adapter(release: Any, retriever: Any, *, endpoint_url: str | None = None) -> Any:
    """The adapter a release names (``local`` offline baseline, ``bedrock``, ``openai-compatible``)."""
    from controller.bundle.models import Guardrail
    from controller.models.factory import make_adapter

    model = release.model
    endpoint = Endpoint.model_validate({"kind": model.adapter, "region": model.region, "base_url": model.base_url})
    guardrail = Guardrail(id=model.guardrail[0], version=model.guardrail[1]) if model.guardrail else None
    return make_adapter(endpoint, retriever=retriever, endpoint_url=endpoint_url, guardrail=guardrail)


def build_gateway(
    bundle: Bundle,
    state: Path,
    *,
    jwks: str | None = None,
    poll_ms: int = 500,
    store: Any = None,
    sink: Any = None,
    adapter_factory: Any = None,
) -> Any:
    """A Gateway for ``bundle`` on the local default (or with the given seams replaced)."""
    from controller.adapters.devidp import DevIdp
    from controller.adapters.flagd_source import FlagdFileSource
    from controller.adapters.request_sinks import JsonlSink
    from controller.gateway.handler import Gateway
    from controller.gateway.identity import FileJwks, IdentityVerifier, UrlJwks

    paths = StatePaths(state)
    store = store or open_local_store(state)
    if jwks is None:
        idp = DevIdp(paths.idp)
        idp.ensure()
        source: Any = FileJwks(idp.jwks_path)
    elif jwks.startswith(("https://", "http://")):
        source = UrlJwks(jwks)
    else:
        source = FileJwks(Path(jwks))
    wf = bundle.workflow
    verifier = IdentityVerifier(wf.sso, wf.personal_accounts, source, max_lifetime=wf.sso.idp.max_token_lifetime)
    flags = FlagdFileSource(
        ensure_live_flags(bundle, paths),
        release_flag=wf.rollout.release_flag,
        kill_switch_flag=wf.rollout.kill_switch_flag,
        poll_ms=poll_ms,
    )
    return Gateway(
        workflow=wf,
        verifier=verifier,
        flags=flags,
        store=store,
        sink=sink or JsonlSink(paths.requests),
        subject_key=subject_key(paths.subject_key),
        adapter_factory=adapter_factory or make_model_adapter,
    )
