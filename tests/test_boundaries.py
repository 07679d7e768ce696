"""The data-boundary detectors, one table per rule (the way gitleaks tests each rule): generated
true positives that must be found, typed, and covered; look-alikes that must not be. Then the
selection API (``resolve_detectors``), the validators, offsets on non-ASCII text, and the scanner's
windowing on long input.

Every secret here is built at run time from a seeded PRNG or by concatenation, so that no secret
scanner flags this file; none is real.
"""

from __future__ import annotations

import ast
import base64
import functools
import hashlib
import json
import random
import string
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import re2
from ruamel.yaml import YAML

from controller.boundaries import (
    CATEGORIES,
    Detector,
    Scanner,
    builtin_detectors,
    compile_pattern,
    iban_valid,
    luhn_valid,
    pattern_detector,
    placeholder,
    re2spans,
    resolve_detectors,
    shannon_entropy,
)
from controller.boundaries import scanner as scanner_module
from tests.fakes.secrets import ALNUM, B64, DASHES, HEX, PW, TOKEN, UPPER27, mixed
from tests.fakes.secrets import chars as s

REPO = Path(__file__).resolve().parent.parent
WORKFLOW = REPO / "workflows" / "internal-docs-qa" / "workflow.yaml"

SEEDS = range(12)


# --- generators: (text, secret) where `secret` must be covered by a finding --------------------


def password(rng: random.Random, n: int = 16) -> str:
    while True:
        value = rng.choice(ALNUM) + s(rng, ALNUM + "!#%*+-.?^_~", n - 1)
        if shannon_entropy(value) >= 3.2 and sum(c.isdigit() for c in value) >= 1:
            return value


def luhn_number(rng: random.Random, prefix: str, length: int) -> str:
    body = prefix + s(rng, string.digits, length - len(prefix) - 1)
    return next(body + d for d in string.digits if luhn_valid(body + d))


def iban(rng: random.Random, country: str = "DE", bban_len: int = 18) -> str:
    bban = s(rng, string.digits, bban_len)
    check = 98 - int("".join(str(int(c, 36)) for c in bban + country + "00")) % 97
    return f"{country}{check:02d}{bban}"


def grouped(value: str, size: int, sep: str) -> str:
    return sep.join(value[i : i + size] for i in range(0, len(value), size))


