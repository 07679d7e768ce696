"""The import contract in pyproject.toml holds, and it can fail.

`make lint` runs `lint-imports`; this test proves the contract is not vacuous by running the
same tool on a copy of the package with one deliberately bad import (a core module reaching an
adapter), and on the untouched copy as the control.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _run_contract(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", str(tree / "pyproject.toml")],
        cwd=tree, env=env, capture_output=True, text=True, timeout=120,
    )


@pytest.fixture()
def package_copy(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "controller", tmp_path / "controller", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_contract_holds_on_the_package_as_it_is(package_copy: Path) -> None:
    result = _run_contract(package_copy)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "bad_import", "contract"),
    [
        ("core/release.py", "import controller.adapters.local", "never do I/O"),
        ("boundaries/redactor.py", "import boto3", "never do I/O"),
        ("service/publish.py", "import controller.cli", "nothing imports it"),
        ("adapters/atomic.py", "import controller.service.compose", "never compose"),
        ("gateway/handler.py", "import controller.adapters.flagd_source", "through ports"),
    ],
)
def test_a_forbidden_import_breaks_the_contract(package_copy: Path, module: str, bad_import: str, contract: str) -> None:
    path = package_copy / "controller" / module
    path.write_text(path.read_text() + f"\n{bad_import}  # deliberately bad\n")
    result = _run_contract(package_copy)
    assert result.returncode != 0
    assert "0 broken" not in result.stdout  # (a core import breaks the request-path contract too)
    assert contract in result.stdout.replace("\n", " ")
