"""``rollout review`` and the request-log queries: figures equal to plain Python over ~500
generated records, one SQL text for DuckDB and Athena, regressions, exception expiry."""

from __future__ import annotations

import datetime as dt
import json
import random
import re
import uuid
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import typer
from typer.testing import CliRunner

from controller.adapters.request_sinks import schema_document
from controller.bundle.models import load_bundle
from controller.evidence.facts import EvalRun
from controller.evidence.request_log import (
    QUERIES,
    REVIEW_QUERIES,
    SQL_DIR,
    RequestLog,
    Window,
    athena_script,
    bind_literals,
    detector_categories,
    query_text,
)
from controller.evidence.review import build_review, exception_status, golden_regressions

try:
    from tests.conftest import BUNDLE, REPO, edit_yaml
except ModuleNotFoundError:
    from conftest import BUNDLE, REPO, edit_yaml

runner = CliRunner()
NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)
UNMAPPED = "legacy-detector"  # a finding type the current bundle no longer selects


def _app() -> typer.Typer:
    from controller import cli

    return cli.app


@pytest.fixture(scope="module")
def workflow() -> Any:
    return load_bundle(REPO / BUNDLE).workflow


@pytest.fixture(scope="module")
def categories(workflow: Any) -> dict[str, tuple[str, str]]:
    return {d: (c, a) for d, c, a in detector_categories(workflow)}


# --- generated logs ------------------------------------------------------------------------------

REFUSAL_CODES = ("personal-account", "expired", "wrong-issuer", "no-allowed-group")
FALLBACK_REASONS = (
    "not in a cohort that is served a release",
    "model unavailable (ModelTimeout)",
    "release unavailable: release 0badc0ffee00 is not stored",
    "model output contained forbidden content",
)


def generate_records(
    seed: int, categories: dict[str, tuple[str, str]], *, n: int = 500, now: dt.datetime = NOW, days: int = 10
) -> list[dict[str, Any]]:
    """``n`` schema-valid request records over the ``days`` before ``now`` (none within an hour of
    the 7-day boundary, so a review run a few seconds later sees the same window)."""
    rng = random.Random(seed)
    by_action: dict[str, list[str]] = defaultdict(list)
    for det, (_, action) in sorted(categories.items()):
        by_action[action].append(det)
    releases = ["".join(rng.choice("0123456789abcdef") for _ in range(64)) for _ in range(3)]
    subjects = [uuid.UUID(int=rng.getrandbits(128)).hex for _ in range(40)]
    boundary = now - dt.timedelta(days=7)
    records = []
    while len(records) < n:
        t = now - dt.timedelta(seconds=rng.randint(60, days * 86400))
        if abs((t - boundary).total_seconds()) < 3600:
            continue
        decision = rng.choices(["answered", "blocked", "fallback", "disabled", "refused"], [55, 12, 15, 6, 12])[0]
        is_eval = rng.random() < 0.2
        rec: dict[str, Any] = {
            "schema": "ai-rollout.request/v1",
            "request_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "time": t.isoformat(),
            "workflow": "internal-docs-qa",
            "eval": is_eval,
            "subject": None,
            "groups": [],
            "release": None,
            "cohort": None,
            "kill_switch": None,
            "prompt_template": None,
            "context_sources": [],
            "model": None,
            "prompt": None,
            "output": None,
            "findings": {},
            "decision": decision,
            "reason": "",
            "latency_ms": {"total": round(rng.uniform(0.5, 900), 3)},
        }
        records.append(rec)
        if decision == "refused":
            code = rng.choice(REFUSAL_CODES)
            rec["reason"] = f"identity rejected ({code}): you may not use this workflow"
            continue
        variant = rng.choice([*releases, "off"])
        cohort = "off" if variant == "off" else rng.choice(["internal", "limited", "general"])
        rec.update(
            subject=rng.choice(subjects),
            groups=rng.sample(["eng", "support", "ai-pilot", "finance-ops"], rng.randint(1, 2)),
            cohort={"name": cohort, "variant": variant, "reason": f"{cohort} (TARGETING_MATCH)"},
            kill_switch={"engaged": decision == "disabled", "reason": "released (STATIC)"},
        )
        if decision == "disabled":
            rec["reason"] = "kill switch engaged or flags unreadable"
            continue
        if decision == "fallback" and rng.random() < 0.4:
            rec["reason"] = FALLBACK_REASONS[0]
            continue
        digest = variant if variant != "off" else releases[0]
        rec.update(
            release=digest,
            prompt_template={"id": "answer", "version": 1, "sha256": "ab" * 32},
            model={"adapter": "local", "id": "local-extractive-v1"},
            prompt="a question [REDACTED:email]",
        )
        prompt: dict[str, int] = {}
        if decision == "blocked":
            prompt[rng.choice(by_action["block"])] = rng.randint(1, 3)
            if rng.random() < 0.3:  # two detectors of one category in one request
                prompt["github-pat"] = 1
                prompt["url-password"] = 2
        if rng.random() < 0.35:
            prompt[rng.choice(by_action["redact"])] = rng.randint(1, 2)
        if decision == "answered" and rng.random() < 0.03:  # a release with weaker boundaries
            prompt[rng.choice(by_action["block"])] = 1
        if rng.random() < 0.05:
            prompt[UNMAPPED] = 1
        rec["findings"] = {"prompt": prompt}
        if decision == "blocked":
            rec["reason"] = "forbidden input"
            continue
        rec["context_sources"] = rng.sample(["oncall-escalation", "deploy-process", "vpn-access"], rng.randint(0, 2))
        rec["findings"]["context"] = {"email": 1} if rng.random() < 0.2 else {}
        if decision == "fallback":
            rec["reason"] = rng.choice(FALLBACK_REASONS[1:])
            continue
        rec["output"] = "Quoted from the docs. [oncall-escalation]"
        rec["findings"]["output"] = {"phone-number": 1} if rng.random() < 0.1 else {}
        rec["reason"] = "answered"
    return records


