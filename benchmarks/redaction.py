"""Benchmark of the data-boundary engine against the same patterns on stdlib ``re`` and against
detect-secrets, on one generated corpus.

    .venv/bin/python benchmarks/redaction.py [--size-mb 10] [--seed 7] [--per-type 200]
        [--per-decoy 100] [--ds-mb 1] [--re-mb 0] [--linearity-mb 1] [--workflow DIR]
    .venv/bin/python benchmarks/redaction.py --eval [--real-mb 8] [--per-cell 20] [--per-locale 300]

``--eval`` runs the evaluation against issue 12's targets instead (obfuscation matrix, public
and Faker recall, findings per MB on real text, throughput against detect-secrets): see
``benchmarks/redaction_eval.py``.

The corpus mixes prose, code, logs, JSON and markdown, with ``--per-type`` planted secrets of every
detector type (builtins plus the bundle's patterns) and ``--per-decoy`` look-alikes of every decoy
family, which must not be flagged. It prints, single-threaded:

- throughput of ``Redactor.apply`` (scan, overlap resolution, redaction) on text the process has
  not seen, after warming up on other text (a gateway's steady state); also a cold process and a
  repeat over the same text;
- the same patterns and algorithm on stdlib ``re`` (``--re-mb`` to use a slice);
- detect-secrets (default plugins and filters, ``core.scan.scan_file``) on a ``--ds-mb`` slice,
  its MB/s extrapolated to the whole corpus;
- recall per type and false positives per decoy family for all three;
- linearity: every pattern alone on its most expensive adversarial input (dense matches, near
  misses, glued copies, repeated prefixes, unterminated runs...) of 1x and 2x ``--linearity-mb``,
  and the whole redactor on mixes of all of them.

Targets: >= 40 MB/s, >= 100x detect-secrets, recall >= 99.5% for every type, false positives
<= 1% of decoys, doubling ratio <= 2.5 for every pattern. Exit status 1 if a target is missed.
The corpus is synthetic and was written alongside the detectors: recall and false-positive rates
measure the engine against these shapes, not against real-world traffic.

Every secret here is generated at run time from a seeded PRNG; none is real.
"""

from __future__ import annotations

import argparse
import base64
import bisect
import contextlib
import json
import os
import random
import re
import string
import sys
import tempfile
import time
import warnings
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from controller import boundaries  # noqa: E402
from controller.boundaries import Detector, Scanner  # noqa: E402
from controller.boundaries import validators as _validators  # noqa: E402
from controller.boundaries.redactor import Redactor  # noqa: E402
from tests.fakes.secrets import ALNUM, B64, DASHES, HEX, PW, TOKEN, UPPER27  # noqa: E402
from tests.fakes.secrets import chars as _s  # noqa: E402
from tests.fakes.secrets import mixed as _mixed  # noqa: E402

# --- secret generators ------------------------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _luhn_complete(rng: random.Random, prefix: str, length: int) -> str:
    body = prefix + _s(rng, string.digits, length - len(prefix) - 1)
    for check in string.digits:
        if boundaries.luhn_valid(body + check):
            return body + check
    raise AssertionError


def _card(rng: random.Random) -> str:
    kind = rng.randrange(4)
    if kind == 0:
        number = _luhn_complete(rng, "4", 16)
    elif kind == 1:
        number = _luhn_complete(rng, str(rng.randint(51, 55)), 16)
    elif kind == 2:
        number = _luhn_complete(rng, rng.choice(["34", "37"]), 15)
        sep = rng.choice([" ", "-", ""])
        return sep.join([number[:4], number[4:10], number[10:]]) if sep else number
    else:
        number = _luhn_complete(rng, "6011", 16)
    sep = rng.choice([" ", "-", ""])
    return sep.join(number[i : i + 4] for i in range(0, 16, 4)) if sep else number


_IBAN_BBAN = {"DE": "n18", "FR": "n23", "NL": "a4n10", "ES": "n20", "IT": "a1n22", "GB": "a4n14",
              "BE": "n12", "CH": "n17", "PL": "n24", "NO": "n11"}  # fmt: skip


def _iban(rng: random.Random, valid: bool = True) -> str:
    country = rng.choice(sorted(_IBAN_BBAN))
    spec = _IBAN_BBAN[country]
    bban = ""
    for kind, count in re.findall(r"([an])(\d+)", spec):
        alphabet = string.ascii_uppercase if kind == "a" else string.digits
        bban += _s(rng, alphabet, int(count))
    numeric = "".join(str(int(c, 36)) for c in bban + country + "00")
    check = 98 - int(numeric) % 97
    if not valid:
        check = (check + rng.randint(1, 96)) % 97 or 1
    iban = f"{country}{check:02d}{bban}"
    if rng.random() < 0.5:
        return " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))
    return iban


def _ssn(rng: random.Random) -> str:
    area = rng.choice([a for a in range(1, 900) if a != 666])
    return f"{area:03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"


def _phone(rng: random.Random) -> str:
    kind = rng.randrange(7)
    a, e, n = rng.randint(201, 989), rng.randint(200, 999), rng.randint(0, 9999)
    if kind == 0:
        return f"+1-{a}-{e}-{n:04d}"
    if kind == 1:
        return f"({a}) {e}-{n:04d}"
    if kind == 2:
        return f"+44 20 {rng.randint(7000, 8999)} {n:04d}"
    if kind == 3:
        return "+33 " + " ".join([str(rng.randint(1, 9))] + [f"{rng.randint(0, 99):02d}" for _ in range(4)])
    if kind == 4:
        return f"+49 30 {rng.randint(1000000, 99999999)}"
    if kind == 5:
        return f"020 {rng.randint(7000, 8999)} {n:04d}"
    return "0" + str(rng.randint(1, 9)) + "".join(f" {rng.randint(0, 99):02d}" for _ in range(4))


