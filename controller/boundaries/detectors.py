"""The data-boundary detectors: what a credential, customer data or a bundle-declared record looks
like, and the scanner that finds them in untrusted text.

Everything here runs on hostile input (prompts, retrieved context, model output, raw invocation
logs), so every pattern is compiled with google-re2, whose matching time is linear in the input:
no stdlib ``re`` ever runs on user text.

How a scan works, and why it is fast and linear:

- Every detector has a *locator*: the literal or keyword its matches start with (``ghp_``,
  ``-----BEGIN``, ``password=``), or the pattern itself when it has none (e-mail addresses, digit
  shapes). Locators are compiled into a few RE2 alternations (``Detector.automaton``); one DFA pass
  per alternation finds the next place where any locator matches. Searching again from the next
  character (not from the end of the match) enumerates every candidate start, so a weak match can
  never hide a stronger one that starts inside it.
- At each candidate start, the detectors whose first byte and keywords fit are matched there,
  anchored, each with its own small program, in specificity order, and confirmed: the validator
  (Luhn, mod-97, Shannon entropy, a decodable JWT header...) and the allowlist (documented example
  keys, ``${VAR}`` and ``{{ }}`` placeholders, UUIDs, git SHAs, version strings).
- The text is encoded to UTF-8 once and RE2 runs on those bytes with ``pos``/``endpos`` (the
  binding's ``str`` path re-encodes the whole text on every call); offsets are mapped back to
  ``str`` indices.
- Work is bounded per candidate: a search looks at most 64 KiB ahead, a confirmation reads at most
  64 KiB, and builtin repetitions are bounded wherever a pattern's start could recur inside its
  own match. A scan stays linear on adversarial input, bundle patterns included
  (``benchmarks/redaction.py`` measures the doubling ratio of every pattern).

Overlap resolution, actions and the ``[REDACTED:<id>]`` placeholders live in ``redaction.py``.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import re2

__all__ = [
    "CATEGORIES",
    "PLACEHOLDER_PREFIX",
    "Detector",
    "Hit",
    "Scanner",
    "builtin_detectors",
    "bundle_detectors",
    "compile_pattern",
    "iban_valid",
    "luhn_valid",
    "pattern_detector",
    "placeholder",
    "resolve_detectors",
    "shannon_entropy",
]

CATEGORIES = (
    "credentials",
    "customer-data",
    "incident-details",
    "unreleased-financials",
    "regulated-data",
)

PLACEHOLDER_PREFIX = "[REDACTED:"

# Validators see the candidate value (the secret group) and the whole match (for context such as
# the key name of an assignment) and return how many leading characters of the value are the
# finding: 0 rejects, len(value) accepts it whole, anything between trims a greedy over-match
# (an IBAN followed by a BIC, a phone number followed by another number).
Validator = Callable[[str, str], int]

_UTF8_CONTINUATION = bytes(range(0x80, 0xC0))
_AUTOMATON_MAX_MEM = 32 << 20  # RE2 program + DFA cache per combined automaton
_SHARED_PROGRAM_SIZE = 200  # a bundle pattern this small (RE2 instructions) joins the main pass


def compile_pattern(regex: str, *, max_mem: int | None = None, never_capture: bool = False) -> Any:
    """Compile with google-re2 (UTF-8, Perl syntax, quiet); ``re2.error`` if RE2 rejects it."""
    options = re2.Options()
    options.log_errors = False
    options.never_capture = never_capture
    if max_mem is not None:
        options.max_mem = max_mem
    return re2.compile(regex, options)


def placeholder(detector_id: str) -> str:
    """The typed placeholder a finding of ``detector_id`` is replaced with."""
    return f"{PLACEHOLDER_PREFIX}{detector_id}]"


def _re2_message(exc: Exception) -> str:
    message = exc.args[0] if exc.args else exc
    if isinstance(message, bytes):
        return message.decode("utf-8", "replace")
    return str(message)


# --- validators -------------------------------------------------------------------------------


_C_LOG2_C = tuple(c * math.log2(c) if c else 0.0 for c in range(257))


def shannon_entropy(value: str) -> float:
    """Shannon entropy in bits per character of ``value`` (0.0 for the empty string)."""
    n = len(value)
    if n == 0:
        return 0.0
    if n > 256:
        return math.log2(n) - sum(c * math.log2(c) for c in Counter(value).values()) / n
    # H = log2(n) - sum(c log2 c) / n, with c log2 c from a table: this runs once per candidate.
    return math.log2(n) - sum(map(_C_LOG2_C.__getitem__, map(value.count, set(value)))) / n


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) checksum of a payment card number; ``digits`` holds digits only."""
    if not digits.isdigit() or not digits.isascii():
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


# ISO 13616 lengths per country (SWIFT IBAN registry).
_IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27,
    "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27,
    "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HN": 28, "HR": 21, "HU": 28,
    "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28,
    "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22,
    "MK": 19, "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23,
    "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24,
    "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}  # fmt: skip


def iban_valid(iban: str) -> bool:
    """Country length and the ISO 7064 mod-97 check of an IBAN (spaces ignored)."""
    compact = iban.replace(" ", "")
    if not compact.isascii() or not compact.isalnum():
        return False
    compact = compact.upper()
    if _IBAN_LENGTHS.get(compact[:2]) != len(compact) or not compact[2:4].isdigit():
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


def _accept(predicate: Callable[[str], bool]) -> Validator:
    def validator(value: str, match: str) -> int:
        return len(value) if predicate(value) else 0

    return validator


def _classes(value: str) -> int:
    """How many of lower, upper, digit, other a value uses."""
    lower = upper = digit = other = 0
    for ch in value:
        if ch.islower():
            lower = 1
        elif ch.isupper():
            upper = 1
        elif ch.isdigit():
            digit = 1
        else:
            other = 1
    return lower + upper + digit + other


def _min_entropy(bits: float) -> Validator:
    return _accept(lambda value: shannon_entropy(value) >= bits)


def _aws_access_key(value: str, match: str) -> int:
    # Random keys (32 symbols) fall under 2.7 bits about once in 10^5; AKIA and 16 X is 1.0.
    return len(value) if shannon_entropy(value) >= 2.5 else 0


