"""Every ``rollout`` command a runbook names exists, with exactly the options it gives.

The runbooks are read as an operator reads them: every inline code span and every line of a
fenced code block that runs ``rollout ...`` (after shell operators such as ``|``, ``&&`` or
``>``, and ``VAR=value`` prefixes) is parsed with ``shlex`` and walked down the real click
command tree of ``controller.cli.app`` (``typer.main.get_command``): each subcommand must exist,
each option must be declared on the command it is given to, and no extra positional arguments
are allowed. A fenced block is what an operator copies and runs, so there the command must also
be complete: required options and arguments present, every option that takes a value given one.
An inline span may name a command in prose (`rollout rollback` "changes ..."), so it may leave
those out.
"""

from __future__ import annotations

import re
import shlex
from typing import Any

import pytest
import typer

try:
    from tests.conftest import REPO
except ModuleNotFoundError:
    from conftest import REPO

RUNBOOKS = REPO / "runbooks"
REQUIRED = {
    "kill-switch.md",
    "fallback.md",
    "rollback.md",
    "promotion.md",
    "eval-failure.md",
    "incident-accountability.md",
    "weekly-review.md",
    "onboarding-another-workflow.md",
    "review-checklist.md",
}
_FENCE = re.compile(r"^[ \t]*(`{3,})[^\n]*\n(.*?)^[ \t]*\1[ \t]*$", re.S | re.M)
_SPAN = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
_OPERATORS = {"|", "||", "&", "&&", ";", ";;", "(", ")"}
_REDIRECTS = {">", ">>", "<", "<<", "2>", "&>"}


def command_tree() -> Any:
    from controller import cli

    return typer.main.get_command(cli.app)


def _tokens(text: str) -> list[str]:
    lexer = shlex.shlex(text, posix=True, punctuation_chars=";&|<>()")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    return list(lexer)


