"""Build the Lambda deployment archive: ``python -m infra.build_archive --out build/lambda.zip``.

Run it before ``pulumi up`` (the program refuses to deploy without it). The archive mirrors
the project layout, so the handlers' paths are the same locally and in Lambda::

    infra/__init__.py, infra/handlers/*.py      the thin entry points
    controller/**                               the project's package (no tests, no caches)
    workflows/<id>/**                           each bundle (workflow.yaml, prompts, golden, corpus)
    infra/dev-bundle/<id>/**                    the dev stack's copies (Pulumi.dev.yaml names one)
    flags/<id>.flagd.json, runbooks/*.md        the files each bundle references
    ARCHIVE_MANIFEST.json                       every file's sha256 (for auditors and diffs)
    <dependencies>                              from infra/lambda-requirements.txt

Dependencies are installed for Lambda's platform, whatever the build machine is::

    pip install --target DIR --platform manylinux2014_x86_64 --only-binary=:all: \\
        --python-version 3.11 --implementation cp -r infra/lambda-requirements.txt

``--no-deps`` skips that step (tests, or a layer that provides them). Files are chosen by an
allowlist, never by "everything under the repo", so no ``.env``, keys, state directories or
virtualenvs can slip in; names that look like secrets are refused even inside the allowlist.
The zip is deterministic (sorted entries, fixed timestamps): the same inputs give the same
bytes, so Pulumi does not redeploy functions whose code did not change.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePosixPath

from controller.errors import RolloutError

__all__ = ["build_archive", "collect_project_files", "default_bundles", "main", "pip_command"]

PROJECT_ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = PROJECT_ROOT / "infra" / "lambda-requirements.txt"
PLATFORM = "manylinux2014_x86_64"
PYTHON_VERSION = "3.11"
MANIFEST = "ARCHIVE_MANIFEST.json"
_EPOCH = (1980, 1, 1, 0, 0, 0)

_SKIP_DIRS = {"__pycache__", "tests", "test", ".pytest_cache", ".mypy_cache", ".ruff_cache"}
_SKIP_SUFFIXES = {".pyc", ".pyo"}
_SECRET_NAMES = {".env", ".netrc", ".pypirc", "credentials", "id_rsa", "id_ed25519", "subject-key"}
_SECRET_SUFFIXES = {".pem", ".key", ".p12", ".pfx", ".jks"}


class ArchiveError(Exception):
    """The archive cannot be built as asked (invalid bundle, file outside the project...)."""


def pip_command(target: Path, requirements: Path = REQUIREMENTS) -> list[str]:
    """The pip invocation that installs Lambda-platform wheels into ``target``."""
    return [
        sys.executable, "-m", "pip", "install", "--quiet", "--no-compile",
        "--target", str(target),
        "--platform", PLATFORM, "--only-binary=:all:",
        "--python-version", PYTHON_VERSION, "--implementation", "cp",
        "-r", str(requirements),
    ]  # fmt: skip


def _excluded(relative: PurePosixPath) -> bool:
    parts = relative.parts
    name = parts[-1]
    return (
        any(p in _SKIP_DIRS for p in parts[:-1])
        or relative.suffix in _SKIP_SUFFIXES
        or name.startswith("test_")
        or any(p.startswith(".") for p in parts)
    )


def _looks_secret(relative: PurePosixPath) -> bool:
    name = relative.name.lower()
    return (
        name in _SECRET_NAMES
        or name.startswith(".env")
        or relative.suffix.lower() in _SECRET_SUFFIXES
        or any(p in {".aws", ".ssh", ".rollout"} for p in relative.parts)
    )


def _files_under(base: Path, root: Path) -> Iterable[tuple[str, Path]]:
    for path in sorted(base.rglob("*")):
        if not path.is_file():
            continue
        relative = PurePosixPath(path.relative_to(root).as_posix())
        if not _excluded(relative):
            yield relative.as_posix(), path


def _relative_to_root(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        raise ArchiveError(f"{path} is outside the project {root}; bundles may only reference "
                           "files inside it") from None  # fmt: skip


def _bundle_files(bundle_dir: Path, root: Path) -> dict[str, Path]:
    from controller.bundle.models import load_bundle  # validates: never ship an invalid bundle

    bundle = load_bundle(bundle_dir)
    wf = bundle.workflow
    _relative_to_root(bundle.root, root)
    files = dict(_files_under(bundle.root, root))
    referenced = [
        bundle.flags_path,
        bundle.resolve(wf.review.checklist),
        bundle.resolve(wf.review.accountability_runbook),
        bundle.resolve(wf.fallback.runbook),
        bundle.resolve(wf.kill_switch.runbook),
        bundle.resolve(wf.ongoing.runbook),
    ]
    for path in referenced:
        files[_relative_to_root(path, root)] = path.resolve()
    return files


def collect_project_files(root: Path, bundles: Sequence[Path]) -> dict[str, Path]:
    """Archive name -> source file for the handlers, ``controller`` and every bundle."""
    root = root.resolve()
    files: dict[str, Path] = {"infra/__init__.py": root / "infra" / "__init__.py"}
    files.update(_files_under(root / "infra" / "handlers", root))
    files.update(_files_under(root / "controller", root))
    for bundle_dir in bundles:
        files.update(_bundle_files(bundle_dir, root))
    secret = sorted(name for name in files if _looks_secret(PurePosixPath(name)))
    if secret:
        raise ArchiveError(f"refusing to package files that look like secrets: {secret}")
    return files


def _write(zf: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=_EPOCH)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    zf.writestr(info, data)


def default_bundles(root: Path = PROJECT_ROOT) -> list[Path]:
    """Every bundle under ``workflows/``, and the example dev stack's copies under ``infra/dev-bundle/``."""
    found = [p.parent for pattern in ("workflows/*/workflow.yaml", "infra/dev-bundle/*/workflow.yaml")
             for p in root.glob(pattern)]  # fmt: skip
    return sorted(found)