def _aws_secret_key(value: str, match: str) -> int:
    if match[:1].isalnum() and not match.startswith(value):  # aws_secret_access_key = ...
        return len(value) if shannon_entropy(value) >= 3.0 and _classes(value) >= 2 else 0
    # On its own, a 40-character base64 run is only a secret key if it looks random: both
    # cases, some digit or symbol, and high entropy. Hex (git SHAs), words and paths do not.
    has_lower = any(c.islower() for c in value)
    has_upper = any(c.isupper() for c in value)
    has_other = any(c.isdigit() or c in "/+" for c in value)
    if not (has_lower and has_upper and has_other) or value.count("/") > 4:
        return 0
    return len(value) if shannon_entropy(value) >= 4.2 else 0


def _jwt(value: str, match: str) -> int:
    header = value.split(".", 1)[0]
    try:
        decoded = base64.urlsafe_b64decode(header + "=" * (-len(header) % 4))
        parsed = json.loads(decoded)
    except (binascii.Error, ValueError):
        return 0
    return len(value) if isinstance(parsed, dict) else 0


_CARD_PREFIXES = (
    ("4",),  # Visa
    tuple(str(p) for p in range(51, 56)) + tuple(str(p) for p in range(2221, 2721)),  # Mastercard
    ("34", "37"),  # Amex
    ("6011", "65") + tuple(str(p) for p in range(644, 650)),  # Discover
    tuple(str(p) for p in range(3528, 3590)),  # JCB
    ("36", "38", "39") + tuple(str(p) for p in range(300, 306)),  # Diners
    ("62", "81"),  # UnionPay
    ("50",) + tuple(str(p) for p in range(56, 70)),  # Maestro
)
_CARD_PREFIX_SET = frozenset(p for group in _CARD_PREFIXES for p in group)


def _payment_card(value: str, match: str) -> int:
    digits = value.replace(" ", "").replace("-", "")
    if not 13 <= len(digits) <= 19 or len(set(digits)) < 2:
        return 0
    if not any(digits[:k] in _CARD_PREFIX_SET for k in (1, 2, 3, 4)):
        return 0
    if (" " in value) + ("-" in value) > 1:  # mixed separators: not a printed card number
        return 0
    return len(value) if luhn_valid(digits) else 0


def _us_ssn(value: str, match: str) -> int:
    digits = value.replace("-", "").replace(" ", "")
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    if area in ("000", "666") or area[0] == "9" or group == "00" or serial == "0000":
        return 0
    return len(value)


def _iban(value: str, match: str) -> int:
    # The pattern is greedy over 4-character groups; trim to the country's length before checking,
    # so "DE89 3704 0044 0532 0130 00 BIC COBADEFF" still yields the IBAN.
    length = _IBAN_LENGTHS.get(value[:2])
    if length is None:
        return 0
    seen = 0
    for i, ch in enumerate(value):
        if ch != " ":
            seen += 1
            if seen == length:
                return i + 1 if iban_valid(value[: i + 1]) else 0
    return 0


def _phone(value: str, match: str) -> int:
    # International numbers: 8-15 digits (E.164). National numbers with a trunk 0: 9-11, one kind
    # of separator ("06.05.2024 12:30" is a date and a time). North American numbers without +1:
    # exactly 10. A greedy match that ran into the next number is cut back to the last whole
    # group within the limit.
    if value.startswith("00") and not any(c in value for c in " .-()"):
        return 0  # 0044... without any separator is more often an id than a phone number
    international = value.startswith(("+", "00"))
    national_trunk = not international and value.lstrip("(").startswith("0")
    if national_trunk and len({c for c in value if not c.isdigit()}) > 1:
        return 0
    low, high = (8, 15) if international else (9, 11) if national_trunk else (10, 10)
    digits = 0
    best = 0
    best_digits = 0
    for i, ch in enumerate(value):
        if ch.isdigit():
            digits += 1
            if digits > high:
                break
            if i + 1 == len(value) or not value[i + 1].isdigit():
                best, best_digits = i + 1, digits
    if best_digits < low:
        return 0
    if len({c for c in value[:best] if c.isdigit()}) < 3:
        return 0
    return best


_GENERIC_KEY_SUFFIXES = (
    "count", "type", "name", "names", "file", "path", "dir", "len", "length", "size", "limit",
    "max", "min", "ttl", "timeout", "expiry", "expires", "expiration", "format", "field", "header",
    "param", "policy", "prefix", "endpoint", "uri", "url", "id", "ids", "index", "env", "var",
    "mode", "hint", "label", "version", "kind", "enabled", "required", "regex", "pattern",
    "reset", "manager", "store", "provider", "usage", "tokens", "secrets", "keys",
)  # fmt: skip


def _key_name(match: str) -> str:
    for i, ch in enumerate(match):
        if ch in "=:>\"' \t":
            return match[:i].lower()
    return match.lower()


def _generic_secret(value: str, match: str) -> int:
    # The key is the element name of <password>value</password>, else what precedes the '='.
    key = match[1 : match.find(">")].lower() if match.startswith("<") else _key_name(match)
    if match.endswith("(") and value.replace("_", "").replace(".", "").isalpha():
        return 0  # password = getPassword(: code, not a value
    last = key.replace("-", "_").replace(".", "_").rsplit("_", 1)[-1]
    if last in _GENERIC_KEY_SUFFIXES or key.endswith(("tokens", "secrets")):
        return 0
    if value.isdigit() or _classes(value) < 2:
        return 0
    bits = shannon_entropy(value)
    return len(value) if bits >= 3.0 and (len(value) < 24 or bits >= 3.5) else 0


def _slack_webhook(value: str, match: str) -> int:
    # The documentation example ends in XXXXXXXXXXXXXXXXXXXXXXXX: judge the last path segment.
    return len(value) if shannon_entropy(value.rsplit("/", 1)[-1]) >= 3.0 else 0


def _nonempty(value: str, match: str) -> int:
    return len(value)


# --- allowlists -------------------------------------------------------------------------------