_WORD_TEXT = (
    "the of and to in is you that it he was for on are as with his they at be this have from or "
    "one had by word but not what all were we when your can said there use an each which she do "
    "how their if will up other about out many then them these so some her would make like him "
    "into time has look two more write go see number no way could people my than first water been "
    "call who oil its now find long down day did get come made may part deploy release service "
    "cluster request response latency error retry timeout queue worker batch cache index shard "
    "replica config flag rollout canary budget owner review approval policy incident runbook "
    "escalation pager metric dashboard alert backlog sprint ticket customer account invoice "
    "report quarter forecast model prompt answer context corpus document handbook vacation travel"
)
_WORDS = _WORD_TEXT.split()
_NAMES = ["alice", "bob", "carol", "dan", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory",
          "oscar", "peggy", "trent", "victor"]  # fmt: skip
_DOMAINS = ["customer.example", "mail.example.com", "clients.example.org", "acme-corp.example.net"]


def _word(rng: random.Random) -> str:
    return rng.choice(_WORDS)


def _jwt(rng: random.Random) -> str:
    header = _b64url(json.dumps({"alg": rng.choice(["HS256", "RS256", "ES256"]), "typ": "JWT"}).encode())
    claims = {"sub": _s(rng, ALNUM, 12), "iat": rng.randint(1e9, 2e9), "name": rng.choice(_NAMES)}
    payload = _b64url(json.dumps(claims).encode())
    return f"{header}.{payload}.{_s(rng, TOKEN, 43)}"


def _pem(rng: random.Random, label: str, lines: int) -> str:
    body = "\n".join(_s(rng, B64, 64) for _ in range(lines)) + "\n" + _s(rng, B64, 20) + "=="
    if label == "RSA ENCRYPTED":
        header = f"Proc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,{_s(rng, HEX.upper(), 32)}\n\n"
        rsa = "RSA PRIVATE KEY"
        return f"{DASHES}BEGIN {rsa}{DASHES}\n{header}{body}\n{DASHES}END {rsa}{DASHES}"
    key = f"{label}PRIVATE KEY"
    return f"{DASHES}BEGIN {key}{DASHES}\n{body}\n{DASHES}END {key}{DASHES}"


def _password(rng: random.Random, n: int) -> str:
    symbols = "!#%&*+-.=?^_~:@$"
    while True:
        value = rng.choice(ALNUM) + _s(rng, ALNUM + symbols, n - 1)
        if boundaries.shannon_entropy(value) >= 3.2 and _validators._classes(value) >= 3:
            return value


def _mbi(rng: random.Random) -> str:
    letters = "ACDEFGHJKMNPQRTUVWXY"
    return (
        str(rng.randint(1, 9)) + rng.choice(letters) + rng.choice(letters + string.digits)
        + str(rng.randint(0, 9)) + rng.choice(letters) + rng.choice(letters + string.digits)
        + str(rng.randint(0, 9)) + rng.choice(letters) + rng.choice(letters)
        + f"{rng.randint(0, 99):02d}"
    )  # fmt: skip


# Each planted secret is (context before, the value that must disappear, context after).
Plant = tuple[str, str, str]


