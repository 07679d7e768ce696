"""The one composition root: where each piece of state lives, and the one place that wires a
Gateway (for ``rollout ask``/``serve``/``eval``, and for the gateway Lambda) and a RolloutService
(for every rollout command, the evidence commands and the reconcile Lambda).

State directory layout (default ``.rollout/``):
    releases/ evals/ audit/ state/    the object store (LocalStore), see controller.adapters
    flags/<workflow>.flagd.json       the live flag document the gateway's flagd provider reads
    requests/YYYY-MM-DD.jsonl         the request audit trail
    idp/                              the local dev IdP's signing key and JWKS
    subject-key                       the key for pseudonymous subject hashes (0600)
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from controller.adapters.atomic import create_once
from controller.adapters.flag_file import flag_file_mode
from controller.ports import FlagSink, JwksSource, RequestSink, Store

if TYPE_CHECKING:
    from controller.service.rollout import RolloutService

from controller.bundle.models import Bundle, Endpoint, Workflow

__all__ = [
    "StatePaths",
    "build_gateway",
    "build_lambda_gateway",
    "flag_source_for",
    "jwks_source",
    "make_model_adapter",
    "open_local_store",
    "rollout_service",
    "subject_key",
]


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
        create_once(path, secrets.token_bytes(32), mode=0o600)  # never replaces another's key
    return path.read_bytes()


def ensure_live_flags(bundle: Bundle, paths: StatePaths) -> Path:
    """The live flag document; starts as the bundle's own definition (everything off)."""
    live = paths.flags(bundle.id)
    if not live.exists():
        create_once(live, bundle.flags_path.read_bytes(), mode=flag_file_mode())
    return live


def jwks_source(location: str | None, paths: StatePaths) -> JwksSource:
    """The IdP's keys: the local dev IdP's when no location is given, else ``open_jwks``'s choice
    (an http(s) URL or a file): the one rule, for the CLI, the server and the Lambda."""
    from controller.adapters import jwks  # PyJWT: not in the Pulumi environment, which imports this module

    if location is None:
        from controller.adapters.devidp import DevIdp

        idp = DevIdp(paths.idp)
        idp.ensure()
        return jwks.open_jwks(idp.jwks_path)
    return jwks.open_jwks(location)


def rollout_service(
    workflow: Workflow,
    store: Store,
    flags_path: Path,
    *,
    bundle_problems: Sequence[str] = (),
    flag_sinks: Sequence[FlagSink] = (),
    signer: Any = None,
) -> RolloutService:
    """The RolloutService for one workflow: the CLI, the evidence collector and the reconcile Lambda.
    ``signer`` (``evidence_signer``): evals must be signed by it; checkpoints are signed with it."""
    from controller.service.rollout import RolloutService

    return RolloutService(
        workflow, store, flags_path, bundle_problems=bundle_problems, flag_sinks=flag_sinks, signer=signer
    )


def evidence_signer(state: Path, spec: str | None = None) -> Any:
    """The evaluator's and controller's signing key: ``ROLLOUT_SIGNING_KEY`` (``local`` or
    ``kms:<key>``), default the key under the state directory (``controller.adapters.signing``)."""
    import os

    from controller.adapters.signing import open_signer

    return open_signer(spec if spec is not None else os.environ.get("ROLLOUT_SIGNING_KEY"), state)


def make_model_adapter(release: Any, retriever: Any, *, endpoint_url: str | None = None) -> Any:
    """The adapter a release names (``local`` offline baseline, ``bedrock``, ``openai-compatible``)."""
    from controller.bundle.models import Guardrail
    from controller.models.factory import make_adapter

    model = release.model
    endpoint = Endpoint.model_validate({"kind": model.adapter, "region": model.region, "base_url": model.base_url})
    guardrail = Guardrail(id=model.guardrail[0], version=model.guardrail[1]) if model.guardrail else None
    return make_adapter(
        endpoint,
        retriever=retriever,
        endpoint_url=endpoint_url,
        guardrail=guardrail,
        use_case=release.workflow.use_case,
    )


def build_gateway(
    bundle: Bundle,
    state: Path,
    *,
    jwks: str | None = None,
    poll_ms: int = 500,
    store: Any = None,
    sink: Any = None,
    adapter_factory: Any = None,
    flag_env: Mapping[str, str] | None = None,
) -> Any:
    """A Gateway for ``bundle`` on the local default (or with the given seams replaced); its flag
    source is chosen by ``flag_env`` (default: the process environment, see ``flag_source_for``)."""
    from controller.adapters.request_sinks import JsonlSink

    paths = StatePaths(state)
    return _gateway(
        bundle.workflow,
        jwks=jwks_source(jwks, paths),
        flags_path=ensure_live_flags(bundle, paths),
        poll_ms=poll_ms,
        store=store or open_local_store(state),
        sink=sink or JsonlSink(paths.requests),
        subject_key=subject_key(paths.subject_key),
        adapter_factory=adapter_factory or make_model_adapter,
        flag_env=os.environ if flag_env is None else flag_env,
    )


