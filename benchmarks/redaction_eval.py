"""The data-boundary evaluation against issue 12's targets, on obfuscated, public and real text.

    .venv/bin/python benchmarks/redaction.py --eval [--real-mb 8] [--per-cell 20] [--per-locale 300]
        [--ds-mb 1] [--seed 7]

Prints, single-threaded, each against its target with PASS/FAIL:

- the obfuscation matrix: every secret type x every form of tests/fakes/obfuscate.py, share caught,
  and raw values left in what the request log's floor would write (the floor redactor: every
  builtin detector, action redact);
- recall per family on the public set (tests/data/secret_cases.json, gitleaks' rule tests);
- recall per kind and locale on Faker-generated PII (email, phone, IBAN, card) in sentences;
- findings per MB on real text that holds no secrets: the installed CPython stdlib (without its
  test directories, which hold deliberate fixtures) and a site-packages slice (botocore's service
  data and docs, package READMEs and metadata); credentials and customer data count, network
  addresses are reported apart (a bundle opts into that category);
- look-alikes altered (ISO timestamps, ARNs, pod names, git SHAs, UUIDs, CamelCase names in
  ``token = "..."`` assignments);
- throughput of ``Redactor.apply`` on that real text (normalised view and decoding on), and
  detect-secrets (default plugins and filters) on a ``--ds-mb`` slice of the same text, in the
  same run.

Presidio's analyzer is not compared: it needs a spaCy model downloaded at run time, which this
project's machines cannot do.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import string
import sysconfig
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path

from controller.boundaries import builtin_detectors
from controller.boundaries.redactor import Action, Redactor
from tests.fakes.obfuscate import FORMS
from tests.fakes.secrets import ALNUM, B64, DASHES, HEX, PW, TOKEN, UPPER27, chars, mixed

ROOT = Path(__file__).resolve().parents[1]
LOCALES = ["en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL", "pt_BR", "ja_JP", "pl_PL"]


def floor_redactor() -> Redactor:
    """The request log's floor, built as the gateway builds it."""
    detectors = builtin_detectors()
    return Redactor(detectors, {d.category: Action.REDACT for d in detectors})