def _planters() -> dict[str, Callable[[random.Random], Plant]]:
    def ctx(*pairs: tuple[str, str]) -> Callable[[random.Random, str], Plant]:
        def wrap(rng: random.Random, value: str) -> Plant:
            before, after = rng.choice(pairs)
            return before, value, after

        return wrap

    assign = ctx(("export KEY=", "\n"), ('"value": "', '"'), ("key: ", "\n"), ("using ", " now"))
    return {
        "aws-access-key": lambda r: ctx(("aws_access_key_id = ", "\n"), ('"AccessKeyId": "', '"'),
                                        ("key ", " leaked"))(r, r.choice(["AKIA", "ASIA"]) + _s(r, UPPER27, 16)),
        "aws-secret-key": lambda r: ctx(("aws_secret_access_key = ", "\n"), ('"SecretAccessKey": "', '"'),
                                        ("AWS_SECRET_ACCESS_KEY=", "\n"), ("creds ", " end"))(
            r, _mixed(r, B64, 40)),
        "github-pat": lambda r: assign(r, "ghp_" + _mixed(r, ALNUM, 36)),
        "github-oauth": lambda r: assign(r, "gho_" + _mixed(r, ALNUM, 36)),
        "github-app-token": lambda r: assign(r, r.choice(["ghu_", "ghs_"]) + _mixed(r, ALNUM, 36)),
        "github-refresh-token": lambda r: assign(r, "ghr_" + _mixed(r, ALNUM, 36)),
        "github-fine-grained-pat": lambda r: assign(
            r, "github_pat_" + _mixed(r, ALNUM, 22) + "_" + _mixed(r, ALNUM, 59)),
        "gitlab-pat": lambda r: assign(r, "glpat-" + _mixed(r, TOKEN, 20)),
        "gitlab-token": lambda r: assign(r, r.choice(["glrt-", "gldt-", "GR1348941"]) + _mixed(r, TOKEN, 20)),
        "slack-token": lambda r: assign(r, r.choice([
            f"xoxb-{_s(r, string.digits, 12)}-{_s(r, string.digits, 12)}-{_mixed(r, ALNUM, 24)}",
            f"xoxp-{_s(r, string.digits, 12)}-{_s(r, string.digits, 12)}-{_s(r, string.digits, 13)}-{_s(r, HEX, 32)}",
            f"xapp-1-A{_s(r, string.ascii_uppercase + string.digits, 10)}-{_s(r, string.digits, 13)}-{_s(r, HEX, 64)}",
        ])),
        "slack-webhook": lambda r: ctx(("webhook: ", "\n"), ("POST ", " 200"))(
            r, f"https://hooks.slack.com/services/T{_s(r, UPPER27, 8)}/B{_s(r, UPPER27, 10)}/{_mixed(r, ALNUM, 24)}"),
        "stripe-key": lambda r: assign(r, r.choice(["sk_live_", "rk_live_", "sk_test_"]) + _mixed(r, ALNUM, 24)
                                       if r.random() < 0.8 else "whsec_" + _mixed(r, ALNUM, 32)),
        "google-api-key": lambda r: assign(r, "AIza" + _mixed(r, TOKEN, 35)),
        "anthropic-api-key": lambda r: assign(r, "sk-ant-api03-" + _mixed(r, TOKEN, 93) + "AA"),
        "openai-api-key": lambda r: assign(r, r.choice([
            "sk-proj-" + _mixed(r, TOKEN, 156),
            "sk-" + _mixed(r, ALNUM, 20) + "T3BlbkFJ" + _mixed(r, ALNUM, 20)])),
        "npm-token": lambda r: assign(r, "npm_" + _mixed(r, ALNUM, 36)),
        "pypi-token": lambda r: assign(r, "pypi-AgEIcHlwaS5vcmc" + _mixed(r, TOKEN, 150)),
        "jwt": lambda r: ctx(("Authorization: JWT ", "\n"), ("token=", "&x=1"), ('"id_token": "', '"'))(r, _jwt(r)),
        "private-key": lambda r: ctx(("key:\n", "\n"), ("\n", "\n"))(
            r, _pem(r, r.choice(["RSA ", "EC ", "", "ENCRYPTED ", "RSA ENCRYPTED"]), r.randint(4, 20))),
        "openssh-private-key": lambda r: ctx(("\n", "\n"),)(r, _pem(r, "OPENSSH ", r.randint(4, 20))),
        "url-password": lambda r: (
            f"{r.choice(['postgres', 'mysql', 'redis', 'https', 'amqp', 'mongodb+srv'])}://{r.choice(_NAMES)}:",
            _password(r, r.randint(10, 24)),
            f"@db{r.randint(1, 99)}.corp.example:5432/{_word(r)}"),
        "connection-string-password": lambda r: (
            f"Server=tcp:sql{r.randint(1, 99)}.corp.example,1433;Database={_word(r)};User Id=svc;Password=",
            _password(r, r.randint(10, 24)), ";Encrypt=True;"),
        "authorization-header": lambda r: ctx(("Authorization: Bearer ", "\n"), ("-H 'Authorization: Bearer ", "'"))(
            r, _mixed(r, ALNUM, r.randint(32, 64))),
        "generic-secret": lambda r: ctx(('password = "', '"'), ("DB_PASSWORD=", "\n"), ('"client_secret": "', '"'),
                                        ("api_key: ", "\n"), ("<password>", "</password>"), ("--token=", " "))(
            r, _password(r, r.randint(12, 32))),
        "payment-card": lambda r: ctx(("card ", " exp 12/27"), ("PAN: ", "\n"), ('"card": "', '"'))(r, _card(r)),
        "iban": lambda r: ctx(("IBAN ", " BIC COBADEFFXXX"), ("account: ", "\n"))(r, _iban(r)),
        "us-ssn": lambda r: ctx(("SSN ", " on file"), ("ssn: ", "\n"))(r, _ssn(r)),
        "email": lambda r: ctx(("contact ", " today"), ("<", ">"), ('"email": "', '"'))(
            r, f"{r.choice(_NAMES)}.{_word(r)}{r.randint(1, 999)}@{r.choice(_DOMAINS)}"),
        "phone-number": lambda r: ctx(("call ", " today"), ("tel: ", "\n"), ("(mobile ", ")"))(r, _phone(r)),
        "us-medicare-id": lambda r: ctx(("Medicare MBI: ", "\n"), ("MBI ", " on the claim"))(r, _mbi(r)),
        # The bundle's patterns (workflows/internal-docs-qa).
        "incident-id": lambda r: ctx(("see ", " for the timeline"), ("[", "]"))(r, f"INC-{r.randint(1000, 9999999)}"),
        "security-incident-id": lambda r: ctx(("re ", ":"),)(r, f"SEC-IR-{r.randint(100, 999999)}"),
        "financial-codename": lambda r: ctx(("the ", " numbers"),)(
            r, r.choice(["BLUEHERON", "Blueheron", f"Kestrel-FY2{r.randint(0, 9)}", "Project Osprey"])),
        "medical-record-number": lambda r: ctx(("record ", " attached"),)(r, f"MRN-{r.randint(0, 9999999):07d}"),
        "export-licence": lambda r: ctx(("licence ", ","),)(r, f"EL-20{r.randint(10, 99)}-{r.randint(0, 99999):05d}"),
    }  # fmt: skip