def b64url(obj: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")


def begin(label: str) -> str:
    return f"{DASHES}BEGIN {label}{DASHES}"


def end(label: str) -> str:
    return f"{DASHES}END {label}{DASHES}"


def pem(rng: random.Random, label: str, lines: int = 6) -> str:
    body = "\n".join(s(rng, B64, 64) for _ in range(lines))
    return f"{begin(label)}\n{body}\n{s(rng, B64, 20)}==\n{end(label)}"


Gen = Callable[[random.Random], tuple[str, str]]


def ctx(before: str, after: str, make: Callable[[random.Random], str]) -> Gen:
    def gen(rng: random.Random) -> tuple[str, str]:
        secret = make(rng)
        return f"{before}{secret}{after}", secret

    return gen


def _ssn(rng: random.Random) -> str:
    area = rng.choice([a for a in range(1, 900) if a != 666])
    return f"{area:03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"


def _mbi(rng: random.Random) -> str:
    letters = "ACDEFGHJKMNPQRTUVWXY"
    return (
        str(rng.randint(1, 9)) + rng.choice(letters) + rng.choice(letters + string.digits)
        + str(rng.randint(0, 9)) + rng.choice(letters) + rng.choice(letters + string.digits)
        + str(rng.randint(0, 9)) + rng.choice(letters) + rng.choice(letters) + f"{rng.randint(0, 99):02d}"
    )  # fmt: skip


@functools.cache
def _rsa_der_b64() -> str:
    """A throwaway RSA key's PKCS#8 body, generated at test time (never committed)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return base64.b64encode(der).decode()


def _key_body(rng: random.Random, sep: str = "\n") -> str:
    body = _rsa_der_b64()
    return sep.join(body[i : i + 64] for i in range(0, len(body), 64))


TRUE_POSITIVES: dict[str, list[Gen]] = {
    "private-key-body": [
        ctx("key:\n", "\n", _key_body),
        ctx('{"key": "', '"}', lambda r: _key_body(r, "\\n")),
        ctx("-- BEGIN RSA PRIVATE KEY --\n", "\n", _key_body),  # a mangled header
    ],
    "aws-bedrock-api-key": [
        ctx("AWS_BEARER_TOKEN_BEDROCK=", "\n", lambda r: "ABSK" + mixed(r, B64, 132)),
        ctx("token ", "\n", lambda r: "bedrock-api-key-YmVkcm9jay5hbWF6b25hd3MuY29t" + mixed(r, B64, 40)),
    ],
    "gitlab-session-cookie": [
        ctx("Cookie: _gitlab_session=", "; path=/", lambda r: s(r, string.ascii_lowercase + string.digits, 32)),
    ],
    "command-line-password": [
        ctx("curl -u elastic:", " https://localhost:9200", lambda r: mixed(r, ALNUM, 10) + "$1"),
        ctx("mysql -u root -p", " appdb", lambda r: mixed(r, ALNUM, 9)),
        ctx("sshpass -p '", "' ssh deploy@host", lambda r: mixed(r, ALNUM, 12)),
        ctx("curl --user admin:", " http://x", lambda r: mixed(r, ALNUM, 12)),
    ],
    "ip-address": [
        ctx("host ", " is down", lambda r: f"10.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(10, 254)}"),
        ctx("from ", ", port 22", lambda r: f"2001:db8:{r.randint(1, 0xffff):x}::{r.randint(1, 0xffff):x}"),
        ctx("peer=", "\n", lambda r: f"fe80::{r.randint(1, 0xffff):x}:{r.randint(1, 0xffff):x}:{r.randint(1, 0xffff):x}:1"),
    ],
    "openssh-private-key": [
        ctx("key:\n", "\n", lambda r: pem(r, "OPENSSH PRIVATE KEY")),
        # Truncated when pasted: header and some body, no footer.
        ctx("", "\n(the rest got cut off)", lambda r: begin("OPENSSH PRIVATE KEY") + "\n" + s(r, B64, 70)),
    ],
    "private-key": [
        ctx("", "", lambda r: pem(r, "RSA PRIVATE KEY")),
        ctx("x = '''", "'''", lambda r: pem(r, "EC PRIVATE KEY", 2)),
        ctx("", "", lambda r: pem(r, "PRIVATE KEY")),
        ctx("", "", lambda r: pem(r, "ENCRYPTED PRIVATE KEY")),
        ctx("", "", lambda r: pem(r, "PGP PRIVATE KEY BLOCK")),
        ctx("", "", lambda r: begin("RSA PRIVATE KEY") + "\nProc-Type: 4,ENCRYPTED\nDEK-Info: "
            "AES-128-CBC," + s(r, "0123456789ABCDEF", 32) + "\n\n" + s(r, B64, 64) + "\n" + end("RSA PRIVATE KEY")),
        # A service-account JSON: newlines are the two characters backslash and n.
        ctx('{"private_key": "', '", "client_email": "svc@proj.iam.example"}',
            lambda r: pem(r, "PRIVATE KEY").replace("\n", "\\n")),
        # Indented in YAML.
        ctx("key: |\n  ", "\n", lambda r: pem(r, "RSA PRIVATE KEY").replace("\n", "\n  ")),
    ],
    "aws-access-key": [
        ctx("aws_access_key_id = ", "\n", lambda r: "AKIA" + s(r, UPPER27, 16)),
        ctx('{"AccessKeyId": "', '"}', lambda r: "ASIA" + s(r, UPPER27, 16)),
        ctx("use key ", " please", lambda r: "AKIA" + s(r, UPPER27, 16)),
    ],
    "aws-secret-key": [
        ctx("aws_secret_access_key = ", "\n", lambda r: mixed(r, B64, 40)),
        ctx('"SecretAccessKey": "', '"', lambda r: mixed(r, B64, 40)),
        ctx("export AWS_SECRET_ACCESS_KEY=", "\n", lambda r: mixed(r, B64, 40)),
        ctx("AKIA" + "EXAMPLE" * 2 + "12,", ",default\n", lambda r: mixed(r, B64, 40)),  # credentials.csv
        ctx("the key is ", " ok", lambda r: mixed(r, B64, 40)),
    ],
    "github-fine-grained-pat": [
        ctx("GITHUB_TOKEN=", "\n", lambda r: "github_pat_" + mixed(r, ALNUM, 22) + "_" + mixed(r, ALNUM, 59)),
    ],
    "github-pat": [
        ctx("GITHUB_TOKEN=", "\n", lambda r: "ghp_" + mixed(r, ALNUM, 36)),
        ctx("git clone https://", "@github.com/org/repo", lambda r: "ghp_" + mixed(r, ALNUM, 36)),
    ],
    "github-oauth": [ctx("token: ", "\n", lambda r: "gho_" + mixed(r, ALNUM, 36))],
    "github-app-token": [
        ctx("token: ", "\n", lambda r: "ghu_" + mixed(r, ALNUM, 36)),
        ctx("token: ", "\n", lambda r: "ghs_" + mixed(r, ALNUM, 36)),
    ],
    "github-refresh-token": [ctx("refresh ", "\n", lambda r: "ghr_" + mixed(r, ALNUM, 36))],
    "gitlab-pat": [ctx("PRIVATE-TOKEN: ", "\n", lambda r: "glpat-" + mixed(r, TOKEN, 20))],
    "gitlab-token": [
        ctx("runner token ", "\n", lambda r: "glrt-" + mixed(r, TOKEN, 20)),
        ctx("deploy ", "\n", lambda r: "gldt-" + mixed(r, TOKEN, 20)),
        ctx("registration ", "\n", lambda r: "GR1348941" + mixed(r, TOKEN, 20)),
    ],
    "slack-webhook": [
        ctx("url: ", "\n", lambda r: "https://hooks.slack.com/services/T" + s(r, UPPER27, 8) + "/B"
            + s(r, UPPER27, 10) + "/" + mixed(r, ALNUM, 24)),
    ],
    "slack-token": [
        ctx("SLACK_BOT_TOKEN=", "\n", lambda r: f"xoxb-{s(r, string.digits, 12)}-{s(r, string.digits, 12)}-{mixed(r, ALNUM, 24)}"),
        ctx("user ", "\n", lambda r: f"xoxp-{s(r, string.digits, 12)}-{s(r, string.digits, 12)}-"
            f"{s(r, string.digits, 13)}-{s(r, HEX, 32)}"),
        ctx("app ", "\n", lambda r: f"xapp-1-A{s(r, UPPER27, 10)}-{s(r, string.digits, 13)}-{s(r, HEX, 64)}"),
    ],
    "stripe-key": [
        ctx("STRIPE_KEY=", "\n", lambda r: "sk_live_" + mixed(r, ALNUM, 24)),
        ctx("key ", "\n", lambda r: "rk_test_" + mixed(r, ALNUM, 24)),
        ctx("signing ", "\n", lambda r: "whsec_" + mixed(r, ALNUM, 32)),
    ],
    "google-api-key": [ctx("?key=", "&q=x", lambda r: "AIza" + mixed(r, TOKEN, 35))],
    "anthropic-api-key": [ctx("ANTHROPIC_API_KEY=", "\n", lambda r: "sk-ant-api03-" + mixed(r, TOKEN, 93) + "AA")],
    "openai-api-key": [
        ctx("OPENAI_API_KEY=", "\n", lambda r: "sk-proj-" + mixed(r, TOKEN, 156)),
        ctx("key ", "\n", lambda r: "sk-" + mixed(r, ALNUM, 20) + "T3BlbkFJ" + mixed(r, ALNUM, 20)),
    ],
    "npm-token": [ctx("//registry.npmjs.org/:_authToken=", "\n", lambda r: "npm_" + mixed(r, ALNUM, 36))],
    "pypi-token": [ctx("password = ", "\n", lambda r: "pypi-AgEIcHlwaS5vcmc" + mixed(r, TOKEN, 150))],
    "jwt": [
        ctx("Authorization: JWT ", "\n", lambda r: b64url({"alg": "HS256", "typ": "JWT"}) + "."
            + b64url({"sub": s(r, ALNUM, 10), "iat": r.randint(10**9, 2 * 10**9)}) + "." + s(r, TOKEN, 43)),
        ctx('"id_token": "', '"', lambda r: b64url({"alg": "none"}) + "." + b64url({"sub": s(r, ALNUM, 12)}) + "."),
    ],
    "url-password": [
        ctx("DATABASE_URL=postgres://app:", "@db.corp.example:5432/prod", password),
        ctx("mongodb+srv://svc:", "@cluster0.example.net/db", password),
        ctx("redis://:", "@cache:6379/0", password),
        ctx("amqp://guest:", "@[::1]:5672", password),
    ],
    "connection-string-password": [
        ctx("Server=tcp:sql.corp.example,1433;Database=app;User Id=svc;Password=", ";Encrypt=True;", password),
        ctx("Data Source=db;Initial Catalog=x;User ID=sa;Password=", "", password),
        ctx('conn = "Driver={ODBC Driver 18};Server=db;UID=svc;PWD=', '"', password),
    ],
    "authorization-header": [
        ctx("Authorization: Bearer ", "\n", lambda r: mixed(r, ALNUM, 40)),
        ctx("curl -H 'authorization: basic ", "'", lambda r: base64.b64encode(
            ("svc:" + password(r)).encode()).decode()),
        ctx('{"Authorization": "Token ', '"}', lambda r: mixed(r, ALNUM, 32)),
    ],
    "generic-secret": [
        ctx('password = "', '"', password),
        ctx("DB_PASSWORD=", "\n", password),
        ctx('"client_secret": "', '"', password),
        ctx("api_key: ", "\n", password),
        ctx("<password>", "</password>", password),
        ctx("mytool --token=", " --verbose", password),
        ctx("SECRET_KEY = '", "'", lambda r: mixed(r, ALNUM, 50)),
    ],
    "iban": [
        ctx("IBAN ", " BIC COBADEFFXXX", lambda r: grouped(iban(r), 4, " ")),
        ctx("account ", ".", iban),
        ctx("to ", "\n", lambda r: iban(r, "FR", 23)),
        ctx("NO ", "\n", lambda r: iban(r, "NO", 11)),
    ],
    "payment-card": [
        ctx("card ", " exp 12/27", lambda r: luhn_number(r, "4", 16)),
        ctx("PAN: ", "\n", lambda r: grouped(luhn_number(r, "5" + str(r.randint(1, 5)), 16), 4, " ")),
        ctx("amex ", ";", lambda r: (lambda n: f"{n[:4]} {n[4:10]} {n[10:]}")(luhn_number(r, "37", 15))),
        ctx("discover ", "\n", lambda r: grouped(luhn_number(r, "6011", 16), 4, "-")),
    ],
    "us-ssn": [ctx("SSN ", " on file", _ssn), ctx("ssn: ", "\n", lambda r: _ssn(r).replace("-", " "))],
    "phone-number": [
        ctx("call ", " today", lambda r: f"+1-{r.randint(201, 989)}-{r.randint(200, 999)}-{r.randint(0, 9999):04d}"),
        ctx("tel: ", "\n", lambda r: f"({r.randint(201, 989)}) {r.randint(200, 999)}-{r.randint(0, 9999):04d}"),
        ctx("mobile ", ".", lambda r: f"+44 20 {r.randint(7000, 8999)} {r.randint(0, 9999):04d}"),
        ctx("bureau ", ",", lambda r: "+33 " + " ".join([str(r.randint(1, 9))] + [f"{r.randint(10, 99)}" for _ in range(4)])),
        ctx("UK ", "\n", lambda r: f"020 {r.randint(7000, 8999)} {r.randint(0, 9999):04d}"),
        ctx("FR ", "\n", lambda r: "0" + str(r.randint(1, 9)) + "".join(f" {r.randint(10, 99)}" for _ in range(4))),
        ctx("DE ", "\n", lambda r: f"+49 30 {r.randint(1000000, 9999999)}"),
        ctx("intl ", "\n", lambda r: f"0044 20 {r.randint(7000, 8999)} {r.randint(0, 9999):04d}"),
    ],
    "us-medicare-id": [
        ctx("Medicare MBI: ", "\n", _mbi),
        ctx("mbi ", " on the claim", lambda r: (lambda m: f"{m[:4]}-{m[4:7]}-{m[7:]}")(_mbi(r))),
    ],
    "email": [
        ctx("contact ", " today", lambda r: f"{r.choice(['jordan', 'ana'])}.{s(r, string.ascii_lowercase, 6)}@customer.example"),
        ctx("<", ">", lambda r: f"{s(r, string.ascii_lowercase, 5)}+tag@mail.{s(r, string.ascii_lowercase, 4)}.co.uk"),
        ctx("mailto:", "?subject=x", lambda r: f"{s(r, string.ascii_lowercase, 8)}@example.org"),
    ],
}  # fmt: skip

# Look-alikes, per rule: the detector alone must find nothing in any of these.
FALSE_POSITIVES: dict[str, list[str]] = {
    "private-key-body": [
        "\n".join(["MIIB" + "A" * 60] * 4),  # base64 lines that are not a key's structure
        "\n".join(["QUJD" * 16] * 3),
    ],
    "aws-bedrock-api-key": ["ABSK" + "short", "bedrock-api-key-" + "x" * 10],
    "gitlab-session-cookie": ["_gitlab_session=" + "a" * 32, "_gitlab_session=short"],
    "command-line-password": ["curl -u $USER:$PASS https://x", "ls -u", "mysql -p", "curl -u user: http://x"],
    "ip-address": ["version 1.2.3.4", "v10.0.0.1", "std::vector", "12:34:56", "1.2.3.4.5", "0.0.0.0", "::"],
    "openssh-private-key": ["-----BEGIN OPENSSH PUBLIC KEY-----", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5 me@host"],
    "private-key": [
        "-----BEGIN PUBLIC KEY-----\n" + "A" * 64 + "\n-----END PUBLIC KEY-----",
        "-----BEGIN CERTIFICATE-----\n" + "B" * 64 + "\n-----END CERTIFICATE-----",
        begin("RSA PRIVATE KEY") + "\n" + end("RSA PRIVATE KEY"),  # empty placeholder
        "Paste your " + begin("RSA PRIVATE KEY") + " block into the vault, not here.",
        "BEGIN " + "RSA PRIVATE KEY",
    ],
    "aws-access-key": [
        "aws_access_key_id = AKIA" + "IOSFODNN7" + "EXAMPLE",  # the documentation key
        "key = AKIA" + "X" * 16,  # low entropy
        "id akia" + "abcdefghijklmnop",  # lowercase
        "AKIA" + "ABCDEFGHIJKLMNO",  # 15 characters
        "XAKIA" + "ABCDEFGHIJKLMNOP",  # glued to a word
        "AKIA" + "ABCDEFGHIJKLMNO0",  # 0 is not in the alphabet
    ],
    "aws-secret-key": [
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCYEXAMPLEKEY",  # documentation key
        "aws_secret_access_key = ${AWS_SECRET_ACCESS_KEY}",
        "commit " + hashlib.sha1(b"a commit").hexdigest(),  # a git SHA
        "ThisIsAVeryLongCamelCaseIdentifierNameX",  # a word, 40 characters
        "digest " + base64.b64encode(bytes(range(7, 39))).decode(),  # 44-char base64 with padding
        "part_of_a_" + mixed(random.Random(7), ALNUM, 40) + "_longer_token",
        "/var/lib/docker/overlay2/abcdef/merged/x/y",
    ],
    "github-fine-grained-pat": ["github_pat_" + "short"],
    "github-pat": ["ghp_" + "Ab1" * 10 + " short", "GITHUB_TOKEN=ghp_" + "x" * 36],
    "github-oauth": ["gho_" + "x" * 36],
    "github-app-token": ["ghs_" + "abc"],
    "github-refresh-token": ["ghr_" + "0" * 36],
    "gitlab-pat": ["glpat-" + "x" * 20, "glpat-" + "Ab1" * 6],
    "gitlab-token": ["glrt-" + "short", "my-glrt-notes"],
    "slack-webhook": [
        "https://hooks.slack.com/services/T00000000/B00000000/" + "X" * 24,  # Slack's documentation
        "see hooks.slack.com/services/ for details",
    ],
    "slack-token": ["xoxo-hugs and kisses", "xoxb-123", "xoxb-" + "1" * 10 + "-" + "x" * 12],
    "stripe-key": ["pk_live_" + "Ab1" * 8, "sk_test_123", "sk_live_" + "x" * 24],
    "google-api-key": ["AIza" + "Ab1" * 11],
    "anthropic-api-key": ["sk-ant-" + "short", "sk-ant-api03-" + "x" * 40],
    "openai-api-key": ["sk-" + "1234567890", "task-proj-" + "x" * 50, "sk-proj-" + "short"],
    "npm-token": ["npm_" + "Ab1" * 11 + "x", "npm_config_cache=/tmp"],
    "pypi-token": ["pypi-AgEIcHlwaS5vcmc" + "Ab1" * 5],
    "jwt": [
        "eyJhbGciOiJIUzI1NiJ9",  # a header alone
        "eyJ" + "notJSONatall12345" + ".eyJ" + "alsonotjson12345" + ".sig",
        "eyJzzz.eyJzzz",
    ],
    "url-password": [
        "https://alice@git.corp.example/repo.git",
        "postgres://app:${DB_PASSWORD}@db/prod",
        "redis://:password@localhost:6379",
        "amqp://guest:****@mq:5672",
        "https://docs.corp.example:8443/path?a=b",
        "postgres://app:{{ db_password }}@db/prod",
    ],
    "connection-string-password": [
        "Server=db;Database=app;Password=${DB_PASSWORD};",
        "Server=db;Integrated Security=true;",
        "Password=hunter2hunter2",  # no connection-string context
        "Server=db;Password=<your-password>;",
    ],
    "authorization-header": [
        "Authorization: Bearer <token>",
        "Authorization: Bearer ${API_TOKEN}",
        "Authorization: Bearer $TOKEN",
        "authorization: basic",
    ],
    "generic-secret": [
        "password = get_password()",
        "password: ${DB_PASSWORD}",
        "token: {{ vault_token }}",
        "api_key = os.environ['API_KEY']",
        "secret_key = settings.SECRET_KEY",
        "max_tokens: 40960000",
        "token_count = 12345678",
        "password_file: /etc/app/password.txt",
        PW + ' = "changeme"',
        "password=<your-password>",
        "token=xxxxxxxxxxxxxxxx",
        '"token_type": "bearer_token"',
        PW + " = 'short'",
        "secret: REDACTED_BY_OPS",
        "session_key = 550e8400-e29b-41d4-a716-446655440000",
        "api_key: v1.2.3-beta",
        "token: self.access_token",
        "password = None",
    ],
    "iban": ["DE00 3704 0044 0532 0130 00", "GB82 WEST", "DE89 3704 0044 0532 0130 01".replace(" ", ""),
             "XX89 3704 0044 0532 0130 00".replace(" ", "")],
    "payment-card": [
        "4111 1111 1111 1112",  # bad Luhn
        "0000 0000 0000 0000",
        "1234567812345670",  # Luhn-valid, no card issuer starts with 1
        "ts 1699999999999",
        "4111-1111 1111-1111",  # mixed separators
    ],
    "us-ssn": ["000-12-3456", "666-12-3456", "912-12-3456", "123-00-4567", "123-45-0000", "078-05-1120",
               "2024-05-06", "12-345-6789"],  # fmt: skip
    "phone-number": [
        "2024-05-06", "05/06/2024", "06.05.2024 12:30", "12:30:45", "v1.2.3", "192.168.1.10",
        "555-0100", "0044123456789", "ORD-2024-000123", "ext. 123-4567", "$1,234.56",
        "1 2 3 4 5 6 7 8", "+1 day",
    ],
    "us-medicare-id": ["id 1EG4TE5MK73 without context", "Medicare MBI: 1SG4TE5MK73", "MBI: 0EG4TE5MK73"],
    "email": ["user@localhost", "@mention", "icon@2x.png", "git@github.com:org/repo.git", "name at example dot com"],
}  # fmt: skip

# Text that must produce no finding at all, with every builtin.
BENIGN = [
    "How do I request production access?",
    "What is the on-call escalation policy?",
    "Why does `deployctl rollout` fail with 'lock held by another release'?",
    "2024-05-06T12:30:45.123Z INFO api-svc path=/api/v2/users status=200 took=123ms pid=4321",
    "request_id=550e8400-e29b-41d4-a716-446655440000 commit 3f786850e387550fdab836ed7e6dc881de23001b",
    "def get_password(request, limit=10):\n    return store.fetch('password', limit=limit)\n",
    '{"name": "deploy", "count": 1234567, "ratio": 0.5, "version": "1.2.3"}',
    "## Release 2.3.0\n\n- see [the guide](https://handbook.corp.example/deploy)\n",
    "password: ${DB_PASSWORD}\ntoken: {{ vault_token }}\nsecret_key = settings.SECRET_KEY",
    "Call the service desk on ext. 4321 between 09:00 and 17:00.",
]


def detector(detector_id: str) -> Detector:
    return next(d for d in builtin_detectors() if d.id == detector_id)


def hits(detectors: tuple[Detector, ...] | list[Detector], text: str) -> list[tuple[str, int, int]]:
    return [(h.detector.id, h.start, h.end) for h in Scanner(detectors).scan(text)]


ALL = builtin_detectors()


# --- the tables -------------------------------------------------------------------------------


def test_every_builtin_has_a_table() -> None:
    ids = {d.id for d in ALL}
    assert ids == set(TRUE_POSITIVES) == set(FALSE_POSITIVES)


@pytest.mark.parametrize("detector_id", sorted(TRUE_POSITIVES))
def test_true_positives_are_found_alone_and_typed_among_all(detector_id: str) -> None:
    alone = Scanner([detector(detector_id)])
    everything = Scanner(ALL)
    for gen in TRUE_POSITIVES[detector_id]:
        for seed in SEEDS:
            text, secret = gen(random.Random(seed))
            start = text.index(secret)
            end = start + len(secret)
            found = [(h.start, h.end) for h in alone.scan(text)]
            assert any(s <= start and e >= end for s, e in found), (detector_id, text, found)
            # Among every builtin, the finding covering it carries this detector's type.
            covering = [h.detector.id for h in everything.scan(text) if h.start <= start and h.end >= end]
            assert detector_id in covering, (detector_id, text, covering)


@pytest.mark.parametrize("detector_id", sorted(FALSE_POSITIVES))
def test_false_positives_are_left_alone(detector_id: str) -> None:
    for text in FALSE_POSITIVES[detector_id]:
        assert hits([detector(detector_id)], text) == [], (detector_id, text)


@pytest.mark.parametrize("text", BENIGN)
def test_benign_text_has_no_finding(text: str) -> None:
    assert hits(ALL, text) == []


# --- detector definitions ---------------------------------------------------------------------


def test_builtins_are_well_formed() -> None:
    re2_type = type(re2.compile("x"))
    for det in ALL:
        assert det.id.replace("-", "").isalnum() and det.id == det.id.lower(), det.id
        assert det.category in CATEGORIES
        assert isinstance(det.pattern, re2_type)
        assert det.description
        assert det.ref == f"builtin:{det.id}"
        assert all(k == k.lower() for k in det.keywords)
    assert len({d.id for d in ALL}) == len(ALL), "ids are unique: callers dedupe by id"


@pytest.mark.parametrize("detector_id", sorted(TRUE_POSITIVES))
def test_keywords_start_every_match_and_locators_find_every_start(detector_id: str) -> None:
    det = detector(detector_id)
    locator = compile_pattern(det.locator) if det.locator else det.pattern
    for gen in TRUE_POSITIVES[detector_id]:
        text, _ = gen(random.Random(1))
        data = text.encode()
        m = det.pattern.search(data)
        assert m is not None
        if det.keywords:
            assert data[m.start() :].lower().startswith(tuple(k.encode() for k in det.keywords))
        assert locator.match(data, m.start()) is not None


def test_no_builtin_matches_a_redaction_placeholder() -> None:
    ids = [d.id for d in ALL] + ["incident-id", "x"]
    for i in ids:
        token = placeholder(i)
        for text in (token, f"password={token}", f"postgres://u:{token}@db/x", f"Authorization: Bearer {token}",
                     f"{token}{token}", f"a {token}\n", f"Server=x;Password={token};", f"<password>{token}</password>"):  # fmt: skip
            assert hits(ALL, text) == [], text


def test_engine_modules_never_import_stdlib_re() -> None:
    for path in sorted((REPO / "controller" / "boundaries").glob("*.py")):
        name = path.name
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                assert all(a.name != "re" for a in node.names), name
            if isinstance(node, ast.ImportFrom):
                assert node.module != "re", name


# --- validators -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [("", 0.0), ("aaaa", 0.0), ("ab", 1.0), ("abcd", 2.0), ("abcdefgh", 3.0), ("a" * 300 + "b" * 300, 1.0)],
)
def test_shannon_entropy(value: str, expected: float) -> None:
    assert shannon_entropy(value) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("digits", "valid"),
    [
        ("4111111111111111", True),
        ("4111111111111112", False),
        ("79927398713", True),
        ("", False),
        ("4111 1111", False),
        ("４１１１", False),
    ],  # fmt: skip
)
def test_luhn(digits: str, valid: bool) -> None:
    assert luhn_valid(digits) is valid


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("DE89 3704 0044 0532 0130 00", True),
        ("GB82WEST12345698765432", True),
        ("NO9386011117947", True),
        ("DE89 3704 0044 0532 0130 01", False),
        ("DE89 3704 0044 0532 0130 0".replace(" ", ""), False),
        ("ZZ89370400440532013000", False),
        ("DE89 3704 0044 0532 0130 0!", False),
    ],  # fmt: skip
)
def test_iban_valid(value: str, valid: bool) -> None:
    assert iban_valid(value) is valid


def test_iban_followed_by_more_groups_is_trimmed_to_its_country_length() -> None:
    text = "IBAN DE89 3704 0044 0532 0130 00 BIC COBADEFFXXX"
    (found,) = hits([detector("iban")], text)
    assert text[found[1] : found[2]] == "DE89 3704 0044 0532 0130 00"


def test_phone_number_followed_by_another_number_is_trimmed() -> None:
    text = "call +44 20 7946 0958 1234 5678 now"
    (found,) = hits([detector("phone-number")], text)
    assert text[found[1] : found[2]] == "+44 20 7946 0958"  # the whole groups within 15 digits


# --- selection --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    """Shaped like spec.PatternSpec (attributes), which resolve_detectors must accept."""

    id: str
    category: str
    regex: str
    description: str = "a test pattern"


def test_resolve_a_category_an_id_and_a_pattern() -> None:
    creds = resolve_detectors(["builtin:credentials"])
    assert {d.category for d in creds} == {"credentials"}
    assert [d.id for d in creds] == [d.id for d in ALL if d.category == "credentials"]
    assert [d.id for d in resolve_detectors(["builtin:email"])] == ["email"]
    (det,) = resolve_detectors(
        ["pattern:incident-id"], [Spec("incident-id", "incident-details", r"\bINC-[0-9]{4,7}\b")]
    )
    assert (det.id, det.category, det.source, det.ref) == (
        "incident-id",
        "incident-details",
        "pattern",
        "pattern:incident-id",
    )
    assert hits([det], "see INC-20431 now") == [("incident-id", 4, 13)]


def test_resolve_orders_builtins_by_specificity_then_patterns_and_drops_duplicates() -> None:
    specs = [{"id": "p", "category": "regulated-data", "regex": "MRN-[0-9]{7}", "description": "x"}]
    got = resolve_detectors(
        ["pattern:p", "builtin:email", "builtin:customer-data", "builtin:aws-access-key", "pattern:p"], specs
    )
    ids = [d.id for d in got]
    assert ids[-1] == "p" and ids.count("p") == 1 and ids.count("email") == 1
    assert ids[:-1] == [d.id for d in ALL if d.id == "aws-access-key" or d.category == "customer-data"]


def test_regulated_data_builtin_category_resolves() -> None:
    assert [d.id for d in resolve_detectors(["builtin:regulated-data"])] == ["us-medicare-id"]


@pytest.mark.parametrize(
    ("ref", "needle"),
    [
        ("builtin:no-such-detector", "no-such-detector"),
        ("pattern:missing", "missing"),
        ("email", "email"),
        ("regex:x", "regex:x"),
        ("builtin:", "builtin:"),
    ],  # fmt: skip
)
def test_unknown_refs_are_named(ref: str, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        resolve_detectors([ref], [])


@pytest.mark.parametrize(
    ("regex", "needle"),
    [
        (r"(?<=x)INC", "RE2"),
        (r"(a)\1", "RE2"),
        (r"[", "RE2"),
        (r"a{2000}", "RE2"),
        (r"x*", "empty string"),
        (r"\b", "empty string"),
        (r"REDACTED", "placeholder"),
        (r"\[", "placeholder"),
    ],  # fmt: skip
)
def test_bad_patterns_raise_value_error_naming_the_pattern(regex: str, needle: str) -> None:
    with pytest.raises(ValueError, match=needle) as info:
        resolve_detectors(["pattern:bad-one"], [Spec("bad-one", "incident-details", regex)])
    assert "bad-one" in str(info.value)


def test_pattern_category_may_be_an_enum_and_must_be_known() -> None:
    from enum import StrEnum

    class Category(StrEnum):
        INCIDENT = "incident-details"

    assert pattern_detector(Spec("i", Category.INCIDENT, "INC-1")).category == "incident-details"  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="category"):
        pattern_detector(Spec("i", "gossip", "INC-1"))


def test_the_shipped_workflow_resolves_and_its_patterns_match_its_examples() -> None:
    doc = YAML(typ="safe").load(WORKFLOW.read_text(encoding="utf-8"))["data_boundaries"]
    for forbidden in doc["forbidden"]:
        detectors = resolve_detectors(forbidden["detectors"], doc["patterns"])
        assert detectors, forbidden["category"]
        assert {d.category for d in detectors} <= {forbidden["category"]}
    patterns = {p["id"]: pattern_detector(p) for p in doc["patterns"]}
    assert hits([patterns["incident-id"]], "INC-20431: timeline")[0][0] == "incident-id"
    assert hits([patterns["financial-codename"]], "Project BLUEHERON Q3")[0][0] == "financial-codename"
    assert hits([patterns["medical-record-number"]], "record MRN-0042137")[0][0] == "medical-record-number"
    assert hits([patterns["export-licence"]], "licence EL-2024-00931")[0][0] == "export-licence"


# --- offsets and long input -------------------------------------------------------------------


def test_offsets_are_str_indices_on_non_ascii_text() -> None:
    key = "AKIA" + s(random.Random(3), UPPER27, 16)
    email = "ana.lima@customer.example"
    text = f"clé € 😀 naïve {key} — 日本語 {email} \udcff fin"
    found = hits(ALL, text)
    start = text.index(key)
    assert ("aws-access-key", start, start + len(key)) in found
    start = text.index(email)
    assert ("email", start, start + len(email)) in found


def test_secrets_across_search_window_boundaries_are_found() -> None:
    rng = random.Random(9)
    filler = "lorem ipsum dolor sit amet " * 6000  # about 160 KB, one line
    secrets = []
    text = filler
    for offset in (scanner_module._WINDOW - 30, scanner_module._WINDOW - scanner_module._LOCATOR_SPAN - 5, 2 * scanner_module._WINDOW):
        key = "ghp_" + mixed(rng, ALNUM, 36)
        secrets.append(key)
        text = text[:offset] + " " + key + " " + text[offset:]
    found = hits(ALL, text)
    for key in secrets:
        start = text.index(key)
        assert ("github-pat", start, start + len(key)) in found


def test_an_unbounded_bundle_pattern_on_a_hostile_run_completes() -> None:
    det = pattern_detector(Spec("ticket", "incident-details", r"[A-Z]+-[0-9]+"))
    text = "A" * 200_000 + "-1"
    found = hits([det], text)
    assert found and found[-1][2] == len(text)  # a match ending at "-1", however long the run


def test_scan_survives_lone_surrogates_and_controls() -> None:
    text = "\ud800\x00\x1b[31m AKIA" + "ABCDEFGHIJKLMNOP" + "\udfff"
    assert isinstance(hits(ALL, text), list)


def test_the_public_re2_api_finds_the_same_hits(monkeypatch: pytest.MonkeyPatch) -> None:
    """The scanner calls google-re2's binding directly when it can; the public-API fallback must
    agree with it."""
    rng = random.Random(5)
    text = " | ".join(gen(rng)[0] for gens in TRUE_POSITIVES.values() for gen in gens) + " é " * 3
    fast = sorted(hits(ALL, text))
    assert len(fast) > 50

    def public(regex: object) -> tuple:
        return (
            re2spans._public_matcher(regex.search, regex.groups),  # type: ignore[attr-defined]
            re2spans._public_matcher(regex.match, regex.groups),  # type: ignore[attr-defined]
        )

    monkeypatch.setattr(scanner_module, "_raw_matchers", public)
    assert sorted(hits(ALL, text)) == fast