def commands_in(text: str) -> list[tuple[int, str, list[str], bool]]:
    """(line, source text, argv, complete) of every ``rollout`` invocation in a markdown document;
    ``complete`` for fenced code (run as written), not for inline spans (named in prose)."""
    found: list[tuple[int, str, list[str], bool]] = []

    def scan(source: str, line: int, complete: bool = True) -> None:
        try:
            tokens = _tokens(source)
        except ValueError as exc:  # unbalanced quotes: report it as a command that cannot run
            if "rollout" in source:
                found.append((line, source, ["rollout", f"<unparsable: {exc}>"], complete))
            return
        segment: list[str] = []
        skip_next = False
        for tok in [*tokens, ";"]:
            if skip_next:
                skip_next = False
                continue
            if tok in _REDIRECTS:
                skip_next = True
                continue
            if tok in _OPERATORS:
                while segment and (re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", segment[0]) or segment[0] == "$"):
                    segment.pop(0)
                if segment and segment[0] == "rollout":
                    found.append((line, source, segment, complete))
                segment = []
                continue
            segment.append(tok)

    fenced_spans = []
    for m in _FENCE.finditer(text):
        fenced_spans.append(m.span())
        start_line = text.count("\n", 0, m.start(2)) + 1
        logical, first = "", None
        for offset, raw in enumerate(m.group(2).splitlines()):
            first = start_line + offset if first is None else first
            if raw.rstrip().endswith("\\"):
                logical += raw.rstrip()[:-1] + " "
                continue
            scan(logical + raw, first)
            logical, first = "", None
    outside = text
    for a, b in reversed(fenced_spans):
        outside = outside[:a] + "\n" * text.count("\n", a, b) + outside[b:]
    for m in _SPAN.finditer(outside):
        span = m.group(1).strip()
        if span.startswith("rollout "):
            scan(span, outside.count("\n", 0, m.start()) + 1, complete=False)
    return found


def _is_group(cmd: Any) -> bool:
    return hasattr(cmd, "commands")


def _options(cmd: Any) -> dict[str, Any]:
    out = {}
    for p in cmd.params:
        if p.param_type_name == "option":
            for name in (*p.opts, *p.secondary_opts):
                out[name] = p
    out.setdefault("--help", None)
    return out


def check_command(root: Any, argv: list[str], complete: bool = True) -> list[str]:
    """Why ``argv`` (starting with ``rollout``) would not parse; empty when it would. Not
    ``complete``: a reference in prose, which may leave out required options and values."""
    cmd, path, i = root, ["rollout"], 1
    given: set[str] = set()
    positional: list[str] = []
    while i < len(argv):
        tok = argv[i]
        if tok == "--":
            positional += argv[i + 1 :]
            break
        if tok.startswith("-") and tok != "-":
            options = _options(cmd)
            name, eq, _ = tok.partition("=")
            if name not in options:
                known = ", ".join(sorted(o for o in options if o.startswith("--")))
                return [f"`{' '.join(path)}` has no option {name} (it has: {known})"]
            param = options[name]
            if param is None:  # --help
                return []
            given.add(param.name)
            i += 1
            takes_value = not (param.is_flag or getattr(param, "count", False))
            if takes_value and not eq:
                if i >= len(argv):
                    return [f"`{' '.join(path)} {name}` needs a value"] if complete else []
                i += 1
            elif not takes_value and eq:
                return [f"`{' '.join(path)} {name}` is a flag and takes no value"]
            continue
        if _is_group(cmd):
            sub = cmd.commands.get(tok)
            if sub is None:
                return [f"`{' '.join(path)}` has no command {tok!r} (it has: {', '.join(sorted(cmd.commands))})"]
            cmd, path, given, positional = sub, [*path, tok], set(), []
        else:
            positional.append(tok)
        i += 1
    if _is_group(cmd):
        return [f"`{' '.join(path)}` is a group: name one of its commands ({', '.join(sorted(cmd.commands))})"]
    arguments = [p for p in cmd.params if p.param_type_name == "argument"]
    capacity = None if any(p.nargs == -1 for p in arguments) else sum(p.nargs for p in arguments)
    if capacity is not None and len(positional) > capacity:
        return [f"`{' '.join(path)}` takes {capacity} argument(s), got {positional}"]
    if not complete:
        return []
    problems = [
        f"`{' '.join(path)}` needs {p.opts[0]}"
        for p in cmd.params
        if p.param_type_name == "option" and p.required and p.name not in given and not p.envvar
    ]
    required = sum(max(p.nargs, 1) for p in arguments if p.required)
    if len(positional) < required:
        problems.append(f"`{' '.join(path)}` needs {required} argument(s), got {len(positional)}")
    return problems


def runbook_commands() -> list[tuple[str, int, str, list[str], bool]]:
    out = []
    for path in sorted(RUNBOOKS.glob("*.md")):
        for line, source, argv, complete in commands_in(path.read_text(encoding="utf-8")):
            out.append((path.name, line, source, argv, complete))
    return out


def test_every_required_runbook_exists_and_names_rollout_commands() -> None:
    present = {p.name for p in RUNBOOKS.glob("*.md")}
    assert present >= REQUIRED, sorted(REQUIRED - present)
    named = {name for name, *_ in runbook_commands()}
    assert named >= REQUIRED, f"runbooks naming no `rollout` command: {sorted(REQUIRED - named)}"


def test_every_rollout_command_in_the_runbooks_exists_with_those_options() -> None:
    root = command_tree()
    problems = [
        f"runbooks/{name}:{line}: {source.strip()}\n    -> {p}"
        for name, line, source, argv, complete in runbook_commands()
        for p in check_command(root, argv, complete)
    ]
    assert not problems, "\n".join(problems)


def test_the_runbooks_cover_the_operators_commands() -> None:
    used = {tuple(t for t in argv[1:3] if not t.startswith("-")) for *_, argv, _ in runbook_commands()}
    firsts = {u[0] for u in used if u}
    for command in (
        "kill",
        "rollback",
        "promote",
        "status",
        "reconcile",
        "review",
        "validate",
        "history",
        "eval",
        "audit",
        "policy",
    ):
        assert command in firsts, command
    assert ("audit", "report") in used and ("audit", "verify") in used and ("eval", "run") in used


# --- the checker itself ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("Run `rollout promote --cohorts internal`.", "has no option --cohorts"),
        ("```sh\nrollout rollback\n```", "needs --reason"),
        ("```sh\nrollout audit\n```", "is a group"),
        ("`rollout audit reprot --format md`", "has no command 'reprot'"),
        ("```sh\nrollout kill --release=yes --reason x\n```", "is a flag"),
        ("```sh\nrollout status --json extra\n```", "takes 0 argument(s)"),
        ("```sh\nrollout ask --as a@corp.example\n```", "needs 1 argument(s)"),
        ("```sh\nrollout review --since\n```", "needs a value"),
    ],
)
def test_the_checker_catches_what_would_not_run(text: str, problem: str) -> None:
    root = command_tree()
    found = commands_in(text)
    assert found, text
    assert any(problem in p for *_, argv, complete in found for p in check_command(root, argv, complete))


def test_the_checker_reads_commands_as_a_shell_would() -> None:
    text = """
Run `rollout status` first, then read `rollout.operators` in the bundle (not a command).

```sh
ROLLOUT_STATE=/srv/rollout rollout --state /srv/rollout kill --reason "possible leak" && rollout status
rollout review --since 7d --json > "review-$(date +%F).json"
rollout audit report --format md \\
    --out audit.md | tee /dev/null
# rollout nothing: a comment
```
"""
    got = [argv for _, _, argv, _ in commands_in(text)]
    assert sorted(got) == sorted(
        [
            ["rollout", "status"],
            ["rollout", "--state", "/srv/rollout", "kill", "--reason", "possible leak"],
            ["rollout", "status"],
            ["rollout", "review", "--since", "7d", "--json"],
            ["rollout", "audit", "report", "--format", "md", "--out", "audit.md"],
        ]
    )
    root = command_tree()
    assert all(not check_command(root, argv) for argv in got)