def _decoys() -> dict[str, Callable[[random.Random], str]]:
    """Look-alikes a good engine must leave alone."""

    def bad_luhn(r: random.Random) -> str:
        number = _luhn_complete(r, "4", 16)
        return number[:-1] + str((int(number[-1]) + r.randint(1, 9)) % 10)

    def bad_ssn(r: random.Random) -> str:
        area = r.choice(["000", "666", f"9{r.randint(0, 99):02d}"])
        return f"{area}-{r.randint(1, 99):02d}-{r.randint(1, 9999):04d}"

    return {
        "aws-example-key": lambda r: "aws_access_key_id = AKIA" + "IOSFODNN7" + "EXAMPLE",
        "aws-lowercase-key": lambda r: "id akia" + _s(r, string.ascii_lowercase, 16),
        "aws-short-key": lambda r: "AKIA" + _s(r, UPPER27, 15),
        "aws-low-entropy": lambda r: "key = AKIA" + "X" * 16,
        "git-sha": lambda r: f"commit {_s(r, HEX, 40)}",
        "sha256": lambda r: f"sha256:{_s(r, HEX, 64)}",
        "uuid": lambda r: (f"request_id={_s(r, HEX, 8)}-{_s(r, HEX, 4)}-{_s(r, HEX, 4)}-"
                           f"{_s(r, HEX, 4)}-{_s(r, HEX, 12)}"),
        "base64-blob": lambda r: "data:" + _s(r, B64, 43) + "=",
        "camel-identifier": lambda r: "".join(w.capitalize() for w in r.sample(_WORDS, 8))[:40],
        "ghp-short": lambda r: "ghp_" + _s(r, ALNUM, 30),
        "ghp-placeholder": lambda r: "GITHUB_TOKEN=ghp_" + "x" * 36,
        "slack-docs-webhook": lambda r: "https://hooks.slack.com/services/T00000000/B00000000/" + "X" * 24,
        "stripe-publishable": lambda r: "pk_live_" + _s(r, ALNUM, 24),
        "openai-short": lambda r: "sk-" + _s(r, ALNUM, 10),
        "jwt-not-json": lambda r: "eyJ" + _s(r, ALNUM, 20) + ".eyJ" + _s(r, ALNUM, 30) + "." + _s(r, TOKEN, 20),
        "jwt-header-only": lambda r: "eyJhbGciOiJIUzI1NiJ9",
        "public-key": lambda r: "-----BEGIN PUBLIC KEY-----\n" + _s(r, B64, 64) + "\n-----END PUBLIC KEY-----",
        "certificate": lambda r: "-----BEGIN CERTIFICATE-----\n" + _s(r, B64, 64) + "\n-----END CERTIFICATE-----",
        "url-no-password": lambda r: r.choice([f"ssh://git@git.corp.example/{_word(r)}.git",
                                               f"https://git.corp.example/{_word(r)}.git"]),
        "url-placeholder": lambda r: r.choice(["postgres://app:${DB_PASSWORD}@db/prod",
                                               "redis://:password@localhost:6379",
                                               "amqp://guest:****@mq:5672"]),
        "url-port": lambda r: f"https://docs.corp.example:{r.randint(1000, 9999)}/{_word(r)}",
        "generic-call": lambda r: "password = get_password()",
        "generic-env": lambda r: r.choice(["password: ${DB_PASSWORD}", "api_key = os.environ['API_KEY']",
                                           "token: {{ vault_token }}", "secret_key = settings.SECRET_KEY"]),
        "generic-count": lambda r: f"max_tokens: {r.randint(10000000, 99999999)}",
        "generic-path": lambda r: "password_file: /etc/app/password.txt",
        "generic-placeholder": lambda r: r.choice(["password=<your-password>", PW + ' = "changeme"',
                                                   "token=xxxxxxxxxxxxxxxx", "secret: REDACTED_BY_OPS"]),
        "generic-type": lambda r: '"token_type": "bearer_token"',
        "card-bad-luhn": bad_luhn,
        "order-number": lambda r: f"order ORD-{r.randint(2019, 2025)}-{r.randint(0, 999999):06d}",
        "iban-bad-checksum": lambda r: _iban(r, valid=False).replace(" ", ""),
        "ssn-invalid": bad_ssn,
        "date-iso": lambda r: f"{r.randint(2000, 2030)}-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}",
        "date-dmy": lambda r: f"{r.randint(1, 28):02d}/{r.randint(1, 12):02d}/{r.randint(2000, 2030)}",
        "date-dotted": lambda r: f"{r.randint(1, 28):02d}.{r.randint(1, 12):02d}.{r.randint(2000, 2030)}",
        "time": lambda r: f"{r.randint(0, 23):02d}:{r.randint(0, 59):02d}:{r.randint(0, 59):02d}",
        "version": lambda r: f"v{r.randint(0, 20)}.{r.randint(0, 99)}.{r.randint(0, 999)}",
        "ipv4": lambda r: ".".join(str(r.randint(1, 254)) for _ in range(4)),
        "short-phone": lambda r: f"ext. {r.randint(100, 999)}-{r.randint(1000, 9999)}",
        "price": lambda r: f"${r.randint(1, 999)},{r.randint(100, 999)}.{r.randint(0, 99):02d}",
        "not-email": lambda r: r.choice([f"{r.choice(_NAMES)}@localhost", f"@{r.choice(_NAMES)}",
                                         "icon@2x.png", f"{_word(r)} at corp dot example"]),
        "incident-short": lambda r: f"INC-{r.randint(1, 999)}",
        "incident-word": lambda r: f"INCIDENT-{r.randint(1000, 9999)}",
        "mrn-short": lambda r: f"MRN-{r.randint(10000, 99999)}",
        "licence-short": lambda r: f"EL-2024-{r.randint(100, 999)}",
        "codename-word": lambda r: r.choice(["heron", "osprey nest", "kestrel"]),
    }  # fmt: skip


# --- corpus -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Planted:
    kind: str  # "secret" | "decoy"
    type: str
    start: int
    end: int
    value: str