def write_log(directory: Path, records: list[dict[str, Any]], seed: int = 0) -> None:
    """One JSONL file per UTC day, lines in no particular order (as several writers leave them)."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    days: dict[str, list[str]] = defaultdict(list)
    for r in records:
        days[r["time"][:10]].append(json.dumps(r, sort_keys=True, separators=(",", ":")))
    for day, lines in days.items():
        rng.shuffle(lines)
        (directory / f"{day}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


def in_window(records: list[dict[str, Any]], window: Window) -> list[dict[str, Any]]:
    return [r for r in records if not r["eval"] and window.since <= dt.datetime.fromisoformat(r["time"]) < window.until]


def expected_figures(records: list[dict[str, Any]], window: Window, categories: dict[str, tuple[str, str]]) -> dict:
    """The review's figures, computed in plain Python from the records."""
    mine = in_window(records, window)
    usage: dict[tuple[str, str, str], dict[str, Any]] = {}
    for r in mine:
        cohort = (r["cohort"] or {}).get("name") or "(none)"
        variant = (r["cohort"] or {}).get("variant") or "(none)"
        row = usage.setdefault(
            (r["time"][:10], cohort, variant),
            {
                "requests": 0,
                "subjects": set(),
                **dict.fromkeys(("answered", "fallback", "blocked", "disabled", "refused"), 0),
            },
        )
        row["requests"] += 1
        row[r["decision"]] += 1
        if r["subject"] is not None:
            row["subjects"].add(r["subject"])
    usage_out = {k: {**v, "subjects": len(v["subjects"])} for k, v in usage.items()}
    near: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for r in mine:
        for location, detectors in r["findings"].items():
            for det, n in detectors.items():
                category, action = categories.get(det, ("(unmapped)", "(unmapped)"))
                row = near.setdefault((location, category, action, r["decision"]), {"requests": set(), "findings": 0})
                row["requests"].add(r["request_id"])
                row["findings"] += n
    near_out = {k: {"requests": len(v["requests"]), "findings": v["findings"]} for k, v in near.items()}
    fallbacks = Counter(
        (r["decision"], r["reason"].split(":")[0]) for r in mine if r["decision"] in ("fallback", "disabled")
    )
    refusals = Counter(
        r["reason"].split("(", 1)[1].split(")", 1)[0] if r["reason"].startswith("identity rejected (") else r["reason"]
        for r in mine
        if r["decision"] == "refused"
    )
    return {"usage": usage_out, "near": near_out, "fallbacks": dict(fallbacks), "refusals": dict(refusals)}