# Values that are placeholders, references or identifiers rather than secrets. Matched with
# ``search`` against the (trimmed) value; anchored where the whole value must look like that.
_REFERENCE_ALLOW = (
    r"^\$\{[^}]*\}?$",  # ${VAR}
    r"^\$[A-Za-z_][A-Za-z0-9_]*$",  # $VAR
    r"^%[A-Za-z_][A-Za-z0-9_]*%$",  # %VAR%
    r"\{\{|\}\}|\{%|%\}",  # {{ template }}
    r"^<[^>]*>$",  # <your-token>
)
_PLACEHOLDER_ALLOW = (
    *_REFERENCE_ALLOW,
    r"^\*+$|^x{4,}$|^X{4,}$|^\.{3,}$|^#+$|^-+$|^_+$|^0+$",  # masks
    r"(?i)^(?:changeme|change_me|changeit|password|passwd|secret|token|example|sample|dummy|"
    r"placeholder|redacted|none|null|nil|undefined|true|false|yes|no|test|testing|"
    r"(?:your|my|some|fake|dummy|example|test)[_-][\w-]*|foo|bar|baz|qux|hunter2)$",
    r"(?i)^(?:os\.environ|process\.env|env\.|secrets\.|vars\.|settings\.|config\.|self\.|this\.)",
    # settings.SECRET_KEY, self.password, process.env.TOKEN: a lowercase object, then names
    r"^[a-z_][a-z0-9_]*(?:\.(?:[a-z_][a-z0-9_]*|[A-Z][A-Z0-9_]*|[a-z]+[A-Z][A-Za-z0-9]*))+$",
    r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+$",  # AN_ENV_VAR_NAME
    r"^[a-z]+(?:_[a-z0-9]+)+$",  # a_snake_case_identifier
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",  # UUID
    r"^v?[0-9]+(?:\.[0-9]+){1,3}(?:[-+.][0-9A-Za-z.-]+)?$",  # version string
    r"^(?:[A-Za-z][A-Za-z0-9+.-]*:)?//|^[~.]?/|^[A-Za-z]:\\",  # URL or file path
    r"(?i)^(?:sha\d*|md5)?:?[0-9a-f]{7,12}$",  # short git SHA / digest prefix
)
_EXAMPLE_KEYS = (r"EXAMPLE$", r"EXAMPLEKEY$")  # the AWS documentation's example keys end so
_HEX_ALLOW = r"^[0-9a-f]{40}$|^[0-9A-F]{40}$"  # a git SHA-1 is not an AWS secret key
_URL_PASSWORD_ALLOW = (
    r"(?i)^(?:pass|password|passwd|pwd|secret|pw|\*+|x+|\.\.\.|<[^>]*>|\$\{[^}]*\}|\{\{.*\}\}"
    r"|\$[A-Za-z_][A-Za-z0-9_]*|%s|%\([a-z_]+\)s|:?password:?)$"
)


def _allow(*regexes: str) -> Any:
    return compile_pattern("|".join(f"(?:{r})" for r in regexes)) if regexes else None


# --- the builtin detectors --------------------------------------------------------------------


@dataclass(frozen=True)
class Detector:
    """One kind of forbidden input.

    ``id`` is the finding type written to audit records and placeholders (kebab-case, unique
    among builtins: one detector covers every form of its kind, and callers dedupe by id).
    ``pattern`` is compiled with google-re2; ``secret_group`` is the capturing group that is the
    value (0: the whole match), or a tuple of groups of which the first that took part is.

    ``keywords`` are lowercase literals one of which every match starts with (gitleaks'
    keywords, anchored): a cheap pre-filter before the pattern runs. ``locator`` is an RE2
    source that matches at least where every match starts (a prefix such as ``ghp_``); the
    scanner searches for locators and confirms each candidate with ``pattern``; empty means the
    pattern is its own locator. ``validator`` and ``allowlist`` (RE2, searched in the value:
    documented example keys, placeholders) confirm a candidate. ``source`` is ``builtin`` or
    ``pattern`` (declared by the bundle); ``automaton`` names the scanner pass it joins.
    """

    id: str
    category: str
    pattern: Any
    description: str = ""
    secret_group: int | tuple[int, ...] = 0
    validator: Validator | None = None
    keywords: tuple[str, ...] = ()
    allowlist: Any = None
    locator: str = ""
    source: str = "builtin"
    automaton: str = "main"

    @property
    def ref(self) -> str:
        return f"{'builtin' if self.source == 'builtin' else 'pattern'}:{self.id}"

    def accept(self, value: str, match: str) -> int:
        """How many leading characters of ``value`` are a finding (0: not a finding)."""
        keep = self.validator(value, match) if self.validator is not None else len(value)
        if keep <= 0:
            return 0
        if self.allowlist is not None and self.allowlist.search(value[:keep]) is not None:
            return 0
        return keep


def _d(
    id: str,
    category: str,
    regex: str,
    description: str,
    *,
    group: int | tuple[int, ...] = 0,
    validator: Validator | None = None,
    keywords: Sequence[str] = (),
    allow: Sequence[str] = (),
    locate: str = "",
    automaton: str = "main",
) -> Detector:
    return Detector(
        id=id,
        category=category,
        pattern=compile_pattern(regex),
        description=description,
        secret_group=group,
        validator=validator,
        keywords=tuple(keywords),
        allowlist=_allow(*allow),
        locator=locate,
        automaton=automaton,
    )


def _ascii_class(exclude: str) -> str:
    """A positive character class of printable ASCII minus ``exclude``, written as ranges.

    Positive ASCII classes compile to a handful of RE2 instructions; a negated class in UTF-8 mode
    expands to every multi-byte sequence, which inside a counted repetition bloats the automaton.
    """
    keep = [c for c in map(chr, range(0x21, 0x7F)) if c not in exclude]
    ranges: list[tuple[str, str]] = []
    for c in keep:
        if ranges and ord(c) == ord(ranges[-1][1]) + 1:
            ranges[-1] = (ranges[-1][0], c)
        else:
            ranges.append((c, c))

    def esc(c: str) -> str:
        return "\\" + c if c in "\\]^-[" else c

    return "[" + "".join(esc(a) if a == b else f"{esc(a)}-{esc(b)}" for a, b in ranges) + "]"