def _b64url(data: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _secret_types() -> dict[str, Callable[[random.Random], str]]:
    def jwt(r: random.Random) -> str:
        header = _b64url(b'{"alg":"HS256","typ":"JWT"}')
        payload = _b64url(json.dumps({"sub": chars(r, ALNUM, 10), "iat": r.randint(1, 10**9)}).encode())
        return f"{header}.{payload}.{chars(r, TOKEN, 43)}"

    def pem(r: random.Random) -> str:
        lines = [chars(r, B64, 64) for _ in range(6)]
        return f"{DASHES}BEGIN RSA PRIVATE KEY{DASHES} " + " ".join(lines) + f" {DASHES}END RSA PRIVATE KEY{DASHES}"

    return {
        "aws-access-key": lambda r: "AKIA" + chars(r, UPPER27, 16),
        "github-pat": lambda r: "ghp_" + mixed(r, ALNUM, 36),
        "gitlab-pat": lambda r: "glpat-" + mixed(r, ALNUM, 20),
        "slack-token": lambda r: (
            f"xoxb-{chars(r, string.digits, 12)}-{chars(r, string.digits, 12)}-{mixed(r, ALNUM, 24)}"
        ),
        "stripe-key": lambda r: "sk_live_" + mixed(r, ALNUM, 24),
        "google-api-key": lambda r: "AIza" + mixed(r, ALNUM, 35),
        "openai-api-key": lambda r: "sk-proj-" + mixed(r, ALNUM, 48),
        "anthropic-api-key": lambda r: "sk-ant-api03-" + mixed(r, ALNUM, 60),
        "jwt": jwt,
        "private-key": pem,
        "url-password": lambda r: f"postgres://app:{mixed(r, ALNUM, 14)}@db.internal:5432/prod",
        "password-assignment": lambda r: f"DB_{PW.upper()}={mixed(r, ALNUM, 14)}",
    }


def obfuscation_matrix(redactor: Redactor, per_cell: int, seed: int) -> tuple[dict, dict, int]:
    """(caught share per type, caught share per form, raw values left in the floor's output)."""
    by_type: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    by_form: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    raw_left = 0
    rng = random.Random(seed)
    for kind, make in _secret_types().items():
        for form, hide in FORMS.items():
            for _ in range(per_cell):
                value = make(rng)
                hidden = hide(value)
                result = redactor.apply(f"the deploy note says {hidden} so use it")
                caught = bool(result.findings) and hidden not in result.text
                raw_left += value in result.text or hidden in result.text
                for table, key in ((by_type, kind), (by_form, form)):
                    table[key][0] += caught
                    table[key][1] += 1
    return ({k: a / b for k, (a, b) in by_type.items()}, {k: a / b for k, (a, b) in by_form.items()}, raw_left)


def public_recall(redactor: Redactor) -> dict[str, tuple[int, int]]:
    doc = json.loads((ROOT / "tests" / "data" / "secret_cases.json").read_text(encoding="utf-8"))
    out: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for case in doc["cases"]:
        if case["kind"] != "positive":
            continue
        text = "".join(map(chr, case["codes"]))
        out[case["family"]][0] += any(f.category == "credentials" for f in redactor.scan(text))
        out[case["family"]][1] += 1
    return {k: (a, b) for k, (a, b) in sorted(out.items())}


_SENTENCES = (
    "Please contact {} about the renewal.",
    "Kunde: {} (siehe Ticket)",
    "{}",
    "the value on file is {}, confirmed",
)


def pii_recall(redactor: Redactor, per_locale: int, seed: int) -> dict[tuple[str, str], float]:
    from faker import Faker

    kinds = {
        "email": lambda f: f.email(),
        "phone": lambda f: f.phone_number(),
        "iban": lambda f: f.iban(),
        "card": lambda f: f.credit_card_number(),
    }
    out = {}
    for locale in LOCALES:
        fake = Faker(locale)
        fake.seed_instance(seed)
        for kind, make in kinds.items():
            found = 0
            for i in range(per_locale):
                value = make(fake)
                result = redactor.apply(_SENTENCES[i % len(_SENTENCES)].format(value))
                found += bool(result.findings) and value not in result.text
            out[(locale, kind)] = found / per_locale
    return out


def real_text(limit_mb: float) -> dict[str, list[str]]:
    """Real text without secrets: the stdlib's modules, and a site-packages docs/data slice."""
    limit = int(limit_mb * 1e6)
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    site = Path(sysconfig.get_paths()["purelib"])
    sources: dict[str, list[str]] = {"cpython-stdlib": [], "site-packages-docs-data": []}
    size = 0
    for path in sorted(stdlib.rglob("*.py")):
        if {"test", "tests", "idle_test", "site-packages"} & set(path.relative_to(stdlib).parts):
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        sources["cpython-stdlib"].append(text)
        size += len(text.encode())
        if size >= limit:
            break
    size = 0
    docs = sorted(p for pat in ("*.md", "*.rst", "*.txt", "METADATA") for p in site.rglob(pat))
    for path in [*docs, *sorted((site / "botocore" / "data").rglob("service-2.json.gz"))]:
        raw = path.read_bytes()
        text = (gzip.decompress(raw) if path.suffix == ".gz" else raw).decode("utf-8", errors="replace")
        sources["site-packages-docs-data"].append(text)
        size += len(text.encode())
        if size >= limit:
            break
    return sources


def _other_text(measured: list[str], mb: float) -> list[str]:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    seen = set(map(hash, measured))
    out, size = [], 0
    for path in sorted(stdlib.rglob("*.py"), reverse=True):
        text = path.read_text(encoding="utf-8", errors="replace")
        if hash(text) in seen or "test" in path.parts:
            continue
        out.append(text)
        size += len(text)
        if size >= mb * 1e6:
            break
    return out


# E-mail and IP addresses in this text are real addresses (module authors, documented hosts):
# found correctly, so they are reported apart from the false-positive count.
_REAL_ADDRESSES = ("email", "ip-address")


def findings_per_mb(redactor: Redactor, texts: list[str]) -> tuple[float, float, Counter, float]:
    """(findings per MB other than addresses, e-mail and IP findings per MB, types, MB/s)."""
    size = sum(len(t.encode()) for t in texts)
    types: Counter = Counter()
    t0 = time.perf_counter()
    for text in texts:
        for f in redactor.apply(text).findings:
            types[(f.category, f.type)] += 1
    elapsed = time.perf_counter() - t0
    addresses = sum(n for (_, t), n in types.items() if t in _REAL_ADDRESSES)
    other = sum(types.values()) - addresses
    return other / (size / 1e6), addresses / (size / 1e6), types, size / 1e6 / elapsed


def look_alikes(redactor: Redactor, n: int, seed: int) -> tuple[float, Counter]:
    rng = random.Random(seed)
    families: dict[str, Callable[[random.Random], str]] = {
        "iso-timestamp": lambda r: (
            f'token = "2024-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}T{r.randint(0, 23):02d}:00:00Z"'
        ),
        "arn": lambda r: (
            f'secret = "arn:aws:secretsmanager:eu-west-1:{chars(r, string.digits, 12)}:secret:app-{chars(r, ALNUM, 6)}"'
        ),
        "pod-name": lambda r: (
            f'token = "web-{chars(r, "bcdfghjklmnpqrstvwxz2456789", 10)}-{chars(r, "bcdfghjklmnpqrstvwxz2456789", 5)}"'
        ),
        "git-sha": lambda r: f'token = "{chars(r, HEX, 40)}"',
        "short-digest": lambda r: f'"AWS::SecretsManager::Secret": "{chars(r, HEX, 16)}"',
        "uuid": lambda r: (
            f'api_token: "{chars(r, HEX, 8)}-{chars(r, HEX, 4)}-4{chars(r, HEX, 3)}-'
            f'a{chars(r, HEX, 3)}-{chars(r, HEX, 12)}"'
        ),
        "camel-name": lambda r: '"output_token": "' + "".join(w.capitalize() for w in r.sample(_WORDS, 3)) + '"',
        "json-pointer": lambda r: (
            '"secret": "#/definitions/' + "".join(w.capitalize() for w in r.sample(_WORDS, 3)) + '"'
        ),
        "version": lambda r: f"ships 1:{r.randint(1, 9)}.{r.randint(0, 9)}+2015{r.randint(1000, 1299)}-1",
    }
    altered: Counter = Counter()
    total = 0
    for family, make in families.items():
        for _ in range(n):
            text = make(rng)
            total += 1
            if redactor.apply(text).text != text:
                altered[family] += 1
    return sum(altered.values()) / total, altered


_WORDS = [
    "next",
    "page",
    "token",
    "request",
    "bandwidth",
    "network",
    "secret",
    "value",
    "record",
    "policy",
    "stream",
    "bucket",
]


def detect_secrets_mb_s(text: str) -> float:
    from detect_secrets.core.scan import scan_file
    from detect_secrets.settings import default_settings

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "slice.txt")
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
        with default_settings():
            t0 = time.perf_counter()
            list(scan_file(path))
            elapsed = time.perf_counter() - t0
    return len(text.encode()) / 1e6 / elapsed


