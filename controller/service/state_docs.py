"""Where the rollout service keeps a workflow's state, and the documents derived from it.

``state/<workflow>.json`` in the store (``state_key``, canonical JSON), the fail-safe kill marker
beside the live flag file (``kill_marker_path``), and the flag document as a pure function of the
state (``render``). Re-exported by ``controller.service.rollout``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from controller.bundle.models import Workflow
from controller.core import audit
from controller.core.flags import render_flag_document
from controller.core.gates import RolloutState, served

__all__ = ["canonical_state", "kill_marker_path", "render", "state_key"]


def state_key(workflow_id: str) -> str:
    return f"state/{workflow_id}.json"


def canonical_state(state: RolloutState) -> bytes:
    return audit.canonical_json(state.to_dict())


def kill_marker_path(flags_path: Path) -> Path:
    name = flags_path.name.removesuffix(".flagd.json").removesuffix(".json")
    return flags_path.with_name(f"{name}.kill-pending.json")


def render(
    workflow: Workflow, state: RolloutState, *, killed: bool = False, engaged_at: str | None = None
) -> dict[str, Any]:
    """The flag document for ``state`` (``killed`` forces the kill switch on, engaged at
    ``engaged_at``: a fail-safe kill the state does not know yet). Pure."""
    if state.kill.engaged:
        return render_flag_document(
            workflow, served(state), killed=True, engaged_at=state.kill.at, version=state.generation
        )
    return render_flag_document(
        workflow, served(state), killed=killed, engaged_at=engaged_at if killed else None, version=state.generation
    )
