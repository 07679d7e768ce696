"""Several bundles side by side: finding a workflow by id, and the rules between bundles.

A project holds one bundle per workflow under ``workflows/<id>/``. A copied bundle must not
share the first one's flag file, flag keys or SSO audience: one kill switch would then switch
two workflows, and a token minted for one would be accepted by the other. ``workspace_problems``
finds every such clash at once, each naming the file, field and line of both sides.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from controller.bundle.workflow import Workflow
from controller.bundle.yamlio import LineMap, YamlSyntaxError, line_for, load_yaml
from controller.errors import BundleInvalid, InvalidInput, Problem

__all__ = ["BundleRef", "bundle_dirs", "load_bundles", "read_refs", "resolve_workflow", "workspace_problems"]


def bundle_dirs(cwd: Path | None = None) -> list[Path]:
    """Every bundle directory under ``<cwd>/workflows`` (sorted by id)."""
    base = (cwd or Path.cwd()) / "workflows"
    return sorted(p.parent for p in base.glob("*/workflow.yaml"))


def resolve_workflow(ref: str | Path | None, cwd: Path | None = None) -> Path:
    """The bundle directory for ``--workflow/-w``: an id (``workflows/<id>``), a directory or a
    ``workflow.yaml`` path; without one, the only bundle under ``workflows/``."""
    if ref is not None:
        text = str(ref)
        by_id = (cwd or Path.cwd()) / "workflows" / text
        if "/" not in text and (by_id / "workflow.yaml").is_file():
            return by_id
        path = Path(text)
        path = path.parent if path.name == "workflow.yaml" else path
        if (path / "workflow.yaml").is_file():
            return path
        known = ", ".join(p.name for p in bundle_dirs(cwd)) or "none"
        raise InvalidInput(
            f"--workflow {text}: no workflow with that id under workflows/ (known: {known}) "
            "and no workflow.yaml in a directory of that name."
        )
    found = bundle_dirs(cwd)
    base = (cwd or Path.cwd()) / "workflows"
    if len(found) == 1:
        return found[0]
    if not found:
        raise InvalidInput(
            f"No workflow bundle found under {base}; pass --workflow/-w ID or DIR (a directory with a "
            "workflow.yaml), or create one with `rollout init ID --use-case KIND`."
        )
    names = ", ".join(p.name for p in found)
    raise InvalidInput(f"Several workflow bundles under {base} ({names}); choose one with --workflow/-w ID.")


@dataclass(frozen=True)
class BundleRef:
    """What other bundles must not share, with where each value is written."""

    root: Path
    file: str
    lines: LineMap
    workflow: Workflow
    flag_keys: tuple[str, ...]  # every key in the bundle's flag document (when readable)

    @property
    def flags_file(self) -> Path:
        return (self.root / self.workflow.rollout.flags_file).resolve()


def read_refs(dirs: list[Path], display: Callable[[Path], str] = str) -> list[BundleRef]:
    """Each bundle's workflow.yaml that parses (the others report their own problems)."""
    refs = []
    for root in dirs:
        path = root / "workflow.yaml"
        try:
            doc = load_yaml(path)
            workflow = Workflow.model_validate(doc.data)
        except (OSError, YamlSyntaxError, ValidationError, TypeError):
            continue
        keys: tuple[str, ...] = ()
        try:
            flags = json.loads((root / workflow.rollout.flags_file).read_text(encoding="utf-8")).get("flags")
            keys = tuple(flags) if isinstance(flags, dict) else ()
        except (OSError, ValueError, AttributeError):
            pass
        refs.append(BundleRef(root.resolve(), display(path), doc.lines, workflow, keys))
    return refs


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def workspace_problems(refs: list[BundleRef]) -> list[Problem]:
    """Values two bundles must not share: id, flag file, flag keys, SSO audience."""
    out: list[Problem] = []
    seen: dict[tuple[str, str], BundleRef] = {}

    def claim(kind: str, value: str, ref: BundleRef, field: str, loc: tuple[str, ...], what: str) -> None:
        first = seen.setdefault((kind, value), ref)
        if first is ref:
            return
        line = line_for(first.lines, loc)
        where = f"{first.file}:{line}" if line else first.file
        out.append(
            Problem(
                ref.file,
                field,
                f"{what} {value!r} is also used by workflow {first.workflow.id!r} ({where}); "
                "each workflow needs its own",
                line_for(ref.lines, loc),
            )
        )

    for ref in refs:
        wf = ref.workflow
        claim("id", wf.id, ref, "id", ("id",), "id")
        claim("audience", wf.sso.idp.audience, ref, "sso.idp.audience", ("sso", "idp", "audience"), "SSO audience")
        shared_file = seen.get(("file", _shown(ref.flags_file))) not in (None, ref)
        claim("file", _shown(ref.flags_file), ref, "rollout.flags_file", ("rollout", "flags_file"), "flag file")
        if shared_file:
            continue  # the same document: its keys clash by construction, reported once above
        declared = {wf.rollout.release_flag: "release_flag", wf.rollout.kill_switch_flag: "kill_switch_flag"}
        for key in dict.fromkeys((*declared, *ref.flag_keys)):
            name = declared.get(key, "flags_file")
            claim("flag", key, ref, f"rollout.{name}", ("rollout", name), "flag key")
    return out


def load_bundles(dirs: list[Path], *, checked: Path | None = None) -> list[Any]:
    """Load every bundle in ``dirs`` and check the rules between them; raise one ``BundleInvalid``
    with every problem of every bundle. ``checked``: report only that bundle's own problems and
    its clashes with the others (``validate -w ID``)."""
    from controller.bundle.loader import display, load_bundle

    problems: list[Problem] = []
    bundles = []
    for root in dirs:
        if checked is not None and root.resolve() != checked.resolve():
            continue
        try:
            bundles.append(load_bundle(root))
        except BundleInvalid as exc:
            problems.extend(exc.problems)
    clashes = workspace_problems(read_refs(dirs, display))
    if checked is not None:
        mine = display(checked.resolve() / "workflow.yaml")
        clashes = [p for p in clashes if p.file == mine or mine in p.message]
    problems.extend(clashes)
    if problems:
        where = display(checked) if checked is not None else "workflows"
        raise BundleInvalid(where, problems)
    return bundles
