"""The flag document: atomic writes leave no debris, and rendering is deterministic."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from controller.adapters.flag_file import STALE_TEMP_SECONDS, write_flag_document
from controller.bundle.models import Workflow
from controller.bundle.yamlio import load_yaml
from controller.core.flags import flagd_problems, render_flag_document

REPO = Path(__file__).resolve().parent.parent
WF = Workflow.model_validate(load_yaml(REPO / "workflows/internal-docs-qa/workflow.yaml").data)


def test_rendered_documents_are_valid_flagd_and_deterministic() -> None:
    served = {"internal": "a" * 64, "limited": "b" * 64}
    doc = render_flag_document(WF, served, killed=False)
    assert flagd_problems(doc) == []
    assert doc == render_flag_document(WF, dict(reversed(served.items())), killed=False)
    release = doc["flags"][WF.rollout.release_flag]
    assert release["variants"] == {"off": "off", "internal": "a" * 64, "limited": "b" * 64, "general": "off"}


def test_a_writer_killed_before_its_rename_leaves_debris_that_the_next_write_sweeps(tmp_path: Path) -> None:
    path = tmp_path / "wf.flagd.json"
    stale = tmp_path / f".{path.name}.dead.tmp"
    fresh = tmp_path / f".{path.name}.live.tmp"
    stale.write_text("{half")
    fresh.write_text("{in flight")
    old = time.time() - STALE_TEMP_SECONDS - 10
    os.utime(stale, (old, old))
    data = write_flag_document(path, render_flag_document(WF, {}, killed=True))
    assert json.loads(path.read_bytes()) == json.loads(data)
    assert not stale.exists()
    assert fresh.exists(), "a temp file another writer may still be using is left alone"
