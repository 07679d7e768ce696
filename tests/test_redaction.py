"""The redactor: actions, overlap resolution, placeholders, results without values, the golden set's
policy cases, decoding of hostile bytes, and properties (hypothesis): a generated secret
embedded anywhere in random text is gone after redaction, redaction is idempotent, and no input
raises.

Every secret here is built at run time from a seeded PRNG or by concatenation; none is real.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import random
import string
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from controller.boundaries import builtin_detectors, luhn_valid, resolve_detectors
from controller.boundaries.redactor import (
    Action,
    Finding,
    RedactionResult,
    Redactor,
    decode_input,
    summarize,
)
from tests.fakes.secrets import ALNUM, DASHES, UPPER27, mixed
from tests.fakes.secrets import chars as s

REPO = Path(__file__).resolve().parent.parent
BUNDLE = REPO / "workflows" / "internal-docs-qa"
RSA = "RSA PRIVATE KEY"


def b64url(obj: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")


def card(rng: random.Random) -> str:
    body = "4" + s(rng, string.digits, 14)
    return next(body + d for d in string.digits if luhn_valid(body + d))


def iban(rng: random.Random) -> str:
    bban = s(rng, string.digits, 18)
    check = 98 - int("".join(str(int(c, 36)) for c in bban + "DE00")) % 97
    return f"DE{check:02d}{bban}"


# A secret of every kind, as it would be pasted: the whole string must disappear.
SECRETS: list[Callable[[random.Random], str]] = [
    lambda r: "AKIA" + s(r, UPPER27, 16),
    lambda r: "aws_secret_access_key=" + mixed(r, ALNUM + "+/", 40),
    lambda r: "ghp_" + mixed(r, ALNUM, 36),
    lambda r: "github_pat_" + mixed(r, ALNUM, 22) + "_" + mixed(r, ALNUM, 59),
    lambda r: "glpat-" + mixed(r, ALNUM, 20),
    lambda r: f"xoxb-{s(r, string.digits, 12)}-{s(r, string.digits, 12)}-{mixed(r, ALNUM, 24)}",
    lambda r: "sk_live_" + mixed(r, ALNUM, 24),
    lambda r: "AIza" + mixed(r, ALNUM, 35),
    lambda r: "sk-ant-api03-" + mixed(r, ALNUM, 93) + "AA",
    lambda r: "sk-proj-" + mixed(r, ALNUM, 120),
    lambda r: "npm_" + mixed(r, ALNUM, 36),
    lambda r: "pypi-AgEIcHlwaS5vcmc" + mixed(r, ALNUM, 120),
    lambda r: b64url({"alg": "HS256", "typ": "JWT"}) + "." + b64url({"sub": s(r, ALNUM, 8)}) + "." + mixed(r, ALNUM, 43),
    lambda r: f"{DASHES}BEGIN {RSA}{DASHES}\n" + mixed(r, ALNUM + "+/", 64) + f"\n{DASHES}END {RSA}{DASHES}",
    lambda r: "postgres://app:" + mixed(r, ALNUM, 16) + "@db.corp.example/prod",
    lambda r: "password=" + mixed(r, ALNUM, 18),
    lambda r: f"{s(r, string.ascii_lowercase, 6)}.{s(r, string.ascii_lowercase, 5)}@customer.example",
    lambda r: f"+1-{r.randint(201, 989)}-{r.randint(200, 999)}-{r.randint(0, 9999):04d}",
    card,
    iban,
    lambda r: f"{r.randint(1, 665):03d}-{r.randint(1, 99):02d}-{r.randint(1, 9999):04d}",
    lambda r: f"INC-{r.randint(1000, 9999999)}",
    lambda r: f"MRN-{r.randint(0, 9999999):07d}",
]  # fmt: skip


def _workflow() -> tuple[tuple, dict[str, str]]:
    doc = YAML(typ="safe").load((BUNDLE / "workflow.yaml").read_text(encoding="utf-8"))
    boundaries = doc["data_boundaries"]
    detectors = []
    for forbidden in boundaries["forbidden"]:
        detectors.extend(resolve_detectors(forbidden["detectors"], boundaries["patterns"]))
    actions = {f["category"]: f["action"] for f in boundaries["forbidden"]}
    return tuple(detectors), actions


DETECTORS, ACTIONS = _workflow()
REDACTOR = Redactor(DETECTORS, ACTIONS)


# --- results ----------------------------------------------------------------------------------


def test_a_finding_never_holds_the_value() -> None:
    assert [f.name for f in dataclasses.fields(Finding)] == ["type", "category", "start", "end"]
    assert Action("block") is Action.BLOCK and Action.REDACT == "redact"


def test_apply_redacts_and_blocks_naming_categories_not_values() -> None:
    rng = random.Random(1)
    key = "AKIA" + s(rng, UPPER27, 16)
    email = "jordan.example@customer.example"
    text = f"my key {key}, mail {email}, see INC-20431."
    result = REDACTOR.apply(text)
    assert result.blocked is True
    assert result.blocked_categories == ("credentials", "incident-details")
    assert key not in result.text and email not in result.text and "INC-20431" not in result.text
    assert result.text == ("my key [REDACTED:aws-access-key], mail [REDACTED:email], see [REDACTED:incident-id].")
    assert [(f.type, f.category) for f in result.findings] == [
        ("aws-access-key", "credentials"),
        ("email", "customer-data"),
        ("incident-id", "incident-details"),
    ]
    assert summarize(result.findings) == {"aws-access-key": 1, "email": 1, "incident-id": 1}
    assert result.summary == summarize(result.findings)


def test_redact_only_findings_do_not_block() -> None:
    result = REDACTOR.apply("call +1-202-555-0147 about the robots")
    assert result.blocked is False and result.blocked_categories == ()
    assert result.text == "call [REDACTED:phone-number] about the robots"


def test_json_dict_has_original_offsets_and_no_values() -> None:
    email = "ana.lima@customer.example"
    text = f"é€ {email} and MRN-0042137"
    payload = REDACTOR.apply(text).to_json_dict()
    assert json.loads(json.dumps(payload)) == payload
    assert set(payload) == {"text", "findings", "blocked", "blocked_categories"}
    assert payload["blocked"] is True and payload["blocked_categories"] == ["regulated-data"]
    spans = [text[f["start"] : f["end"]] for f in payload["findings"]]
    assert spans == [email, "MRN-0042137"]
    assert all(set(f) == {"type", "category", "start", "end"} for f in payload["findings"])
    assert email not in json.dumps(payload["findings"])


def test_a_category_without_an_action_fails_closed() -> None:
    redactor = Redactor(resolve_detectors(["builtin:email"]), {})
    assert redactor.apply("x ana@customer.example").blocked_categories == ("customer-data",)


def test_actions_may_be_any_str_enum() -> None:
    class Other(StrEnum):
        REDACT = "redact"

    redactor = Redactor(resolve_detectors(["builtin:email"]), {"customer-data": Other.REDACT})
    assert redactor.apply("x ana@customer.example").blocked is False


# --- overlaps ---------------------------------------------------------------------------------


def test_blocking_category_wins_an_overlap_and_the_union_is_redacted() -> None:
    # The URL's password is also the local part of an e-mail-shaped string.
    value = "n0t-a-real-passw0rd"
    text = f"postgres://app:{value}@db.corp.example:5432/prod"
    result = REDACTOR.apply(text)
    (finding,) = result.findings
    assert (finding.type, finding.category) == ("url-password", "credentials")
    assert value not in result.text and "db.corp.example" not in result.text
    assert result.blocked_categories == ("credentials",)


def test_the_more_specific_detector_names_an_overlap() -> None:
    token = "ghp_" + mixed(random.Random(2), ALNUM, 36)
    result = REDACTOR.apply(f"GITHUB_TOKEN={token}\n")
    assert [f.type for f in result.findings] == ["github-pat"]
    assert result.text == "GITHUB_TOKEN=[REDACTED:github-pat]\n"


def test_overlapping_matches_never_leave_a_tail() -> None:
    rng = random.Random(3)
    token = "ghp_" + mixed(rng, ALNUM, 36)
    key = "AKIA" + s(rng, UPPER27, 16)
    glued = token + key  # the AWS key is only visible once the token is gone
    result = REDACTOR.apply(f"x {glued} y")
    assert token not in result.text and key not in result.text
    assert REDACTOR.scan(result.text) == []
    assert REDACTOR.apply(result.text).text == result.text
    assert {f.type for f in result.findings} <= {"github-pat", "aws-access-key"}


def test_golden_policy_cases_block_and_never_echo() -> None:
    golden = YAML(typ="safe").load((BUNDLE / "golden.yaml").read_text(encoding="utf-8"))
    cases = [c for c in golden["cases"] if c["category"] == "policy-compliance"]
    assert cases
    for case in cases:
        result = REDACTOR.apply(case["input"]["question"])
        expect = case["expect"]
        assert set(expect.get("must_block", [])) <= set(result.blocked_categories), case["id"]
        assert result.blocked is bool(expect.get("must_block")), case["id"]
        for needle in expect.get("must_not_contain", []):
            assert needle not in result.text, (case["id"], needle)
            assert needle not in json.dumps(result.to_json_dict()), (case["id"], needle)


def test_allowed_examples_pass_untouched() -> None:
    doc = YAML(typ="safe").load((BUNDLE / "workflow.yaml").read_text(encoding="utf-8"))
    for allowed in doc["data_boundaries"]["allowed"]:
        for example in allowed["examples"]:
            result = REDACTOR.apply(example)
            assert result.findings == () and result.text == example


# --- decoding ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"plain", "plain"),
        (b"\xef\xbb\xbfbom", "bom"),
        (b"bad \xff\xfe\xc3( utf8", "bad \ufffd\ufffd\ufffd( utf8"),
        ("héllo".encode("utf-16"), "héllo"),
        ("plain ascii".encode("utf-16-le"), "plain ascii"),  # no BOM, every other byte NUL
        ("plain ascii".encode("utf-16-be"), "plain ascii"),
        (b"\xff\xfe\x00", "\ufffd\ufffd\x00"),  # a BOM, then not UTF-16 after all
        (b"\x00\x01nul", "\x00\x01nul"),
        (b"", ""),
        (bytearray(b"x"), "x"),
    ],
)
def test_decode_input(data: bytes, expected: str) -> None:
    assert decode_input(data) == expected


def test_utf16_text_is_scanned_as_text() -> None:
    token = "ghp_" + mixed(random.Random(4), ALNUM, 36)
    for codec in ("utf-16", "utf-16-le", "utf-16-be"):
        result = REDACTOR.apply(decode_input(f"GITHUB_TOKEN={token}\n".encode(codec)))
        assert result.blocked and token not in result.text


def test_binary_input_is_decoded_and_redacted() -> None:
    email = b"ana@customer.example"
    data = bytes(range(256)) + b" " + email + b" \xed\xa0\x80 \xc0\xaf"
    result = REDACTOR.apply(decode_input(data))
    assert "ana@customer.example" not in result.text


# --- properties -------------------------------------------------------------------------------

# Any character (lone surrogates and controls included) for the surrounding text; a delimiter
# on each side of the secret, since a secret glued to letters is a different, longer token.
ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=200)
DELIMITERS = st.sampled_from([" ", "\n", "\t", '"', "'", "(", ")", "<", ">", ",", ";", "|", "\r\n", " · "])
PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(
    prefix=ANY_TEXT,
    suffix=ANY_TEXT,
    kind=st.integers(0, len(SECRETS) - 1),
    seed=st.integers(0, 2**32 - 1),
    left=DELIMITERS,
    right=DELIMITERS,
)
def test_an_embedded_secret_is_gone_after_redaction(
    prefix: str, suffix: str, kind: int, seed: int, left: str, right: str
) -> None:
    secret = SECRETS[kind](random.Random(seed))
    result = REDACTOR.apply(prefix + left + secret + right + suffix)
    assert secret not in result.text


@PROPERTY
@given(
    parts=st.lists(
        st.one_of(ANY_TEXT, st.tuples(st.integers(0, len(SECRETS) - 1), st.integers(0, 2**32 - 1))),
        max_size=8,
    )
)
def test_redaction_is_idempotent(parts: list) -> None:
    text = " ".join(p if isinstance(p, str) else SECRETS[p[0]](random.Random(p[1])) for p in parts)
    once = REDACTOR.apply(text)
    assert REDACTOR.scan(once.text) == []
    assert REDACTOR.apply(once.text).text == once.text
    for f in once.findings:
        assert 0 <= f.start < f.end <= len(text)


@PROPERTY
@given(st.one_of(ANY_TEXT, st.binary(max_size=400).map(decode_input)))
def test_no_input_raises_and_findings_are_sorted_and_disjoint(text: str) -> None:
    result = REDACTOR.apply(text)
    assert isinstance(result, RedactionResult)
    ends = [(f.start, f.end) for f in result.findings]
    assert all(a[1] <= b[0] for a, b in zip(ends, ends[1:], strict=False))
    assert all(0 <= s < e <= len(text) for s, e in ends)


def test_every_builtin_together_survives_a_10_mb_single_line() -> None:
    rng = random.Random(11)
    words = ["lorem", "ipsum", "token", "password=", "@", "4111", "+1", "eyJ", "AKIA", "-----BEGIN",
             "://", "é", "日本", "\udcff", "0", "sk-", "ghp_", "=" * 3, "x" * 50, "7" * 20]  # fmt: skip
    chunk = " ".join(rng.choice(words) for _ in range(2000))
    key = "AKIA" + s(rng, UPPER27, 16)
    line = (chunk + " ") * (10_000_000 // (len(chunk) + 1)) + key
    assert "\n" not in line and len(line) >= 9_000_000
    redactor = Redactor(builtin_detectors(), {})
    result = redactor.apply(line)
    assert key not in result.text