# Building blocks. Repetitions are bounded wherever the pattern's own start could occur inside
# its run again (so a hostile run of repeated prefixes costs a bounded amount per start); runs
# whose class cannot contain the pattern's start are left unbounded.
_B64 = "A-Za-z0-9+/"
_TOKEN = "[A-Za-z0-9_-]"
# Private-key bodies: base64, whitespace, JSON-escaped newlines, PEM header lines
# ("Proc-Type: 4,ENCRYPTED", "DEK-Info: AES-128-CBC,..."). A single dash is allowed, a run is
# not, so a body always stops at the next "-----" and never contains another key's start.
_PEM_BODY = r"(?:[A-Za-z0-9+/=\s\\:,.]|-[A-Za-z0-9])"
# Spelled out, a key marker here would trip the repository's own secret scanning.
_DASHES = "-" * 5
_OPENSSH = "OPENSSH PRIVATE KEY"
_PEM_LABEL = r"[ A-Z0-9_]{0,40}"
# A body starts (after line breaks, possibly JSON-escaped, and the headers of an encrypted key)
# with a run of base64: "paste the key's header line here" is not a key.
_PEM_BODY_START = (
    r"\s*(?:(?:\\r)?\\n)?(?:Proc-Type:[^\n]{0,100}\n(?:DEK-Info:[^\n]{0,200}\n)?\s*)?"
    r"[ \t]*[A-Za-z0-9+/=]{16}"
)
# Assignment values: no whitespace, quotes, separators, pipes or brackets. '&' may be inside a
# value or end it (URL query strings).
_VALUE = _ascii_class("\"'`,;()[]{}<>\\|")
# Not '[': a value must not end where a redaction placeholder begins (see redaction._may_expose).
_VALUE_END = r"(?:[\s\"'`,;&|(){}<>\]]|$)"
_XML_VALUE = _ascii_class("<>[]")
# URL userinfo: RFC 3986 would percent-encode more; people paste raw passwords.
_URL_USER = _ascii_class(":/?#@\"'[]<>\\`")
_URL_PASSWORD = _ascii_class("/\"'[]<>\\`")  # '@' too: the host follows the last one
_CONN_VALUE = _ascii_class(";\"'[]")
_LINE = r"[\t -~]"  # one printable ASCII character or tab: a bounded skip within a line

_AWS_SECRET_CONTEXT = (
    r"(?i:\b(?:aws|amazon)[\w.-]{0,20}?(?:secret|sk)[\w.-]{0,20}?|\bsecret_?access_?key[\w.-]{0,16}?)"
    r"[\"']?[ \t]{0,8}(?:=>|:=|[:=])[ \t]{0,8}[\"']?"
)
_GENERIC_KEYS = (
    r"(?:password|passwd|passphrase|pwd|secret|token|api[_.-]?key|access[_.-]?key|"
    r"private[_.-]?key|credentials?|client[_.-]?secret|auth[_.-]?token|session[_.-]?key)"
)
_GENERIC_ASSIGN = r"[\w.-]{0,20}[\"']?[ \t]{0,8}(?:=>|:=|[:=])"
_CONN_KEYS = (
    r"(?:server|data source|host|hostname|address|addr|user id|uid|user|username|database|"
    r"initial catalog|dsn|driver)"
)
_XML_KEYS = r"(?:password|passwd|secret|token|api[_-]?key|client[_-]?secret)"
_MBI = r"[AC-HJKMNP-RT-Y]"