def figures_of(review: Any) -> dict:
    usage = {
        (u["day"], u["cohort"], u["variant"]): {k: v for k, v in u.items() if k not in ("day", "cohort", "variant")}
        for u in review.usage
    }
    near = {
        (r["location"], r["category"], r["action"], r["decision"]): {
            "requests": r["requests"],
            "findings": r["findings"],
        }
        for r in (*review.near_misses, *review.redactions)
    }
    fallbacks = {(f["decision"], f["reason"]): f["requests"] for f in review.fallbacks}
    refusals = {f["reason"]: f["requests"] for f in review.refusals}
    return {"usage": usage, "near": near, "fallbacks": fallbacks, "refusals": refusals}


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory, categories: dict) -> tuple[Path, list[dict[str, Any]]]:
    records = generate_records(20261126, categories)
    directory = tmp_path_factory.mktemp("requests")
    write_log(directory, records)
    return directory, records


def test_generated_records_follow_the_published_schema(generated: tuple[Path, list]) -> None:
    _, records = generated
    schema = schema_document()
    for r in records:
        jsonschema.validate(r, schema)
    decisions = Counter(r["decision"] for r in records)
    assert len(records) == 500 and set(decisions) == {"answered", "blocked", "fallback", "disabled", "refused"}
    assert any(r["eval"] for r in records) and any(UNMAPPED in r["findings"].get("prompt", {}) for r in records)


@pytest.mark.parametrize("days", [7, 3, 30])
def test_review_figures_equal_plain_python(
    generated: tuple[Path, list], workflow: Any, categories: dict, days: int
) -> None:
    directory, records = generated
    window = Window.last(dt.timedelta(days=days), NOW)
    with RequestLog(directory, detector_categories(workflow)) as log:
        rows = {name: log.query(name, window) for name in REVIEW_QUERIES}
    review = build_review(workflow="internal-docs-qa", window=window, generated_at=NOW, rows=rows)
    want = expected_figures(records, window, categories)
    got = figures_of(review)
    assert got == want
    mine = in_window(records, window)
    assert review.totals["requests"] == len(mine)
    assert review.totals["answered"] == sum(r["decision"] == "answered" for r in mine)
    # per category: each request counted once, however many of its detectors fired
    by_category: dict[str, dict[str, Any]] = {}
    for r in mine:
        cats: dict[str, int] = defaultdict(int)
        for det, n in r["findings"].get("prompt", {}).items():
            cats[categories.get(det, ("(unmapped)", "(unmapped)"))[0]] += n
        for c, n in cats.items():
            row = by_category.setdefault(c, {"blocked": 0, "let_through": 0, "findings": 0})
            row["blocked" if r["decision"] == "blocked" else "let_through"] += 1
            row["findings"] += n
    assert {
        c: {k: v[k] for k in ("blocked", "let_through", "findings")} for c, v in review.by_category.items()
    } == by_category
    forbidden_answered = Counter(
        categories[d][0]
        for r in mine
        if r["decision"] != "blocked"
        for d in {d for d in r["findings"].get("prompt", {}) if categories.get(d, ("", ""))[1] == "block"}
    )
    assert review.answered_with_forbidden_input == {
        c: by_category[c]["let_through"]
        for c in by_category
        if categories_action(categories, c) == "block" and by_category[c]["let_through"]
    }
    assert set(review.answered_with_forbidden_input) == set(forbidden_answered)


def categories_action(categories: dict[str, tuple[str, str]], category: str) -> str | None:
    return next((a for c, a in categories.values() if c == category), None)