def _background(rng: random.Random) -> str:
    kind = rng.randrange(5)
    if kind == 0:  # prose
        words = [_word(rng) for _ in range(rng.randint(30, 90))]
        words[0] = words[0].capitalize()
        return " ".join(words) + ".\n\n"
    if kind == 1:  # code
        name = _word(rng)
        return (
            f"def {name}_{_word(rng)}(request, limit={rng.randint(1, 500)}):\n"
            f"    items = store.fetch({name!r}, limit=limit)\n"
            f"    return [item.{_word(rng)} for item in items if item.count > {rng.randint(0, 50)}]\n\n"
        )
    if kind == 2:  # logs
        lines = []
        for _ in range(rng.randint(2, 6)):
            lines.append(
                f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:"
                f"{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}.{rng.randint(0, 999):03d}Z "
                f"{rng.choice(['INFO', 'WARN', 'ERROR'])} {_word(rng)}-svc "
                f"path=/api/v{rng.randint(1, 3)}/{_word(rng)} status={rng.choice([200, 201, 404, 500])} "
                f"took={rng.randint(1, 9999)}ms pid={rng.randint(100, 65000)}"
            )
        return "\n".join(lines) + "\n"
    if kind == 3:  # JSON
        obj = {"name": _word(rng), "count": rng.randint(0, 10**6), "tags": [_word(rng) for _ in range(3)],
               "enabled": rng.random() < 0.5, "ratio": round(rng.random(), 4)}  # fmt: skip
        return json.dumps(obj) + "\n"
    return (  # markdown
        f"## {_word(rng).capitalize()} {_word(rng)}\n\n- {_word(rng)} {_word(rng)} {_word(rng)}\n"
        f"- see [the {_word(rng)} guide](https://handbook.corp.example/{_word(rng)})\n\n"
    )


def build_corpus(size: int, seed: int, per_type: int = 200, per_decoy: int = 100) -> tuple[str, list[Planted]]:
    """A mixed corpus of about ``size`` characters with ``per_type`` planted secrets of every
    type and ``per_decoy`` look-alikes of every decoy family, spread evenly."""
    rng = random.Random(seed)
    planters, decoys = _planters(), _decoys()
    items: list[tuple[str, str]] = [("secret", t) for t in planters for _ in range(per_type)]
    items += [("decoy", t) for t in decoys for _ in range(per_decoy)]
    rng.shuffle(items)
    parts: list[str] = []
    planted: list[Planted] = []
    length = 0
    budget_per_item = size / max(1, len(items))
    background_done = 0.0
    for kind, type_ in items:
        while length < background_done:
            chunk = _background(rng)
            parts.append(chunk)
            length += len(chunk)
        background_done += budget_per_item
        if kind == "secret":
            before, value, after = planters[type_](rng)
        else:
            before, value, after = "", decoys[type_](rng), ""
        parts.append(" " + before)
        length += 1 + len(before)
        planted.append(Planted(kind, type_, length, length + len(value), value))
        parts.append(value + after + "\n")
        length += len(value) + len(after) + 1
    while length < size:
        chunk = _background(rng)
        parts.append(chunk)
        length += len(chunk)
    return "".join(parts), planted


# --- scoring ----------------------------------------------------------------------------------


@dataclass
class Score:
    recall: dict[str, tuple[int, int]]  # type -> (found, planted)
    typed: dict[str, int]
    fp: dict[str, tuple[int, int]]  # decoy family -> (flagged, total)
    unexpected: int


def score_spans(planted: list[Planted], spans: list[tuple[int, int, str]]) -> Score:
    """``spans`` are findings (start, end, type), non-overlapping."""
    spans = sorted(spans)
    starts = [s for s, _, _ in spans]
    recall: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    typed: Counter[str] = Counter()
    fp: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    used = set()
    for p in planted:
        i = bisect.bisect_right(starts, p.start) - 1
        covering = i >= 0 and spans[i][0] <= p.start and spans[i][1] >= p.end
        j = max(0, i)
        overlapping = []
        while j < len(spans) and spans[j][0] < p.end:
            if spans[j][1] > p.start:
                overlapping.append(j)
            j += 1
        used.update(overlapping)
        if p.kind == "secret":
            recall[p.type][1] += 1
            if covering:
                recall[p.type][0] += 1
                if spans[i][2] == p.type:
                    typed[p.type] += 1
        else:
            fp[p.type][1] += 1
            if overlapping:
                fp[p.type][0] += 1
    unexpected = len(spans) - len(used)
    return Score({k: tuple(v) for k, v in recall.items()}, dict(typed),
                 {k: tuple(v) for k, v in fp.items()}, unexpected)  # fmt: skip


# --- the three engines ------------------------------------------------------------------------


def _py_pattern(source: str) -> str:
    """RE2 source -> stdlib ``re`` source: a global flag group ``(?i)`` opening a group (which
    RE2 scopes to that group and Python rejects after the start) becomes a scoped ``(?i:``."""
    source = re.sub(r"\(\?:\(\?([a-zA-Z]+)\)", r"(?\1:", source)
    m = re.match(r"\(\?([a-zA-Z]+)\)", source)
    if m:
        return f"(?{m.group(1)}:{source[m.end() :]})"
    return source


class StdlibScanner:
    """The engine's algorithm, step for step, with stdlib ``re`` on ``str`` instead of RE2 on
    UTF-8 bytes: the same locator alternations, candidate tables, keywords, anchored
    confirmations, validators and allowlists."""

    def __init__(self, scanner: Scanner):
        self.scanner = scanner
        self.patterns = [re.compile(_py_pattern(d.pattern.pattern), re.ASCII) for d in scanner.detectors]
        self.allow = [
            re.compile(_py_pattern(d.allowlist.pattern), re.ASCII) if d.allowlist else None for d in scanner.detectors
        ]
        self.automata = [(re.compile(_py_pattern(a.regex.pattern), re.ASCII), a) for a in scanner._automata]

    def _confirm(self, i: int, m: re.Match[str]) -> tuple[int, int, int] | None:
        det = self.scanner.detectors[i]
        group = det.secret_group
        if isinstance(group, tuple):
            group = next((g for g in group if m.start(g) >= 0), 0)
        vs, ve = m.span(group)
        if vs < 0 or ve <= vs:
            return None
        value, whole = m.string[vs:ve], m.group(0)
        keep = det.validator(value, whole) if det.validator else len(value)
        if keep > 0 and self.allow[i] is not None and self.allow[i].search(value[:keep]):
            return None
        return (i, vs, vs + keep) if keep > 0 else None

    def scan(self, text: str) -> list[tuple[int, int, int]]:
        out = []
        n = len(text)
        for regex, automaton in self.automata:
            pos = 0
            while pos <= n:
                m = regex.search(text, pos)
                if m is None:
                    break
                start = m.start()
                head = text[start : start + 32].lower().encode("utf-8", "replace")
                first = text[start].encode("utf-8", "surrogatepass")[0] if start < n else 0
                for k in automaton.candidates[first]:
                    if automaton.keywords[k] and not head.startswith(automaton.keywords[k]):
                        continue
                    i = automaton.members[k]
                    mk = self.patterns[i].match(text, start)
                    if mk is not None and mk.end() > start and (hit := self._confirm(i, mk)):
                        out.append(hit)
                        break
                pos = start + 1
        return out


