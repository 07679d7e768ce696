"""Validators: the checks that confirm a candidate (checksums, entropy, decodable structure) and
trim a greedy over-match. Pure functions of the candidate value and the whole match."""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections import Counter
from collections.abc import Callable

from controller.boundaries.detector import Validator, compile_pattern

__all__ = ["iban_valid", "luhn_valid", "shannon_entropy"]



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
    has_digit = any(c.isdigit() for c in value)
    if not (has_lower and has_upper and has_digit) or value.count("/") > 4:
        return 0
    if "+" not in value and "/" not in value and _camel_words(value):
        return 0  # EC2SpotFleetRequestAverageCPUUtilization: words, not 40 random characters
    return len(value) if shannon_entropy(value) >= 4.2 else 0


def _camel_words(value: str) -> bool:
    """Whether a value reads as CamelCase words: few capitals and a lowercase run of five or more
    (40 random base64 characters have about 16 capitals)."""
    upper = sum(1 for c in value if c.isupper())
    run = longest = 0
    for c in value:
        run = run + 1 if c.islower() else 0
        longest = max(longest, run)
    return upper <= 10 and longest >= 5


def _jwt(value: str, match: str) -> int:
    # A real JWT: the header decodes to a JSON object naming its algorithm.
    header = value.split(".", 1)[0]
    try:
        decoded = base64.urlsafe_b64decode(header + "=" * (-len(header) % 4))
        parsed = json.loads(decoded)
    except (binascii.Error, ValueError):
        return 0
    return len(value) if isinstance(parsed, dict) and "alg" in parsed else 0


_SCHEMES = ("bearer", "basic", "token", "bot", "digest", "apikey", "api-key", "api-token", "sso-key")

# Credentials in examples: a user:password pair made only of these words is a placeholder.
_PLACEHOLDER_WORDS = frozenset(
    ("test", "user", "username", "login", "pass", "password", "passwd", "pwd", "token", "secret", "xxx",
     "yyy", "foo", "bar", "admin", "name", "apikey", "api", "key", "changeme", "example")
)  # fmt: skip


def _command_password(value: str, match: str) -> int:
    # mysql -p / sshpass -p: the value is the password itself.
    if ":" not in value or match.lstrip().startswith(("mysql", "sshpass")):
        return len(value) if value.strip("\"'") else 0
    user, _, password = value.replace('"', "").replace("'", "").partition(":")
    secret = password or user  # curl -u ":pw" or "pw:" puts the secret on one side
    if len(secret) < 3 or secret.lower() in _PLACEHOLDER_WORDS:
        return 0
    if user.lower() in _PLACEHOLDER_WORDS and password.lower() in _PLACEHOLDER_WORDS:
        return 0
    if secret.startswith(("$", "<", "[", "%")) or "${" in value or "{{" in value or "$(" in value:
        return 0  # a shell variable or command, a template, a placeholder
    return len(value)


def _authorization(value: str, match: str) -> int:
    # With a scheme word, any credential-shaped value; without one, it must look random.
    rest = match[: len(match) - len(value)].lower()
    if any(rest.rstrip().endswith(scheme) for scheme in _SCHEMES):
        return len(value) if shannon_entropy(value) >= 2.5 else 0
    if len(value) < 16 or _classes(value) < 2:
        return 0
    return len(value) if shannon_entropy(value) >= 3.0 else 0


# DER starts of private keys: SEQUENCE, then version INTEGER 0 (PKCS#1 RSA, PKCS#8) or 1 (SEC1 EC);
# or OpenSSH's "openssh-key-v1" magic. A certificate (SEQUENCE, SEQUENCE) is public: not matched.
_OPENSSH_MAGIC = b"openssh-key-v1\x00"


