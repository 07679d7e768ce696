"""Fixtures for the infra suite (runs in .venv-infra: ``python -m pytest tests/infra``).

The Pulumi mocks live in ``infra_mocks`` and are installed when this conftest imports it,
before any test module imports the program. In the main virtualenv (no Pulumi) the whole
directory is skipped at collection.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

PROJECT = Path(__file__).resolve().parents[2]
if str(PROJECT) not in sys.path:
    sys.path.insert(0, str(PROJECT))

HAVE_PULUMI = all(importlib.util.find_spec(m) is not None for m in ("pulumi", "pulumi_policy"))
if not HAVE_PULUMI:
    collect_ignore_glob = ["*"]  # the main venv: this suite needs .venv-infra
else:
    from infra_mocks import BUNDLE, ProgramRun, make_config, run_program


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.infra)


@pytest.fixture(scope="session")
def lambda_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real archive built with ``--no-deps`` (no network)."""
    from infra.build_archive import build_archive

    out = tmp_path_factory.mktemp("archive") / "lambda.zip"
    build_archive(out, deps=False)
    return out


@pytest.fixture(scope="session")
def bundle() -> Any:
    from controller.bundle.models import load_bundle

    return load_bundle(PROJECT / BUNDLE)


@pytest.fixture(scope="session")
def program(bundle: Any, lambda_archive: Path) -> ProgramRun:
    """The shipped bundle, deployed once per session with default stack config."""
    return run_program(bundle, make_config(PROJECT, lambda_archive))