def build_archive(
    out: Path,
    *,
    root: Path = PROJECT_ROOT,
    bundles: Sequence[Path] | None = None,
    deps: bool = True,
    requirements: Path = REQUIREMENTS,
) -> dict[str, str]:
    """Write the archive to ``out``; return its manifest (archive name -> sha256)."""
    bundle_dirs = list(bundles) if bundles else default_bundles(root)
    if not bundle_dirs:
        raise ArchiveError(f"no workflow bundle under {root / 'workflows'}")
    files = {name: path.read_bytes() for name, path in collect_project_files(root, bundle_dirs).items()}
    with tempfile.TemporaryDirectory(prefix="ai-rollout-deps-") as tmp:
        if deps:
            subprocess.run(pip_command(Path(tmp), requirements), check=True)
            for name, path in _files_under(Path(tmp), Path(tmp)):
                if name.split("/", 1)[0] == "bin":
                    continue  # console scripts with this machine's interpreter path
                files.setdefault(name, path.read_bytes())
        manifest = {name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())}
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_name(f".{out.name}.partial")
        with zipfile.ZipFile(partial, "w") as zf:
            for name in sorted(files):
                _write(zf, name, files[name])
            _write(zf, MANIFEST, json.dumps(manifest, indent=1, sort_keys=True).encode())
        partial.replace(out)
    return manifest


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.build_archive", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "build" / "lambda.zip")
    parser.add_argument("--workflow", type=Path, action="append", default=None,
                        help="bundle directory to include (repeatable; default: every bundle)")  # fmt: skip
    parser.add_argument("--no-deps", action="store_true", help="do not pip-install dependencies")
    parser.add_argument("--requirements", type=Path, default=REQUIREMENTS)
    args = parser.parse_args(argv)
    try:
        manifest = build_archive(
            args.out, bundles=args.workflow, deps=not args.no_deps, requirements=args.requirements
        )
    except (ArchiveError, RolloutError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except subprocess.CalledProcessError as exc:
        print(f"error: pip failed ({exc.returncode}); see its output above", file=sys.stderr)
        return 1
    print(f"wrote {args.out} ({len(manifest)} files)")
    return 0


if __name__ == "__main__":
    if str(PROJECT_ROOT) not in sys.path:
        sys.path.insert(0, str(PROJECT_ROOT))
    raise SystemExit(main())