def test_eval_records_are_not_usage(tmp_path: Path, categories: dict) -> None:
    records = generate_records(7, categories, n=60)
    for r in records:
        r["eval"] = True
    write_log(tmp_path, records)
    with RequestLog(tmp_path) as log:
        window = Window.everything()
        assert log.query("usage", window) == []
        decisions = log.query("decisions", window)
    assert sum(r["records"] for r in decisions) == 60 and all(r["is_eval"] for r in decisions)


def test_an_empty_or_missing_log_gives_empty_results(tmp_path: Path) -> None:
    for directory in (tmp_path / "missing", tmp_path):
        with RequestLog(directory) as log:
            assert log.files == ()
            for name in QUERIES:
                assert log.query(name, Window.everything()) == []


def test_a_malformed_log_is_invalid_input(tmp_path: Path) -> None:
    from controller.errors import InvalidInput

    (tmp_path / "2026-11-26.jsonl").write_text('{"schema": "ai-rollout.request/v1", "time": \n', encoding="utf-8")
    with RequestLog(tmp_path) as log, pytest.raises(InvalidInput, match="cannot be read"):
        log.query("decisions", Window.everything())


# --- one SQL text for both engines ----------------------------------------------------------------


def _hive_type(duck: str) -> str:
    """A DuckDB type as Athena/Hive DDL spells it."""
    t = duck.strip()
    if t.endswith("[]"):
        return f"array<{_hive_type(t[:-2])}>"
    m = re.fullmatch(r"(STRUCT|MAP)\((.*)\)", t, re.S)
    if m:
        parts, depth, cur = [], 0, ""
        for ch in m.group(2):
            if ch == "," and depth == 0:
                parts.append(cur)
                cur = ""
                continue
            depth += ch == "("
            depth -= ch == ")"
            cur += ch
        parts.append(cur)
        if m.group(1) == "MAP":
            return f"map<{_hive_type(parts[0])},{_hive_type(parts[1])}>"
        fields = [p.strip().split(" ", 1) for p in parts]
        return "struct<" + ",".join(f"{n}:{_hive_type(ft)}" for n, ft in fields) + ">"
    return {"VARCHAR": "string", "BOOLEAN": "boolean", "BIGINT": "bigint", "DOUBLE": "double"}[t]


def duckdb_columns() -> list[tuple[str, str]]:
    text = (SQL_DIR / "duckdb" / "requests.sql").read_text()
    return [(n, _hive_type(t)) for n, t in re.findall(r"'(\w+)': '([^']+)'", text)]


def athena_columns() -> list[tuple[str, str]]:
    text = (SQL_DIR / "athena" / "requests.sql").read_text()
    body = text.split("CREATE EXTERNAL TABLE IF NOT EXISTS requests (", 1)[1].split("\n)\nPARTITIONED BY", 1)[0]
    cols = []
    for line in body.strip().splitlines():
        name, typ = line.strip().rstrip(",").split(" ", 1)
        cols.append((name.strip("`"), typ.replace(" ", "")))
    return cols


def test_athena_table_and_duckdb_view_have_the_schemas_columns_and_types() -> None:
    assert athena_columns() == duckdb_columns()
    assert [n for n, _ in athena_columns()] == list(schema_document()["properties"])
    assert "PARTITIONED BY (day string)" in (SQL_DIR / "athena" / "requests.sql").read_text()


def test_request_findings_has_the_same_columns_in_both_engines(tmp_path: Path) -> None:
    athena = (SQL_DIR / "athena" / "request_findings.sql").read_text()
    select = re.search(r"SELECT (.*?)\nFROM", athena, re.S).group(1)  # type: ignore[union-attr]
    athena_names = [c.strip().split(".")[-1].strip('"') for c in select.split(",")]
    with RequestLog(tmp_path) as log:
        duck = [r["column_name"] for r in log.sql("DESCRIBE request_findings")]
        requests = [r["column_name"] for r in log.sql("DESCRIBE requests")]
    assert duck == athena_names == ["request_id", "day", "time", "eval", "decision", "location", "detector", "n"]
    assert requests == [n for n, _ in duckdb_columns()] + ["day"]