def _private_key_body(value: str, match: str) -> int:
    head = "".join(value[:400].replace("\\r", "").replace("\\n", "").split())[:96]
    try:
        der = base64.b64decode(head[: len(head) // 4 * 4])
    except (binascii.Error, ValueError):
        return 0
    if der.startswith(_OPENSSH_MAGIC):
        return len(value)
    if len(der) < 8 or der[0] != 0x30:
        return 0
    # Skip the outer SEQUENCE's length (short or long form), then expect INTEGER 0 or 1.
    i = 2 + (der[1] & 0x7F if der[1] & 0x80 else 0)
    return len(value) if der[i : i + 3] in (b"\x02\x01\x00", b"\x02\x01\x01") else 0


_CARD_PREFIXES = (
    ("4",),  # Visa
    tuple(str(p) for p in range(51, 56)) + tuple(str(p) for p in range(2221, 2721)),  # Mastercard
    ("34", "37"),  # Amex
    ("6011", "65") + tuple(str(p) for p in range(644, 650)),  # Discover
    ("35", "2131", "1800"),  # JCB: 3528-3589 by the book, 35xx as generators print; 2131, 1800: 15 digits
    ("36", "38", "39") + tuple(str(p) for p in range(300, 306)),  # Diners
    ("62", "81"),  # UnionPay
    ("50", "0604") + tuple(str(p) for p in range(56, 70)),  # Maestro
)
_MAESTRO = ("50", "0604") + tuple(str(p) for p in range(56, 70))  # 0604: an early UK Maestro range
_CARD_PREFIX_SET = frozenset(p for group in _CARD_PREFIXES for p in group)


def _payment_card(value: str, match: str) -> int:
    digits = value.replace(" ", "").replace("-", "").replace(".", "")
    if not 12 <= len(digits) <= 19 or len(set(digits)) < 2:
        return 0
    if not any(digits[:k] in _CARD_PREFIX_SET for k in (1, 2, 3, 4)):
        return 0
    if len(digits) == 12 and not digits.startswith(_MAESTRO):  # only Maestro issues 12 digits
        return 0
    if (" " in value) + ("-" in value) + ("." in value) > 1:  # mixed separators: not a printed card
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
    # Ends of whole digit groups, with the digit count up to each.
    ends: list[tuple[int, int]] = []
    digits = 0
    for i, ch in enumerate(value):
        if ch.isdigit():
            digits += 1
            if digits > high:
                break
            if i + 1 == len(value) or not value[i + 1].isdigit():
                ends.append((i + 1, digits))
    for end, count in reversed(ends):  # the longest number the plan allows
        if count < low:
            return 0
        if len({c for c in value[:end] if c.isdigit()}) < 3:
            return 0
        if not international or _possible_international(value[:end]):
            return end
    return 0


def _possible_international(number: str) -> bool:
    """libphonenumber (the maintained ``phonenumbers`` port) on a bounded candidate (at most 40
    characters): a known country code and a length that country's plan allows."""
    import phonenumbers

    text = "+" + number[2:] if number.startswith("00") else number
    try:
        return phonenumbers.is_possible_number(phonenumbers.parse(text[:40], None))
    except phonenumbers.NumberParseException:
        return False


def _ip_address(value: str, match: str) -> int:
    import ipaddress

    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return 0
    if address.version == 4:
        octets = value.split(".")
        if octets[0] == "0" or all(len(o) == 1 for o in octets):
            return 0  # 0.x.y.z and 1.2.3.4-like version numbers
        return len(value)
    if value.count(":") < 2 or address.is_unspecified:
        return 0
    return len(value)


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


# Keys whose value is a secret whatever it looks like: human-chosen passwords have low entropy.
_STRONG_KEY_PARTS = ("password", "passwd", "passphrase", "pwd")

# Values shaped like identifiers, not secrets (RE2: the value is user text). Rejected unless the key
# is a strong one.
_IDENTIFIER_SHAPED = compile_pattern(
    r"^(?:"
    r"[A-Za-z][a-z]+(?:[A-Z][a-z]+)+[0-9]{0,3}"  # CamelCase words: NextPageToken
    r"|#/.*|\$ref.*|(?:AWS|Alexa|Custom)::[A-Za-z0-9]+::.*"  # JSON pointers, AWS type names
    r"|[0-9]{4}-[0-9]{2}-[0-9]{2}(?:[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?(?:Z|[+-][0-9]{2}:?[0-9]{2})?)?"
    r"|arn:aws[a-z-]*:.*|[a-z]{2}(?:-gov)?-[a-z]+-[0-9]:[0-9]{12}:.*"  # ARNs, and their tails
    r"|[a-z0-9]+(?:-[a-z0-9]+)*-[a-z0-9]{8,10}-[a-z0-9]{5}|[a-z0-9]+(?:-[a-z0-9]+)*-[a-z0-9]{5}"  # pod names
    r"|[0-9a-f]{7,16}|[0-9a-f]{40}|[0-9A-F]{40}"  # short digests, git SHAs
    r"|[a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)+:[a-z_][a-z0-9_]*"  # entry points: package.module:func
    r")$"
)


def _strong_key(key: str) -> bool:
    return any(part in key for part in _STRONG_KEY_PARTS)


def _generic_secret(value: str, match: str) -> int:
    # The key is the element name of <password>value</password>, else what precedes the '='.
    key = match[1 : match.find(">")].lower() if match.startswith("<") else _key_name(match)
    if match.endswith("(") and value.replace("_", "").replace(".", "").isalpha():
        return 0  # password = getPassword(: code, not a value
    last = key.replace("-", "_").replace(".", "_").rsplit("_", 1)[-1]
    if last in _GENERIC_KEY_SUFFIXES or key.endswith(("tokens", "secrets")):
        return 0
    if _strong_key(key):
        return len(value)  # the allowlist still drops placeholders, references and names
    after = match[len(key) : len(key) + 2]
    if after[:1] == ":" and after[1:2] not in (" ", "\t", '"', "'", ""):
        return 0  # key:value with nothing between: an ARN or URI segment (secret:app-x), not YAML
    if _IDENTIFIER_SHAPED.search(value) is not None:
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