def resolve_like_redactor(redactor: Redactor, hits: list[tuple[int, int, int]]) -> list[tuple[int, int, str]]:
    """Overlap resolution of raw stdlib hits with the redactor's own rules."""
    return [(f.start, f.end, f.type) for f in redactor._resolve(list(hits))]


DS_TYPES = {  # detect-secrets plugin name -> our type, for the typed column only
    "AWS Access Key": "aws-access-key", "GitHub Token": "github-pat", "Slack Token": "slack-token",
    "Stripe Access Key": "stripe-key", "JSON Web Token": "jwt", "Private Key": "private-key",
    "NPM tokens": "npm-token", "PyPI upload token": "pypi-token", "OpenAI Token": "openai-api-key",
    "GitLab Token": "gitlab-pat", "Basic Auth Credentials": "url-password",
}  # fmt: skip


def run_detect_secrets(text: str, planted: list[Planted]) -> tuple[float, Score]:
    from detect_secrets.core.scan import scan_file
    from detect_secrets.settings import default_settings

    line_starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"]
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "corpus.txt")
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
        with default_settings():
            t0 = time.perf_counter()
            reported = list(scan_file(path))
            elapsed = time.perf_counter() - t0
    # detect-secrets reports (line, value): place the value on its line to get a span.
    spans = []
    for secret in reported:
        line = secret.line_number - 1
        if not 0 <= line < len(line_starts) or not secret.secret_value:
            continue
        begin = line_starts[line]
        end = line_starts[line + 1] if line + 1 < len(line_starts) else len(text)
        idx = text.find(secret.secret_value, begin, end)
        if idx < 0:
            spans.append((begin, end, DS_TYPES.get(secret.type, secret.type)))
        else:
            spans.append((idx, idx + len(secret.secret_value), DS_TYPES.get(secret.type, secret.type)))
    # detect-secrets reports a private key on its header line only: widen it to the block.
    merged = {}
    for s, e, t in spans:
        merged[(s, e)] = t
    spans = [(s, e, t) for (s, e), t in merged.items()]
    for p in planted:
        key = p.type in ("private-key", "openssh-private-key") and p.kind == "secret"
        if key and any(s < p.start + 80 and e > p.start for s, e, _ in spans):
            spans.append((p.start, p.end, "private-key"))
    spans = _union(spans)
    return elapsed, score_spans(planted, spans)


def _union(spans: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    out: list[list] = []
    for s, e, t in sorted(spans):
        if out and s < out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e, t])
    return [tuple(x) for x in out]


# --- linearity --------------------------------------------------------------------------------