def test_athena_queries_are_the_duckdb_queries_and_give_the_same_rows(
    generated: tuple[Path, list], workflow: Any
) -> None:
    """The Athena script carries every query as the same text, with the window bound as
    literals; run in DuckDB, that bound text selects exactly what the parameterised one does."""
    directory, _ = generated
    window = Window.last(dt.timedelta(days=7), NOW)
    detectors = detector_categories(workflow)
    script = athena_script("corp-ai-audit-logs", detectors, window)
    unbound = athena_script("corp-ai-audit-logs", detectors)
    with RequestLog(directory, detectors) as log:
        for name in QUERIES:
            bound = bind_literals(query_text(name), window.params())
            assert bound.strip() in script and query_text(name).strip() in unbound
            assert log.sql(bound) == log.query(name, window), name
            assert query_text(name).count("?") == 4, name
    assert "LOCATION 's3://corp-ai-audit-logs/requests/'" in script
    assert "'storage.location.template' = 's3://corp-ai-audit-logs/requests/date=${day}/'" in script
    assert (
        "CREATE OR REPLACE VIEW detector_categories" in script
        and "('aws-access-key', 'credentials', 'block')" in script
    )
    assert "{{" not in script


def test_bind_literals_only_touches_parameters() -> None:
    sql = "SELECT '?' AS q, \"?\" -- what?\nFROM t WHERE a = ? AND b = ?"
    assert bind_literals(sql, ["x", "it's"]) == "SELECT '?' AS q, \"?\" -- what?\nFROM t WHERE a = 'x' AND b = 'it''s'"
    with pytest.raises(ValueError):
        bind_literals(sql, ["x"])
    with pytest.raises(ValueError):
        bind_literals(sql, ["x", "y", "z"])


def test_athena_script_refuses_a_url_for_a_bucket() -> None:
    from controller.errors import InvalidInput

    with pytest.raises(InvalidInput):
        athena_script("s3://corp-ai-audit-logs/requests", [])


# --- regressions and exceptions (pure) -------------------------------------------------------------


def run(digest: str, at: str, cases: dict[str, bool]) -> EvalRun:
    return EvalRun(
        digest=digest,
        key=f"evals/{digest}/{at}",
        finished_at=at,
        verdict="PASS" if all(cases.values()) else "FAIL",
        content_hash=f"{digest[:4]}-{at}",
        rates={},
        model="local: x",
        operator="t",
        cases=tuple((c, "correctness", p) for c, p in cases.items()),
    )


def test_golden_regressions_name_where_a_case_broke() -> None:
    a = run("aaaa" * 16, "2026-11-20T10:00:00.000000+00:00", {"x": True, "y": True, "z": False})
    b = run("bbbb" * 16, "2026-11-21T10:00:00.000000+00:00", {"x": False, "y": True, "z": False})
    c = run("bbbb" * 16, "2026-11-25T10:00:00.000000+00:00", {"x": False, "y": False, "z": True})
    found = golden_regressions([c, a, b], Window.everything())
    assert [(r.case_id, r.passed_release[:4], r.failed_release[:4], r.same_release) for r in found] == [
        ("x", "aaaa", "bbbb", False),  # broke with release b; still failing in c is not a new regression
        ("y", "bbbb", "bbbb", True),  # same release, later run: the model behind it changed
    ]
    recent = golden_regressions([a, b, c], Window(dt.datetime(2026, 11, 24, tzinfo=dt.UTC), NOW))
    assert [r.case_id for r in recent] == ["y"]


def test_exceptions_expiring_within_14_days_or_expired_are_flagged() -> None:
    class E:
        def __init__(self, subject: str, expires: dt.date) -> None:
            self.subject, self.owner, self.reason, self.expires = subject, "sec", "vendor pilot", expires

    today = dt.date(2026, 11, 26)
    got = exception_status(
        [
            E("a", today - dt.timedelta(days=1)),
            E("b", today + dt.timedelta(days=14)),
            E("c", today + dt.timedelta(days=15)),
            E("d", today),
        ],
        today,
    )
    assert [(s.subject, s.status, s.days_left) for s in got] == [
        ("a", "expired", -1),
        ("d", "expiring", 0),
        ("b", "expiring", 14),
        ("c", "ok", 15),
    ]


