"""Shared fixtures: a private copy of the shipped bundle that a test may break."""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

pytest_plugins = ["tests.fakes.s3"]

# The Pulumi tests run in the Pulumi program's own virtualenv (`make test-infra`).
if importlib.util.find_spec("pulumi") is None:
    collect_ignore_glob = ["infra/*"]

REPO = Path(__file__).resolve().parent.parent
BUNDLE = "workflows/internal-docs-qa"


def copy_project(dest: Path, bundles: tuple[str, ...] = (BUNDLE,)) -> Path:
    """Copy what a bundle references (bundle, flags, runbooks) into ``dest``; return the first bundle's
    dir. Only ``bundles`` are copied (default the one bundle most tests break; several bundles need -w)."""
    for part in ("flags", "runbooks"):
        shutil.copytree(REPO / part, dest / part)
    for bundle in bundles:
        shutil.copytree(REPO / bundle, dest / bundle)
    return dest / bundles[0]


def edit_yaml(path: Path, edit: Callable[[Any], None]) -> None:
    """Round-trip edit a YAML file (comments and order kept) with ``edit(data)``."""
    yaml = YAML(typ="rt")
    data = yaml.load(path.read_text(encoding="utf-8"))
    edit(data)
    with path.open("w", encoding="utf-8") as fh:
        yaml.dump(data, fh)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A writable copy of the project's bundle; the test's cwd is its root."""
    bundle = copy_project(tmp_path)
    monkeypatch.chdir(tmp_path)
    return bundle
