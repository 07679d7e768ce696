"""``python -m infra.build_archive``: what the Lambda archive contains (no downloads here)."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from infra_mocks import BUNDLE, PROJECT, copy_project

from infra import build_archive as ba

HANDLERS = {"infra/__init__.py", "infra/handlers/__init__.py", "infra/handlers/gateway.py",
            "infra/handlers/reconcile.py", "infra/handlers/redaction.py"}  # fmt: skip


@pytest.fixture(scope="module")
def names(lambda_archive: Path) -> list[str]:
    return zipfile.ZipFile(lambda_archive).namelist()


def test_the_documented_command_builds_the_archive(tmp_path):
    out = tmp_path / "build" / "lambda.zip"
    result = subprocess.run(
        [sys.executable, "-m", "infra.build_archive", "--out", str(out), "--no-deps"],
        cwd=PROJECT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "wrote" in result.stdout and zipfile.is_zipfile(out)


def test_archive_holds_the_handlers_the_controller_and_the_bundle(names):
    assert set(names) >= HANDLERS
    controller = {p.relative_to(PROJECT).as_posix() for p in (PROJECT / "controller").rglob("*.py")
                  if "__pycache__" not in p.parts}  # fmt: skip
    assert controller <= set(names)
    bundle_files = {p.relative_to(PROJECT).as_posix() for p in (PROJECT / BUNDLE).rglob("*") if p.is_file()}
    assert bundle_files <= set(names)
    assert {f"{BUNDLE}/workflow.yaml", f"{BUNDLE}/golden.yaml", "flags/internal-docs-qa.flagd.json",
            "runbooks/kill-switch.md", "runbooks/fallback.md"} <= set(names)  # fmt: skip


def test_archive_holds_nothing_else(names):
    for name in names:
        assert "__pycache__" not in name and not name.endswith((".pyc", ".pyo")), name
        assert not name.startswith(("tests/", ".venv", ".rollout", "build/", "infra/components",
                                    "infra/policy", ".git")), name  # fmt: skip
        assert name not in {"infra/stack.py", "infra/__main__.py", "Pulumi.yaml", "Pulumi.dev.yaml"}
        assert not ba._looks_secret(Path(name)), name
    top = {n.split("/", 1)[0] for n in names}
    assert top == {"infra", "controller", "workflows", "flags", "runbooks", ba.MANIFEST}


def test_manifest_lists_every_file_with_its_sha256(lambda_archive, names):
    with zipfile.ZipFile(lambda_archive) as zf:
        manifest = json.loads(zf.read(ba.MANIFEST))
        assert set(manifest) == set(names) - {ba.MANIFEST}
        for name, digest in manifest.items():
            assert hashlib.sha256(zf.read(name)).hexdigest() == digest


def test_builds_are_byte_for_byte_reproducible(tmp_path):
    first, second = tmp_path / "a.zip", tmp_path / "b.zip"
    ba.build_archive(first, deps=False)
    ba.build_archive(second, deps=False)
    assert first.read_bytes() == second.read_bytes()


def test_pip_installs_lambda_platform_wheels_only():
    cmd = ba.pip_command(Path("/tmp/target"))
    joined = " ".join(cmd)
    assert cmd[:4] == [sys.executable, "-m", "pip", "install"]
    for flag in ("--target /tmp/target", "--platform manylinux2014_x86_64", "--only-binary=:all:",
                 "--python-version 3.11", "--implementation cp", f"-r {ba.REQUIREMENTS}"):  # fmt: skip
        assert flag in joined


def test_dependencies_are_added_without_caches_or_scripts(tmp_path, monkeypatch):
    def fake_pip(cmd, check):
        target = Path(cmd[cmd.index("--target") + 1])
        (target / "fakepkg").mkdir()
        (target / "fakepkg" / "__init__.py").write_text("VERSION = 1\n")
        (target / "fakepkg" / "__pycache__").mkdir()
        (target / "fakepkg" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
        (target / "fakepkg-1.0.dist-info").mkdir()
        (target / "fakepkg-1.0.dist-info" / "METADATA").write_text("Name: fakepkg\n")
        (target / "bin").mkdir()
        (target / "bin" / "fake").write_text("#!/usr/bin/python\n")
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(ba.subprocess, "run", fake_pip)
    out = tmp_path / "lambda.zip"
    ba.build_archive(out)
    names = set(zipfile.ZipFile(out).namelist())
    assert {"fakepkg/__init__.py", "fakepkg-1.0.dist-info/METADATA"} <= names
    assert not any(n.startswith("bin/") or "__pycache__" in n for n in names)


def _project_copy(tmp_path: Path) -> Path:
    copy_project(tmp_path)
    shutil.copytree(PROJECT / "controller", tmp_path / "controller",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    (tmp_path / "infra").mkdir()
    shutil.copy(PROJECT / "infra" / "__init__.py", tmp_path / "infra")
    shutil.copytree(PROJECT / "infra" / "handlers", tmp_path / "infra" / "handlers",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    return tmp_path


def test_files_that_look_like_secrets_are_refused(tmp_path):
    root = _project_copy(tmp_path)
    (root / BUNDLE / "corpus" / "deploy-key.pem").write_text("-----BEGIN PRIVATE KEY-----\n")
    with pytest.raises(ba.ArchiveError, match="deploy-key.pem"):
        ba.build_archive(tmp_path / "out.zip", root=root, deps=False)


def test_dotfiles_and_tests_never_enter_the_archive(tmp_path):
    root = _project_copy(tmp_path)
    (root / BUNDLE / ".env").write_text("AWS_SECRET_ACCESS_KEY=x\n")
    (root / "controller" / "tests").mkdir()
    (root / "controller" / "tests" / "test_x.py").write_text("")
    ba.build_archive(tmp_path / "out.zip", root=root, deps=False)
    names = zipfile.ZipFile(tmp_path / "out.zip").namelist()
    assert not any(n.endswith(".env") or "/tests/" in n for n in names)


def test_an_invalid_bundle_is_not_packaged(tmp_path, capsys):
    root = _project_copy(tmp_path)
    (root / BUNDLE / "golden.yaml").unlink()
    assert ba.main(["--out", str(tmp_path / "x.zip"), "--no-deps", "--workflow", str(root / BUNDLE)]) == 2
    assert "Invalid workflow bundle" in capsys.readouterr().err