def _builtin_detectors() -> tuple[Detector, ...]:
    cred, cust, reg = "credentials", "customer-data", "regulated-data"
    return (
        # Private keys first: the longest, most specific matches.
        _d(
            "openssh-private-key", cred,
            _DASHES + "BEGIN " + _OPENSSH + _DASHES + _PEM_BODY_START + r"(?:" + _PEM_BODY
            + r"*?" + _DASHES + "END " + _OPENSSH + _DASHES + "|" + _PEM_BODY + r"*)",
            "OpenSSH private key block (a truncated block counts too)",
            keywords=[_DASHES + "begin openssh"], locate=_DASHES + "BEGIN " + _OPENSSH,
        ),
        _d(
            "private-key", cred,
            _DASHES + "BEGIN" + _PEM_LABEL + r"PRIVATE KEY(?: BLOCK)?" + _DASHES + _PEM_BODY_START
            + r"(?:" + _PEM_BODY + r"*?" + _DASHES + "END" + _PEM_LABEL + r"PRIVATE KEY(?: BLOCK)?"
            + _DASHES + "|" + _PEM_BODY + r"*)",
            "PEM private key block: RSA, EC, DSA, PKCS#8, encrypted, PGP",
            keywords=[_DASHES + "begin"], locate=_DASHES + "BEGIN" + _PEM_LABEL + r"PRIVATE KEY",
        ),
        _d(
            "aws-access-key", cred,
            r"\b(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}\b",
            "AWS access key id",
            validator=_aws_access_key, keywords=["a3t", "akia", "asia", "abia", "acca"],
            allow=_EXAMPLE_KEYS,
        ),
        _d(
            "github-fine-grained-pat", cred, r"github_pat_[0-9A-Za-z_]{82}",
            "GitHub fine-grained personal access token",
            validator=_min_entropy(3.0), keywords=["github_pat_"], locate="github_pat_",
        ),
        _d(
            "github-pat", cred, r"ghp_[0-9A-Za-z]{36}", "GitHub classic personal access token",
            validator=_min_entropy(3.0), keywords=["ghp_"], locate="ghp_",
        ),
        _d(
            "github-oauth", cred, r"gho_[0-9A-Za-z]{36}", "GitHub OAuth access token",
            validator=_min_entropy(3.0), keywords=["gho_"], locate="gho_",
        ),
        _d(
            "github-app-token", cred, r"gh[us]_[0-9A-Za-z]{36}",
            "GitHub App user-to-server or installation token",
            validator=_min_entropy(3.0), keywords=["ghu_", "ghs_"], locate="gh[us]_",
        ),
        _d(
            "github-refresh-token", cred, r"ghr_[0-9A-Za-z]{36}", "GitHub refresh token",
            validator=_min_entropy(3.0), keywords=["ghr_"], locate="ghr_",
        ),
        _d(
            "gitlab-pat", cred,
            r"glpat-" + _TOKEN + r"{20,80}(?:\.[0-9a-z]{2}\.[0-9a-z]{7,9})?",
            "GitLab personal access token",
            validator=_min_entropy(3.0), keywords=["glpat-"], locate="glpat-",
        ),
        _d(
            "gitlab-token", cred,
            r"\b(?:gl(?:dt|rt|cbt|soat|ffct|oas|imt|agent|ptt|ft|wt)-|GR1348941)" + _TOKEN
            + r"{20,80}",
            "GitLab deploy, runner, CI/CD job, OAuth, feed, agent or trigger token",
            validator=_min_entropy(3.0),
            keywords=["gldt-", "glrt-", "glcbt-", "glsoat-", "glffct-", "gloas-", "glimt-",
                      "glagent-", "glptt-", "glft-", "glwt-", "gr1348941"],
            locate=r"\b(?:gl(?:dt|rt|cbt|soat|ffct|oas|imt|agent|ptt|ft|wt)-|GR1348941)",
        ),
        _d(
            "slack-webhook", cred,
            r"(?:https?://)?hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9+/]{40,}",
            "Slack incoming webhook URL",
            validator=_slack_webhook, keywords=["http", "hooks.slack.com"],
            locate=r"(?:https?://)?hooks\.slack\.com/",
        ),
        _d(
            "slack-token", cred,
            r"\b(?:xox[abposer]-[0-9]{6,16}-[0-9A-Za-z-]{8,100}|xapp-[0-9]-[A-Z0-9]{6,32}-"
            r"[0-9]{6,32}-[A-Za-z0-9]{20,}|xoxe\.xox[bp]-[0-9]-[A-Za-z0-9]{60,}"
            r"|xoxe-[0-9]-[A-Za-z0-9]{60,})",
            "Slack bot, user, app, config or refresh token",
            validator=_min_entropy(2.5), keywords=["xox", "xapp-"],
            locate=r"\bx(?:ox[abposer]-[0-9]|app-[0-9]-|oxe[.-])",
        ),
        _d(
            "stripe-key", cred,
            r"\b(?:(?:sk|rk)_(?:test|live|prod)_[0-9A-Za-z]{10,}|whsec_[0-9A-Za-z]{24,})",
            "Stripe secret or restricted API key, webhook signing secret",
            validator=_min_entropy(3.0), keywords=["sk_", "rk_", "whsec_"],
            locate=r"\b(?:(?:sk|rk)_(?:test|live|prod)_|whsec_)",
        ),
        _d(
            "google-api-key", cred, r"AIza" + _TOKEN + r"{35}", "Google API key",
            validator=_min_entropy(3.0), keywords=["aiza"], locate="AIza",
        ),
        _d(
            "anthropic-api-key", cred,
            r"\bsk-ant-(?:api|admin|oat|sid)[0-9]{2}-" + _TOKEN + r"{32,150}",
            "Anthropic API or admin key",
            validator=_min_entropy(3.0), keywords=["sk-ant-"], locate=r"\bsk-ant-",
        ),
        _d(
            "openai-api-key", cred,
            r"\bsk-(?:(?:proj|svcacct|admin)-" + _TOKEN + r"{40,250}"
            r"|[0-9A-Za-z]{20}T3BlbkFJ[0-9A-Za-z]{20})",
            "OpenAI API key (project, service account, admin or legacy)",
            validator=_min_entropy(3.0), keywords=["sk-"],
            locate=r"\bsk-(?:proj-|svcacct-|admin-|[0-9A-Za-z]{20}T3BlbkFJ)",
        ),
        _d(
            "npm-token", cred, r"\bnpm_[0-9A-Za-z]{36}", "npm access token",
            validator=_min_entropy(3.0), keywords=["npm_"], locate=r"\bnpm_",
        ),
        _d(
            "pypi-token", cred, r"pypi-AgEIcHlwaS5vcmc" + _TOKEN + r"{50,250}",
            "PyPI upload token",
            validator=_min_entropy(3.0), keywords=["pypi-"], locate="pypi-AgEIcHlwaS5vcmc",
        ),
        _d(
            "jwt", cred,
            # The header is bounded: many "eyJ" starts must not all reach one far '.eyJ'. The
            # payload and signature stop at the next '.', so they may be unbounded.
            r"\beyJ" + _TOKEN + r"{5,160}\.eyJ" + _TOKEN + r"{5,}(?:\." + _TOKEN + r"*)?",
            "JSON Web Token (signed or unsigned)",
            validator=_jwt, keywords=["eyj"], locate=r"\beyJ",
        ),
        _d(
            "url-password", cred,
            # From the "://" on (any scheme: postgres, mongodb+srv, amqps...): the userinfo and
            # the first character of the host. The password is the finding.
            r"://" + _URL_USER + r"*:(" + _URL_PASSWORD + r"+)@[A-Za-z0-9.\[_~%-]",
            "URL or database connection string carrying a password",
            group=1, validator=_nonempty, keywords=["://"], allow=[_URL_PASSWORD_ALLOW],
        ),
        _d(
            "connection-string-password", cred,
            r"(?i:\b" + _CONN_KEYS + r"[ \t]{0,4}=" + _LINE + r"{0,160}?;[ \t]{0,4}"
            r"(?:password|pwd)[ \t]{0,4}=[ \t]{0,4})[\"']?(" + _CONN_VALUE + r"+)",
            "ADO.NET, ODBC or JDBC connection string carrying a password",
            group=1, validator=_nonempty,
            keywords=["server", "data source", "host", "address", "addr", "user", "uid",
                      "database", "initial catalog", "dsn", "driver"],
            allow=[_URL_PASSWORD_ALLOW, *_REFERENCE_ALLOW],
            locate=r"(?i:\b" + _CONN_KEYS + r"[ \t]{0,4}=)",
        ),
        _d(
            "authorization-header", cred,
            r"(?i:\b(?:authorization|proxy-authorization)[\"']?[ \t]{0,4}[:=][ \t]{0,4}[\"']?"
            r"(?:bearer|basic|token|bot|digest)[ \t]{1,4})([A-Za-z0-9._~+/-]{8,}=*)",
            "HTTP Authorization header credentials",
            group=1, validator=_min_entropy(2.5),
            keywords=["authorization", "proxy-authorization"], allow=_PLACEHOLDER_ALLOW,
            locate=r"(?i:\b(?:authorization|proxy-authorization)[\"']?[ \t]{0,4}[:=])",
        ),
        _d(
            "aws-secret-key", cred,
            # In an assignment (aws_secret_access_key = ..., "SecretAccessKey": "..."), or on
            # its own between non-base64 characters; the validator is stricter on its own.
            # On its own means not inside a longer token: no base64, '_' or '-' on either side,
            # no '=' padding after.
            r"(?:" + _AWS_SECRET_CONTEXT + r"|^|[^" + _B64 + r"_-])([" + _B64 + r"]{40})(?:[^"
            + _B64 + r"=_-]|$)",
            "AWS secret access key, in an assignment or on its own (40 random base64 characters)",
            group=1, validator=_aws_secret_key, allow=(*_EXAMPLE_KEYS, _HEX_ALLOW),
            automaton="entropy",
        ),
        _d(
            "generic-secret", cred,
            # key = value (a value may contain another "key=", so it is bounded, and must end at
            # a delimiter: "password = get_password()" is code), or <password>value</password>.
            r"(?i:" + _GENERIC_KEYS + _GENERIC_ASSIGN + r"[ \t]{0,8}[\"'`]?)(" + _VALUE
            + r"{8,512})" + _VALUE_END + r"|(?i:<" + _XML_KEYS + r">)(" + _XML_VALUE + r"{8,512})</",
            "Assignment of a high-entropy value to a password, secret, token or key",
            group=(1, 2), validator=_generic_secret,
            keywords=["password", "passwd", "passphrase", "pwd", "secret", "token", "api",
                      "access", "private", "credential", "client", "auth", "session",
                      "<password", "<passwd", "<secret", "<token", "<api", "<client"],
            allow=_PLACEHOLDER_ALLOW,
            locate=r"(?i:" + _GENERIC_KEYS + _GENERIC_ASSIGN + r"|<" + _XML_KEYS + r">)",
        ),
        # Customer data.
        _d(
            "iban", cust,
            r"\b[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b",
            "International bank account number (mod-97 checked)",
            validator=_iban,
        ),
        _d(
            "payment-card", cust,
            r"\b(?:[0-9]{4}[ -]){3}[0-9]{1,7}\b|\b[0-9]{4}[ -][0-9]{6}[ -][0-9]{4,5}\b"
            r"|\b[0-9]{13,19}\b",
            "Payment card number (Luhn-checked, known issuer prefix)",
            validator=_payment_card,
        ),
        _d(
            "us-ssn", cust, r"\b[0-9]{3}-[0-9]{2}-[0-9]{4}\b|\b[0-9]{3} [0-9]{2} [0-9]{4}\b",
            "US social security number",
            validator=_us_ssn, allow=[r"^078.05.1120$|^219.09.9999$"],
        ),
        _d(
            "phone-number", cust,
            # International (+CC or 00CC), North American with separators, or national with a
            # trunk 0; digit counts are checked by the validator.
            r"(?:\+|\b00)[1-9][0-9]{0,3}(?:[ .-]?\(?[0-9]{1,4}\)?){2,7}\b"
            r"|(?:\(\b[2-9][0-9]{2}\) ?|\b[2-9][0-9]{2}[ .-])[2-9][0-9]{2}[ .-][0-9]{4}\b"
            r"|\b0[1-9][0-9]{0,3}(?:[ .-][0-9]{2,4}){2,4}\b",
            "Phone number (international, North American or national format)",
            validator=_phone,
        ),
        # Regulated data: bundles add their own record-number patterns.
        _d(
            "us-medicare-id", reg,
            r"(?i:\b(?:mbi|medicare)\b" + _LINE + r"{0,40}?)\b([1-9]" + _MBI + r"[0-9"
            + _MBI[1:-1] + r"][0-9]-?" + _MBI + r"[0-9" + _MBI[1:-1] + r"][0-9]-?" + _MBI
            + r"{2}[0-9]{2})\b",
            "US Medicare beneficiary identifier next to the word MBI or Medicare",
            group=1, keywords=["mbi", "medicare"], locate=r"(?i:\b(?:mbi|medicare)\b)",
        ),
        # Customer data that can start at any word gets a pass of its own (see Scanner).
        _d(
            "email", cust,
            r"\b[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,24}\b",
            "Email address",
            allow=[r"^git@", r"@[0-9]+x\.(?:png|jpe?g|gif|webp|svg)$"], automaton="email",
        ),
    )  # fmt: skip