def _adversarial(det: Detector, sample: str | None, size: int) -> Iterator[tuple[str, str]]:
    """Inputs that maximise the work per byte for one pattern: dense matches, near misses,
    recurring prefixes, unterminated runs, and a few universal fillers."""

    def fill(unit: str) -> str:
        return (unit * (size // max(1, len(unit)) + 1))[:size]

    if sample:
        prefix = sample[: max(3, min(12, len(sample) // 3))]
        yield "dense-matches", fill(sample + " ")
        yield "near-miss", fill(sample[:-1] + " ")
        yield "glued", fill(sample)
        yield "prefix-run", fill(prefix)
        yield "unterminated", prefix + fill(sample[len(prefix) :][-1:] or "a")[: size - len(prefix)]
    yield "letters", fill("a")
    yield "digits-spaced", fill("0 ")
    yield "word-dots", fill("a.")


def _sample_for(det: Detector, rng: random.Random) -> str | None:
    planters = _planters()
    if det.id in planters:
        for _ in range(20):
            _, value, _ = planters[det.id](rng)
            if det.pattern.search(value):
                return value
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            from hypothesis import strategies as st

            return st.from_regex(_py_pattern(det.pattern.pattern), fullmatch=True).example()
        except Exception:  # noqa: BLE001 - a sample is a nice-to-have for the check
            return None


def _time(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _doubling(run: Callable[[str], object], text: str, repeat: int = 3) -> tuple[float, float]:
    """Best times on ``text`` and on it doubled, measured alternately so that a burst of load
    on the machine hits both sizes alike."""
    double = text + text
    t1 = t2 = float("inf")
    for _ in range(repeat):
        t1 = min(t1, _time(lambda: run(text), 1))
        t2 = min(t2, _time(lambda: run(double), 1))
    return t1, t2


def linearity(detectors: tuple[Detector, ...], mb: float) -> list[tuple[str, str, float, float, float]]:
    rng = random.Random(1)
    size = int(mb * 1_000_000)
    rows = []
    for det in detectors:
        scanner = Scanner([det])
        sample = _sample_for(det, rng)
        # The worst input is the one that costs the most per byte (picked on a quarter of the
        # size); its doubling ratio is the one that matters (ratios of microseconds are noise).
        costs = []
        for family, text in _adversarial(det, sample, size):
            quarter = text[: size // 4]
            scanner.scan(quarter[:1000])
            costs.append((_time(lambda t=quarter, sc=scanner: sc.scan(t), 1), family, text))
        _, family, text = max(costs, key=lambda c: c[0])
        t1, t2 = _doubling(scanner.scan, text)
        rows.append((f"{det.source}:{det.id}", family, t1, t2, t2 / t1 if t1 > 0 else 1.0))
    return rows


def linearity_all(redactor: Redactor, detectors: tuple[Detector, ...], mb: float) -> tuple[str, float, float]:
    """The whole redactor on mixes of every pattern's adversarial material."""
    rng = random.Random(2)
    size = int(mb * 1_000_000)
    samples = [x for x in (_sample_for(d, rng) for d in detectors) if x]
    mixes = {
        "all-dense": " ".join(samples),
        "all-glued": "".join(samples),
        "all-prefixes": "".join(x[: max(3, min(12, len(x) // 3))] for x in samples),
        "all-near-miss": " ".join(x[:-1] for x in samples),
        "letters": "a",
    }
    costs = []
    for family, unit in mixes.items():
        text = (unit * (size // len(unit) + 1))[:size]
        costs.append((_time(lambda t=text[: size // 4]: redactor.apply(t), 1), family, text))
    _, family, text = max(costs)
    t1, t2 = _doubling(redactor.apply, text)
    return family, t1, t2


# --- workflow patterns ------------------------------------------------------------------------


def load_workflow(path: Path) -> tuple[tuple[Detector, ...], dict[str, str]]:
    from ruamel.yaml import YAML

    doc = YAML(typ="safe").load((path / "workflow.yaml").read_text(encoding="utf-8"))
    boundaries_doc = doc["data_boundaries"]
    patterns = boundaries_doc.get("patterns", [])
    refs = [r for f in boundaries_doc["forbidden"] for r in f["detectors"]]
    actions = {f["category"]: f["action"] for f in boundaries_doc["forbidden"]}
    return boundaries.resolve_detectors(refs, patterns), actions


# --- report -----------------------------------------------------------------------------------


def _pct(found: int, total: int) -> str:
    return f"{100.0 * found / total:6.2f}%" if total else "   n/a"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--per-type", type=int, default=200, help="planted secrets of each type")
    parser.add_argument("--per-decoy", type=int, default=100, help="decoys of each family")
    parser.add_argument("--ds-mb", type=float, default=1.0, help="detect-secrets slice (it is slow)")
    parser.add_argument("--re-mb", type=float, default=0.0,
                        help="stdlib re slice; 0 = the whole corpus")  # fmt: skip
    parser.add_argument("--linearity-mb", type=float, default=1.0)
    parser.add_argument("--workflow", type=Path, default=ROOT / "workflows" / "internal-docs-qa")
    parser.add_argument("--eval", action="store_true",
                        help="run issue 12's evaluation instead (benchmarks/redaction_eval.py)")
    parser.add_argument("--real-mb", type=float, default=8.0, help="--eval: MB of each real-text source")
    parser.add_argument("--per-cell", type=int, default=20, help="--eval: values per obfuscation cell")
    parser.add_argument("--per-locale", type=int, default=300, help="--eval: Faker values per kind and locale")
    args = parser.parse_args(argv)
    if args.eval:
        from benchmarks.redaction_eval import run

        return run(args.real_mb, args.per_cell, args.per_locale, args.ds_mb, args.seed)

    size = int(args.size_mb * 1_000_000)
    detectors, actions = load_workflow(args.workflow)
    redactor = Redactor(detectors, actions)
    print(f"detectors: {len(detectors)} ({sum(d.source == 'builtin' for d in detectors)} builtin, "
          f"{sum(d.source == 'pattern' for d in detectors)} from {args.workflow.name})")  # fmt: skip

    t0 = time.perf_counter()
    text, planted = build_corpus(size, args.seed, args.per_type, args.per_decoy)
    mb = len(text.encode()) / 1e6
    n_secrets = sum(p.kind == "secret" for p in planted)
    print(f"corpus: {mb:.2f} MB, {len(text.splitlines())} lines, {n_secrets} planted secrets of "
          f"{len({p.type for p in planted if p.kind == 'secret'})} types, "
          f"{len(planted) - n_secrets} decoys ({time.perf_counter() - t0:.1f}s to generate)\n")  # fmt: skip

    # Engine, single thread. The target is the pass over text it has never seen in a process that
    # has already scanned other text (a gateway's steady state: RE2 builds DFA states lazily and
    # keeps them). Also shown: a cold process, and a repeat over the same text.
    cold_redactor = Redactor(detectors, actions)
    t0 = time.perf_counter()
    cold_redactor.apply(text)
    cold = time.perf_counter() - t0
    redactor.apply(build_corpus(1_000_000, args.seed + 1, 40, 20)[0])
    t0 = time.perf_counter()
    result = redactor.apply(text)
    engine_time = time.perf_counter() - t0
    t0 = time.perf_counter()
    redactor.apply(text)
    repeat_time = time.perf_counter() - t0
    t0 = time.perf_counter()
    redactor.scan(text)
    scan_time = time.perf_counter() - t0
    engine_score = score_spans(planted, [(f.start, f.end, f.type) for f in result.findings])
    print(f"engine (apply: scan + resolve + redact): unseen text {engine_time:.3f}s "
          f"({mb / engine_time:.1f} MB/s); cold process {cold:.3f}s ({mb / cold:.1f} MB/s); "
          f"same text again {repeat_time:.3f}s ({mb / repeat_time:.1f} MB/s); "
          f"scan only {scan_time:.3f}s ({mb / scan_time:.1f} MB/s)")  # fmt: skip

    # Same patterns, same algorithm, stdlib re.
    stdlib = StdlibScanner(redactor._scanner)
    re_text, re_planted = text, planted
    if args.re_mb:
        cut = int(args.re_mb * 1_000_000)
        re_text = text[:cut]
        re_planted = [p for p in planted if p.end <= cut]
    t0 = time.perf_counter()
    re_hits = stdlib.scan(re_text)
    re_time = time.perf_counter() - t0
    re_mb = len(re_text.encode()) / 1e6
    re_score = score_spans(re_planted, resolve_like_redactor(redactor, re_hits))
    print(f"stdlib re: {re_time:.3f}s on {re_mb:.2f} MB ({re_mb / re_time:.2f} MB/s)")

    # detect-secrets on a slice (line-aligned), default plugins and filters.
    cut = text.rfind("\n", 0, int(args.ds_mb * 1_000_000)) + 1 or len(text)
    ds_text = text[:cut]
    ds_planted = [p for p in planted if p.end <= cut]
    with contextlib.redirect_stderr(open(os.devnull, "w")):  # noqa: SIM115
        ds_time, ds_score = run_detect_secrets(ds_text, ds_planted)
    ds_mb = len(ds_text.encode()) / 1e6
    print(f"detect-secrets: {ds_time:.3f}s on a {ds_mb:.2f} MB slice ({ds_mb / ds_time:.3f} MB/s, "
          f"extrapolated to the full corpus: {mb / (ds_mb / ds_time):.0f}s)\n")  # fmt: skip

    # Per-type table.
    types = sorted({p.type for p in planted if p.kind == "secret"})
    print(f"recall: planted secrets fully covered by a finding ('typed': by a finding of that type); "
          f"detect-secrets on its {ds_mb:.0f} MB slice only")  # fmt: skip
    print(f"{'type':28} {'planted':>7} {'engine':>8} {'typed':>8} {'stdlib re':>9} {'detect-secrets':>14}")
    for t in types:
        found, total = engine_score.recall[t]
        rf, rt = re_score.recall.get(t, (0, 0))
        df, dt = ds_score.recall.get(t, (0, 0))
        print(f"{t:28} {total:7d} {_pct(found, total):>8} {_pct(engine_score.typed.get(t, 0), total):>8} "
              f"{_pct(rf, rt):>9} {_pct(df, dt):>14}")  # fmt: skip
    print()
    print(f"{'decoy family':28} {'decoys':>7} {'engine':>8} {'stdlib re':>9} {'detect-secrets':>14}  (flagged)")
    for t in sorted(engine_score.fp):
        flagged, total = engine_score.fp[t]
        rf, rt = re_score.fp.get(t, (0, 0))
        df, dt = ds_score.fp.get(t, (0, 0))
        print(f"{t:28} {total:7d} {_pct(flagged, total):>8} {_pct(rf, rt):>9} {_pct(df, dt):>14}")
    print(f"\nfindings outside planted spans: engine {engine_score.unexpected}, stdlib re "
          f"{re_score.unexpected}, detect-secrets {ds_score.unexpected}\n")  # fmt: skip

    # Linearity.
    print(f"linearity: each pattern alone on {args.linearity_mb:g} MB and {2 * args.linearity_mb:g} MB "
          "adversarial inputs (worst family per pattern)")  # fmt: skip
    rows = linearity(detectors, args.linearity_mb)
    print(f"{'pattern':38} {'worst input':14} {'t(1x)':>8} {'t(2x)':>8} {'ratio':>6}")
    for name, family, t1, t2, ratio in rows:
        print(f"{name:38} {family:14} {t1:8.4f} {t2:8.4f} {ratio:6.2f}")
    family, t1, t2 = linearity_all(redactor, detectors, args.linearity_mb)
    print(f"{'(all patterns, Redactor.apply)':38} {family:14} {t1:8.4f} {t2:8.4f} {t2 / t1:6.2f}\n")
    rows.append(("(all patterns, Redactor.apply)", family, t1, t2, t2 / t1))

    # Targets.
    total_found = sum(f for f, _ in engine_score.recall.values())
    worst_type = min(engine_score.recall, key=lambda t: engine_score.recall[t][0] / engine_score.recall[t][1])
    wf, wt = engine_score.recall[worst_type]
    flagged = sum(f for f, _ in engine_score.fp.values())
    decoys = sum(t for _, t in engine_score.fp.values())
    speed = mb / engine_time
    ds_speed = ds_mb / ds_time
    worst_ratio = max(rows, key=lambda r: r[4])
    checks = [
        ("throughput >= 40 MB/s (apply, unseen text)", speed >= 40, f"{speed:.1f} MB/s"),
        (">= 100x detect-secrets", speed / ds_speed >= 100, f"{speed / ds_speed:.0f}x"),
        ("recall >= 99.5% for every type", wf / wt >= 0.995,
         f"overall {_pct(total_found, n_secrets).strip()}, worst {worst_type} {_pct(wf, wt).strip()}"),
        ("false positives <= 1% of decoys", flagged / decoys <= 0.01,
         f"{flagged}/{decoys} = {_pct(flagged, decoys).strip()}"),
        ("doubling ratio <= 2.5 for every pattern", worst_ratio[4] <= 2.5,
         f"worst {worst_ratio[0]} ({worst_ratio[1]}) {worst_ratio[4]:.2f}"),
    ]  # fmt: skip
    print("targets")
    for name, ok, detail in checks:
        print(f"  {'PASS' if ok else 'FAIL'}  {name:42} {detail}")
    print(f"\n(stdlib re on the same patterns: {re_mb / re_time:.2f} MB/s, engine is "
          f"{speed / (re_mb / re_time):.0f}x faster)")  # fmt: skip
    return 0 if all(ok for _, ok, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