def test_prose_may_name_a_command_without_its_required_options() -> None:
    root = command_tree()
    (found,) = commands_in("What `rollout rollback` changes, and `rollout eval show --release` with a digest.")[:1]
    assert check_command(root, found[2], found[3]) == []
    assert all(
        not check_command(root, argv, complete)
        for _, _, argv, complete in commands_in(
            "What `rollout rollback` changes, and `rollout eval show --release` with a digest."
        )
    )
    ((_, _, argv, complete),) = commands_in("`rollout status now`")
    assert check_command(root, argv, complete)  # still no stray arguments


# --- every command, run as an operator would copy it, against a two-bundle state ---------------------

RUN_ORDER = [
    "promotion.md",
    "eval-failure.md",
    "rollback.md",
    "kill-switch.md",
    "fallback.md",
    "incident-accountability.md",
    "weekly-review.md",
    "review-checklist.md",
    "onboarding-another-workflow.md",
]


def shell_steps(text: str) -> list[tuple[int, str, list[str]]]:
    """In document order: ("export", line, [NAME=value, ...]) and ("rollout", line, argv) of the
    fenced blocks, the way a shell would see them (backslash continuations joined)."""
    steps: list[tuple[int, str, list[str]]] = []
    for m in _FENCE.finditer(text):
        start = text.count("\n", 0, m.start(2)) + 1
        logical, first = "", None
        for offset, raw in enumerate(m.group(2).splitlines()):
            first = start + offset if first is None else first
            if raw.rstrip().endswith("\\"):
                logical += raw.rstrip()[:-1] + " "
                continue
            line, logical = logical + raw, ""
            if line.strip().startswith("export "):
                steps.append((first, "export", _tokens(line)[1:]))
            else:
                for _, source, argv, _complete in commands_in(f"```sh\n{line}\n```"):
                    steps.append((first, source, argv))
            first = None
    return steps


def test_every_runbook_command_runs_as_written_against_two_bundles(tmp_path: Any, monkeypatch: Any) -> None:
    """The PATH step done, each runbook's set-once block exported (then pointed at the second
    bundle, so the runbooks are shown to be written for any workflow), every command runs: no
    usage or input error (exit 2), no traceback. Gates may refuse (3) and checks may fail (1):
    that depends on the state the earlier commands left, not on how the command is written.
    Commands that need a deployed stack (`$(pulumi stack output ...)`) are listed and skipped."""
    import re as _re

    from typer.testing import CliRunner

    from controller import cli
    from tests.conftest import BUNDLE, copy_project, edit_yaml
    from tests.test_rollout_init import fill_in

    copy_project(tmp_path, (BUNDLE, "workflows/support-reply-drafting"))
    monkeypatch.chdir(tmp_path)
    for bundle in ("internal-docs-qa", "support-reply-drafting"):
        edit_yaml(
            tmp_path / "workflows" / bundle / "workflow.yaml",
            lambda d: [c.__setitem__("bake_time", "0h") for c in d["rollout"]["cohorts"]],
        )
    import datetime as dt
    import shutil

    today = dt.date.today().isoformat()
    # what `pulumi stack export --file stack-export.json` would write: the example export the tests use
    shutil.copy(REPO / "tests/fixtures/stack-export.json", tmp_path / "stack-export.json")
    (tmp_path / "notes.txt").write_text("Customer jordan@customer.example asked about INC-20431.\n")  # review-checklist's input
    base_env = {"ROLLOUT_STATE": str(tmp_path / "state"), "ROLLOUT_MODEL_ADAPTER": "local"}
    monkeypatch.delenv("ROLLOUT_STORE", raising=False)
    runner = CliRunner()
    ran, skipped, problems = 0, [], []
    for name in RUN_ORDER:
        env = dict(base_env)
        for line, source, argv in shell_steps((RUNBOOKS / name).read_text(encoding="utf-8")):
            if source == "export":
                env.update(a.split("=", 1) for a in argv if "=" in a)
                if name != "onboarding-another-workflow.md":
                    env.update(WORKFLOW="support-reply-drafting", OPERATOR="tomas.reyes")
                continue
            if "$(pulumi" in source:
                skipped.append(f"{name}:{line}")
                continue
            values = {**env, "(date +%F)": today}
            args = [
                _re.sub(r"\$(\(date \+%F\)|\w+)|\$\{(\w+)\}", lambda m, v=values: v.get(m[1] or m[2], m[0]), a)
                for a in argv[1:]
            ]
            assert not any("$" in a for a in args), f"{name}:{line}: unset variable in {source!r}"
            result = runner.invoke(cli.app, args, env=env)
            ran += 1
            if result.exit_code not in (0, 1, 3) or "Traceback" in result.output:
                problems.append(f"runbooks/{name}:{line}: {source.strip()}\n    exit {result.exit_code}: {result.output[-600:]}")
            if args[:1] == ["init"] and result.exit_code == 0:
                fill_in(tmp_path / "workflows" / args[1])  # the runbook's "fill it in" step
    assert not problems, "\n".join(problems)
    assert ran >= 40, ran
    # these need `pulumi stack output` of a deployed stack
    assert skipped == ["kill-switch.md:70", "weekly-review.md:41"], skipped