_BUILTINS: tuple[Detector, ...] | None = None


def builtin_detectors() -> tuple[Detector, ...]:
    """Every builtin detector, most specific first (the order breaks ties on overlap)."""
    global _BUILTINS
    if _BUILTINS is None:
        _BUILTINS = _builtin_detectors()
    return _BUILTINS


# --- bundle patterns and selection ------------------------------------------------------------


def _field(spec: Any, name: str) -> Any:
    if isinstance(spec, Mapping):
        return spec.get(name)
    return getattr(spec, name, None)


# Contexts in which a pattern that can match the empty string shows it; such a pattern would
# "find" something at every position.
_EMPTY_PROBES = ("", "a", " ", "a b", "0", "\n", "-", "é")


def pattern_detector(spec: Any) -> Detector:
    """A detector from a bundle pattern ``{id, category, regex, description}`` (a mapping or an
    object with those attributes). ``ValueError`` names the pattern when RE2 rejects it or when it
    could never work as a boundary (matches the empty string or a redaction placeholder)."""
    pid = str(_field(spec, "id") or "")
    category = _field(spec, "category")
    category = str(getattr(category, "value", category) or "")
    regex = _field(spec, "regex")
    if not pid:
        raise ValueError("a data-boundary pattern has no id")
    if category not in CATEGORIES:
        raise ValueError(f"pattern {pid!r}: unknown category {category!r}")
    if not isinstance(regex, str) or not regex:
        raise ValueError(f"pattern {pid!r}: regex must be a non-empty string")
    try:
        compiled = compile_pattern(regex)
    except re2.error as exc:
        raise ValueError(f"pattern {pid!r}: RE2 rejects the regex: {_re2_message(exc)}") from None
    for probe in _EMPTY_PROBES:
        if any(m.end() == m.start() for m in compiled.finditer(probe)):
            raise ValueError(f"pattern {pid!r}: the regex matches the empty string")
    for sample in (placeholder(pid), placeholder("email"), placeholder("x")):
        if compiled.search(sample) is not None:
            raise ValueError(f"pattern {pid!r}: the regex matches the redaction placeholder")
    return Detector(
        id=pid,
        category=category,
        pattern=compiled,
        description=str(_field(spec, "description") or ""),
        source="pattern",
        # A small pattern shares the main pass; a big one gets its own, so it cannot slow the
        # builtins down (DFA states of different patterns multiply).
        automaton="main" if compiled.programsize <= _SHARED_PROGRAM_SIZE else "patterns",
    )