# --- the command ---------------------------------------------------------------------------------


@pytest.fixture
def state_with_log(
    project: Path, tmp_path: Path, categories: dict, monkeypatch: pytest.MonkeyPatch
) -> tuple[Path, list]:
    monkeypatch.delenv("ROLLOUT_STORE", raising=False)
    now = dt.datetime.now(dt.UTC)
    records = generate_records(99, categories, n=300, now=now)
    state = tmp_path / "state"
    write_log(state / "requests", records)
    return state, records


def test_rollout_review_json_matches_plain_python(state_with_log: tuple[Path, list], categories: dict) -> None:
    state, records = state_with_log
    result = runner.invoke(_app(), ["--state", str(state), "review", "--since", "7d", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["schema"] == "ai-rollout.review/v1" and doc["problems"] == []
    window = Window(
        dt.datetime.fromisoformat(doc["window"]["since"]), dt.datetime.fromisoformat(doc["window"]["until"])
    )
    want = expected_figures(records, window, categories)
    assert doc["usage"]["totals"]["requests"] == sum(v["requests"] for v in want["usage"].values())
    assert {(u["day"], u["cohort"], u["variant"]): u["requests"] for u in doc["usage"]["by_day_and_cohort"]} == {
        k: v["requests"] for k, v in want["usage"].items()
    }
    assert {f["reason"]: f["requests"] for f in doc["policy_violations"]["refused_identities"]} == want["refusals"]
    assert doc["control_plane"]["actions"] == [] and doc["golden_set_regressions"] == []
    text = runner.invoke(_app(), ["--state", str(state), "review"])
    assert text.exit_code == 0
    for heading in (
        "Usage by day",
        "Near-misses",
        "Fallbacks",
        "Policy violations",
        "Golden-set regressions",
        "exceptions",
        "Control-plane actions",
    ):
        assert heading in text.stdout, heading


def test_rollout_review_flags_expiring_and_expired_exceptions(project: Path, tmp_path: Path) -> None:
    today = dt.datetime.now(dt.UTC).date()

    def grant(data: Any) -> None:
        data["personal_accounts"]["exceptions"] = [
            {
                "subject": "contractor@gmail.com",
                "owner": "priya.natarajan",
                "reason": "vendor pilot",
                "expires": today + dt.timedelta(days=5),
            },
            {
                "subject": "old@gmail.com",
                "owner": "priya.natarajan",
                "reason": "migration",
                "expires": today - dt.timedelta(days=2),
            },
            {
                "subject": "long@gmail.com",
                "owner": "sam.okafor",
                "reason": "research",
                "expires": today + dt.timedelta(days=60),
            },
        ]

    edit_yaml(project / "workflow.yaml", grant)
    result = runner.invoke(_app(), ["--state", str(tmp_path / "state"), "review", "--json"])
    assert result.exit_code == 0, result.output  # an invalid bundle is a finding here, not a refusal
    doc = json.loads(result.stdout)
    assert {e["subject"]: e["status"] for e in doc["exceptions"]} == {
        "old@gmail.com": "expired",
        "contractor@gmail.com": "expiring",
        "long@gmail.com": "ok",
    }
    assert any("expired" in p for p in doc["problems"])


def test_rollout_review_refuses_a_bad_since_and_prints_athena_sql(project: Path, tmp_path: Path) -> None:
    state = str(tmp_path / "state")
    assert runner.invoke(_app(), ["--state", state, "review", "--since", "a week"]).exit_code == 2
    result = runner.invoke(_app(), ["--state", state, "review", "--since", "7d", "--athena-sql", "corp-ai-audit-logs"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("-- ===== the table over s3://BUCKET/requests/ =====")
    assert result.stdout.count("-- ===== query ") == len(QUERIES) and "?" not in result.stdout.split("query usage")[1]


# --- the review's decision: problems and exit code (pure, no I/O) ---------------------------------


def _chain(*, ok: bool = True, problems: tuple[str, ...] = (), times: tuple[str, ...] = ()) -> Any:
    from controller.evidence.facts import ChainAction, ChainFacts

    actions = tuple(
        ChainAction(seq, t, "priya.natarajan", "promote", "a" * 64, "pilot") for seq, t in enumerate(times, 1)
    )
    return ChainFacts(ok, "ok" if ok else "broken", len(actions), None if ok else 2, None if ok else "modified",
                      0, None, None, problems, actions)  # fmt: skip


def _evidence(**facts: Any) -> Any:
    from controller.evidence.facts import ReviewEvidence

    kill = {"engaged": False, "by": None, "at": None, "reason": None}
    return ReviewEvidence("wf", Window(NOW - dt.timedelta(days=7), NOW), NOW, rows={}, kill_switch=kill, **facts)


@pytest.mark.parametrize(
    ("facts", "code", "problem"),
    [
        ({}, 0, None),
        ({"bundle_problems": ("an exception expired",)}, 0, "an exception expired"),  # a finding, not a failure
        ({"chain": _chain(times=("2026-11-25T10:00:00.000000Z",))}, 0, None),
        ({"evals_error": "result edited"}, 1, "eval results do not verify: result edited"),
        ({"chain": _chain(ok=False)}, 1, "the audit chain is BROKEN at seq 2: modified"),
        ({"chain": _chain(problems=("the state is ahead",))}, 1, "the state is ahead"),
        ({"chain_error": "store unreachable"}, 1, "the control plane cannot be read: store unreachable"),
        ({"state_error": "state unreadable"}, 1, "the control plane cannot be read: state unreadable"),
        ({"chain": _chain(times=("2026-11-25T10:00:00",))}, 1, "seq 1 cannot be placed in the window"),
    ],
)
def test_the_review_exits_1_only_when_evidence_does_not_verify(facts: dict, code: int, problem: str | None) -> None:
    from controller.evidence.review import review_exit_code, review_of, review_problems

    ev = _evidence(**facts)
    assert review_exit_code(ev) == code
    problems = review_problems(ev)
    assert (problem is None) == (problems == []), problems
    if problem is not None:
        assert any(problem in p for p in problems), problems
    review = review_of(ev)
    assert list(review.problems) == problems
    unreadable = "chain_error" in facts or "state_error" in facts
    assert (review.kill_switch is None) == unreadable  # an unreadable control plane shows no kill switch


def test_a_naive_time_is_an_error_never_assumed_utc() -> None:
    window = Window(NOW - dt.timedelta(days=7), NOW)
    assert window.contains("2026-11-25T10:00:00Z") and window.contains("2026-11-25T12:00:00+02:00")
    with pytest.raises(ValueError, match="no time zone"):
        window.contains("2026-11-25T10:00:00")
    with pytest.raises(ValueError, match="timezone-aware"):
        Window(dt.datetime(2026, 11, 1), NOW)
    # a naive audit-record time is left out of the window and named, not guessed
    review = build_review(
        workflow="wf",
        window=window,
        generated_at=NOW,
        rows={},
        chain=_chain(times=("2026-11-25T10:00:00", "2026-11-25T11:00:00Z")).actions,
    )
    assert [c.seq for c in review.changes] == [2]


def test_stored_times_are_written_in_utc_with_z() -> None:
    from controller.evidence.review import build_review

    review = build_review(workflow="wf", window=Window.everything(), generated_at=NOW, rows={}).to_dict()
    assert review["generated_at"] == "2026-11-26T12:00:00.000000Z"
    assert review["window"] == {"since": "1970-01-01T00:00:00.000000Z", "until": "9999-12-31T00:00:00.000000Z"}
    assert Window(NOW - dt.timedelta(hours=1), NOW).params()[2:] == [
        "2026-11-26T11:00:00.000000Z",
        "2026-11-26T12:00:00.000000Z",
    ]