def _gateway(
    wf: Workflow,
    *,
    jwks: JwksSource,
    flags_path: Path,
    store: Store,
    sink: RequestSink,
    subject_key: bytes,
    adapter_factory: Any,
    poll_ms: int = 500,
    flag_env: Mapping[str, str] | None = None,
) -> Any:
    from controller.gateway.handler import Gateway
    from controller.gateway.identity import IdentityVerifier

    verifier = IdentityVerifier(wf.sso, wf.personal_accounts, jwks, max_lifetime=wf.sso.idp.max_token_lifetime)
    flags = flag_source_for(wf, flags_path, poll_ms=poll_ms, env=flag_env or {})
    return Gateway(
        workflow=wf,
        verifier=verifier,
        flags=flags,
        store=store,
        sink=sink,
        subject_key=subject_key,
        adapter_factory=adapter_factory,
    )


def flag_source_for(wf: Workflow, flags_path: Path, *, poll_ms: int, env: Mapping[str, str]) -> Any:
    """Where the gateway's flags come from: ``ROLLOUT_FLAG_SOURCE`` = ``file`` (default: the flag
    document at ``flags_path``), ``rpc`` or ``in-process`` (the flagd sidecar at
    ``ROLLOUT_FLAGD_HOST``:``ROLLOUT_FLAGD_PORT``, default localhost and flagd's port for the mode)."""
    from controller.adapters.flagd_source import flag_source
    from controller.errors import InvalidInput

    mode = env.get("ROLLOUT_FLAG_SOURCE") or "file"
    port_text = env.get("ROLLOUT_FLAGD_PORT") or ""
    if port_text and not (port_text.isdigit() and 0 < int(port_text) < 65536):
        raise InvalidInput(f"ROLLOUT_FLAGD_PORT={port_text!r}: expected a TCP port number (1-65535).")
    try:
        return flag_source(
            mode,
            path=flags_path,
            release_flag=wf.rollout.release_flag,
            kill_switch_flag=wf.rollout.kill_switch_flag,
            poll_ms=poll_ms,
            host=env.get("ROLLOUT_FLAGD_HOST") or "localhost",
            port=int(port_text) if port_text else None,
        )
    except InvalidInput as exc:
        raise InvalidInput(f"ROLLOUT_FLAG_SOURCE: {exc}") from None


def build_lambda_gateway(env: Mapping[str, str], *, flag_dir: Path) -> tuple[Any, Any]:
    """The gateway Lambda's Gateway and its S3 flag mirror, from the function's environment
    (``controller.gateway.lambda_handler`` documents the variables)."""
    import boto3

    from controller.adapters import open_store
    from controller.adapters.request_sinks import S3Sink
    from controller.bundle.models import load_bundle
    from controller.gateway.lambda_handler import FlagMirror

    bundle = load_bundle(Path(env["ROLLOUT_WORKFLOW"]))
    wf = bundle.workflow
    s3 = boto3.client("s3")
    flags_path = flag_dir / f"{wf.id}.flagd.json"
    mirror = FlagMirror(s3, env["ROLLOUT_FLAGS_BUCKET"], env["ROLLOUT_FLAGS_KEY"], flags_path)
    mirror.sync()
    gateway = _gateway(
        wf,
        jwks=jwks_source(wf.sso.idp.jwks_uri, StatePaths(flag_dir)),
        flags_path=flags_path,
        store=open_store(env["ROLLOUT_STORE"]),
        sink=S3Sink(s3, env["ROLLOUT_AUDIT_BUCKET"], kms_key_id=env.get("ROLLOUT_AUDIT_KMS_KEY"), batch_size=1),
        subject_key=_secret_subject_key(env.get("ROLLOUT_SUBJECT_KEY_SECRET")),
        adapter_factory=make_model_adapter,
        flag_env={},  # always the S3 mirror's file
    )
    return gateway, mirror


def _secret_subject_key(secret_id: str | None) -> bytes:
    import boto3

    if not secret_id:
        raise RuntimeError("ROLLOUT_SUBJECT_KEY_SECRET is required: subjects are never logged in clear")
    value = boto3.client("secretsmanager").get_secret_value(SecretId=secret_id)
    secret = value.get("SecretBinary") or value["SecretString"].encode("utf-8")
    return hashlib.sha256(secret).digest()