def bundle_detectors(data_boundaries: Any) -> tuple[Detector, ...]:
    """Every detector a bundle's forbidden categories select, once each (the first ref wins).

    ``data_boundaries`` is the bundle's ``data_boundaries`` section (``forbidden`` entries with
    ``detectors`` refs, and the declared ``patterns``).
    """
    selected: dict[str, Detector] = {}
    for forbidden in data_boundaries.forbidden:
        for detector in resolve_detectors(forbidden.detectors, data_boundaries.patterns):
            selected.setdefault(detector.id, detector)
    return tuple(selected.values())


def resolve_detectors(refs: Iterable[str], patterns: Iterable[Any] = ()) -> tuple[Detector, ...]:
    """The detectors a forbidden category selects.

    ``builtin:<category>`` is every builtin of that category, ``builtin:<detector-id>`` one builtin,
    ``pattern:<id>`` a pattern the bundle declares. ``ValueError`` names an unknown ref or a
    pattern RE2 rejects. Order: builtins in their specificity order, then bundle patterns in ref
    order; duplicates are dropped.
    """
    declared: dict[str, Any] = {}
    for spec in patterns:
        declared[str(_field(spec, "id"))] = spec
    builtins = builtin_detectors()
    by_id: dict[str, list[Detector]] = {}
    for det in builtins:
        by_id.setdefault(det.id, []).append(det)

    selected: list[Detector] = []
    seen: set[int] = set()
    custom: list[Detector] = []
    for ref in refs:
        kind, sep, name = str(ref).partition(":")
        if not sep or not name:
            raise ValueError(f"detector ref {ref!r} must be builtin:<name> or pattern:<id>")
        if kind == "builtin":
            if name in CATEGORIES:
                chosen = [d for d in builtins if d.category == name]
            elif name in by_id:
                chosen = by_id[name]
            else:
                raise ValueError(
                    f"unknown detector {ref!r}: builtins are {', '.join(sorted(by_id))} "
                    f"and the categories {', '.join(CATEGORIES)}"
                )
            for det in chosen:
                if id(det) not in seen:
                    seen.add(id(det))
                    selected.append(det)
        elif kind == "pattern":
            if name not in declared:
                raise ValueError(f"unknown detector {ref!r}: no pattern with id {name!r} declared")
            if name not in {d.id for d in custom}:
                custom.append(pattern_detector(declared[name]))
        else:
            raise ValueError(f"detector ref {ref!r} must be builtin:<name> or pattern:<id>")
    order = {id(d): i for i, d in enumerate(builtins)}
    selected.sort(key=lambda d: order[id(d)])
    return (*selected, *custom)


# --- the scanner ------------------------------------------------------------------------------

# A search looks at most _WINDOW bytes ahead, and a locator match is trusted only if it starts at
# least _LOCATOR_SPAN before the window's end (a longer match starting earlier could have been cut
# off). A confirmation reads at most _MAX_MATCH bytes from its start. Together they bound the
# work per candidate whatever the patterns, so a bundle pattern with an unbounded repetition
# cannot make a scan quadratic.
_WINDOW = 1 << 16
_LOCATOR_SPAN = 1 << 12
_MAX_MATCH = 1 << 16


@dataclass(frozen=True, slots=True)
class Hit:
    """One confirmed match of one detector: ``[start, end)`` in ``str`` indices of the scanned
    text. Hits of different detectors may overlap; ``redaction.Redactor`` resolves that."""

    detector: Detector
    start: int
    end: int


def _first_bytes(det: Detector) -> frozenset[int] | None:
    """Bytes a match of ``det`` can start with, or None if RE2 cannot bound them."""
    try:
        low, high = det.pattern.possiblematchrange(4)
    except re2.error:
        return None
    if not low or not high:
        return None
    return frozenset(range(low[0], high[0] + 1))


Spans = Sequence[tuple[int, int]]


def _raw_matchers(regex: Any) -> tuple[Callable[..., Spans | None], Callable[..., Spans | None]]:
    """(search, anchored match) over ``bytes`` with ``pos``/``endpos``, returning the group spans
    or None. google-re2's public ``search`` wraps each call in a generator and a Match object,
    about a microsecond of Python; the scanner makes tens of thousands of calls per MB of dense
    input, so it calls the binding's ``Match`` directly when it is there (google-re2 >= 1.0) and
    falls back to the public API otherwise."""
    raw = getattr(regex, "_regexp", None)
    anchors = getattr(re2, "_Anchor", None)
    if raw is not None and anchors is not None and hasattr(raw, "Match"):
        native = raw.Match
        unanchored, anchor_start = anchors.UNANCHORED, anchors.ANCHOR_START

        def search(data: bytes, pos: int, endpos: int) -> Spans | None:
            spans = native(unanchored, data, pos, endpos)
            return spans if spans[0][0] >= 0 else None

        def match(data: bytes, pos: int, endpos: int) -> Spans | None:
            spans = native(anchor_start, data, pos, endpos)
            return spans if spans[0][0] >= 0 else None

        return search, match
    return _public_matcher(regex.search, regex.groups), _public_matcher(regex.match, regex.groups)