def _mark(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def run(real_mb: float = 8.0, per_cell: int = 20, per_locale: int = 300, ds_mb: float = 1.0, seed: int = 7) -> int:
    redactor = floor_redactor()
    failed = 0

    def target(ok: bool, line: str) -> None:
        nonlocal failed
        failed += not ok
        print(f"  {_mark(ok)}  {line}")

    print(f"== obfuscation matrix (types x forms, {per_cell} each)")
    by_type, by_form, raw_left = obfuscation_matrix(redactor, per_cell, seed)
    for form, share in sorted(by_form.items(), key=lambda kv: kv[1]):
        print(f"        form {form:<24} {100 * share:6.1f}%")
    for kind, share in sorted(by_type.items()):
        target(share >= 0.99, f"obfuscated {kind:<22} caught {100 * share:6.1f}% (>= 99%)")
    target(raw_left == 0, f"raw values left in the floor's output: {raw_left} (0)")

    print("== public secret-scanner positives (gitleaks rule tests)")
    for family, (found, total) in public_recall(redactor).items():
        target(found / total >= 0.95, f"recall {family:<12} {found}/{total} = {100 * found / total:5.1f}% (>= 95%)")

    print(f"== Faker PII, {per_locale} values per kind and locale")
    for (locale, kind), share in pii_recall(redactor, per_locale, seed).items():
        target(share >= 0.98, f"recall {kind:<6} {locale}  {100 * share:5.1f}% (>= 98%)")

    print("== real text without secrets")
    sources = real_text(real_mb)
    all_texts = [t for texts in sources.values() for t in texts]
    # A gateway's steady state: warm the DFA caches on other real text first (stdlib modules past
    # the measured slice), then measure on text the process has not seen.
    for text in _other_text(sources["cpython-stdlib"], 2.0):
        redactor.apply(text)
    for name, texts in sources.items():
        per_mb, addresses, types, _ = findings_per_mb(redactor, texts)
        size = sum(len(t.encode()) for t in texts) / 1e6
        false = ", ".join(f"{t}={n}" for (_, t), n in types.most_common() if t not in _REAL_ADDRESSES) or "none"
        target(per_mb <= 2.0, f"{name:<24} {size:5.1f} MB: {per_mb:5.2f} false findings/MB (<= 2): {false}")
        real = ", ".join(f"{t}={n}" for (_, t), n in types.items() if t in _REAL_ADDRESSES)
        print(f"        {name:<24} real addresses found: {addresses:5.2f}/MB ({real})")
    rate, altered = look_alikes(redactor, 200, seed)
    target(rate <= 0.01, f"look-alikes altered {100 * rate:4.2f}% (<= 1%) {dict(altered)}")

    print("== throughput on the real text (normalised view and decoding on)")
    _, _, _, mb_s = findings_per_mb(redactor, all_texts)
    target(mb_s >= 60, f"Redactor.apply {mb_s:6.1f} MB/s (>= 60)")
    joined = "\n".join(all_texts)
    ds_slice = joined[: int(ds_mb * 1e6)]
    ds = detect_secrets_mb_s(ds_slice)
    target(mb_s / ds >= 100, f"vs detect-secrets {ds:6.2f} MB/s on a {ds_mb:g} MB slice: {mb_s / ds:6.1f}x (>= 100x)")
    print(f"{failed} target(s) missed" if failed else "every target met")
    return 1 if failed else 0