def _public_matcher(method: Callable[..., Any], groups: int) -> Callable[..., Spans | None]:
    def call(data: bytes, pos: int, endpos: int) -> Spans | None:
        m = method(data, pos, endpos)
        return None if m is None else [m.span(g) for g in range(groups + 1)]

    return call


class _Automaton:
    """One RE2 alternation of locators, used only to find where candidates start. At each start
    the detectors whose first byte and keyword fit are matched there, anchored, in order; the
    first one confirmed is the hit. Each detector's own small program extracts its groups."""

    def __init__(self, detectors: Sequence[Detector], members: Sequence[int]):
        self.members = tuple(members)  # scanner-wide detector index of each alternative
        self.detectors = tuple(detectors[i] for i in members)
        source = "|".join(f"(?:{d.locator or d.pattern.pattern})" for d in self.detectors)
        self.regex = compile_pattern(source, max_mem=_AUTOMATON_MAX_MEM, never_capture=True)
        self.search = _raw_matchers(self.regex)[0]
        self.matchers = tuple(_raw_matchers(d.pattern)[1] for d in self.detectors)
        starts = [_first_bytes(d) for d in self.detectors]
        self.candidates = tuple(tuple(k for k, s in enumerate(starts) if s is None or byte in s) for byte in range(256))
        self.keywords = tuple(tuple(kw.encode() for kw in d.keywords) for d in self.detectors)

    def scan(self, data: bytes, out: list[tuple[int, int, int]]) -> None:
        search, matchers, confirm = self.search, self.matchers, self._confirm
        candidates, keywords = self.candidates, self.keywords
        n = len(data)
        pos = 0
        while pos <= n:
            limit = n if n - pos <= _WINDOW else pos + _WINDOW
            spans = search(data, pos, limit)
            if limit < n and (spans is None or spans[0][0] >= limit - _LOCATOR_SPAN):
                pos = limit - _LOCATOR_SPAN
                continue
            if spans is None:
                return
            start = spans[0][0]
            head = None
            stop = n if n - start <= _MAX_MATCH else start + _MAX_MATCH
            for k in candidates[data[start]]:
                if keywords[k]:
                    if head is None:
                        head = data[start : start + 32].lower()
                    if not head.startswith(keywords[k]):
                        continue
                found = matchers[k](data, start, stop)
                if found is not None and found[0][1] > start:
                    hit = confirm(k, found, data)
                    if hit is not None:
                        out.append(hit)
                        break
            # Resume at the next character, not at the match end: a candidate that starts
            # inside this one must still be seen.
            pos = start + 1
            while pos < n and 0x80 <= data[pos] < 0xC0:
                pos += 1

    def _confirm(self, k: int, spans: Spans, data: bytes) -> tuple[int, int, int] | None:
        det = self.detectors[k]
        ms, me = spans[0]
        group = det.secret_group
        if isinstance(group, tuple):
            group = next((g for g in group if spans[g][0] >= 0), 0)
        vs, ve = spans[group]
        if vs < 0 or ve <= vs:
            return None
        value = data[vs:ve].decode("utf-8", "surrogatepass")
        whole = value if (ms, me) == (vs, ve) else data[ms:me].decode("utf-8", "surrogatepass")
        keep = det.accept(value, whole)
        if keep <= 0:
            return None
        if keep < len(value):
            ve = vs + len(value[:keep].encode("utf-8", "surrogatepass"))
        return self.members[k], vs, ve


class Scanner:
    """Finds every confirmed hit of a fixed set of detectors. Build once, scan many times: the
    compiled automata and their DFA caches are reused; safe to share between threads.

    Detectors are grouped into a few automata (``Detector.automaton``): one for everything that
    starts with a literal or a keyword (tokens, key blocks, assignments, digit shapes), one each
    for shapes that can start at any word (e-mail addresses, bare 40-character keys) and one for
    the bundle's patterns. Mixing shapes that start anywhere multiplies DFA states (every word
    keeps an e-mail local part and a base64 run alive at once); a few small automata cost a few
    cheap passes instead.
    """

    def __init__(self, detectors: Iterable[Detector]):
        self.detectors: tuple[Detector, ...] = tuple(detectors)
        members: dict[str, list[int]] = {}
        for i, det in enumerate(self.detectors):
            members.setdefault(det.automaton, []).append(i)
        self._automata = tuple(_Automaton(self.detectors, m) for m in members.values())

    def scan(self, text: str) -> list[Hit]:
        """Every confirmed hit in ``text`` (ordered by automaton, then position)."""
        return [Hit(self.detectors[i], s, e) for i, s, e in self.scan_indices(text)]

    def scan_indices(self, text: str) -> list[tuple[int, int, int]]:
        """Every confirmed hit as ``(detector index, start, end)`` in ``str`` indices."""
        if not text or not self._automata:
            return []
        data = text.encode("utf-8", "surrogatepass")
        raw: list[tuple[int, int, int]] = []
        for automaton in self._automata:
            automaton.scan(data, raw)
        if not raw or len(data) == len(text):  # ASCII: byte offsets are str offsets
            return raw
        to_char = _char_offsets(data, {o for _, s, e in raw for o in (s, e)})
        return [(i, to_char[s], to_char[e]) for i, s, e in raw]


def _char_offsets(data: bytes, offsets: set[int]) -> dict[int, int]:
    """Map UTF-8 byte offsets to ``str`` indices in one pass (a character is one non-continuation
    byte; ``surrogatepass`` keeps lone surrogates at three bytes, one character)."""
    out = {}
    prev_byte = prev_char = 0
    for b in sorted(offsets):
        chunk = data[prev_byte:b]
        prev_char += len(chunk.translate(None, _UTF8_CONTINUATION))
        out[b] = prev_char
        prev_byte = b
    return out
