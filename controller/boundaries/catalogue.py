"""The builtin detector catalogue: every builtin pattern with its locator, validator and
allowlist, most specific first (the order breaks ties on overlap)."""

from __future__ import annotations

from controller.boundaries.detector import Detector, _ascii_class, _d
from controller.boundaries.validators import (
    _authorization,
    _aws_access_key,
    _aws_secret_key,
    _command_password,
    _generic_secret,
    _iban,
    _ip_address,
    _jwt,
    _min_entropy,
    _nonempty,
    _payment_card,
    _phone,
    _private_key_body,
    _slack_webhook,
    _us_ssn,
)

__all__ = ["builtin_detectors"]

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
_PEM_BEGIN = r"-{3,6}[ \t]{0,4}(?i:BEGIN[ A-Z0-9_]{0,40}PRIVATE[ \t]{1,4}KEY(?: BLOCK)?)[ \t]{0,4}-{3,6}"
_PEM_END = r"-{3,6}[ \t]{0,4}(?i:END[ A-Z0-9_]{0,40}PRIVATE[ \t]{1,4}KEY(?: BLOCK)?)[ \t]{0,4}-{3,6}"
# A key body without its header: three or more full base64 lines (64 characters: PEM; 70: OpenSSH),
# raw or JSON-escaped line breaks; the validator decodes the start and checks the key's structure.
_KEY_LINE_BREAK = r"(?:\r?\n|\\r\\n|\\n)[ \t]{0,8}"
_KEY_BODY = (
    r"((?:[A-Za-z0-9+/]{64}" + _KEY_LINE_BREAK + r"){3,}[A-Za-z0-9+/]{0,63}={0,2}"
    r"|(?:[A-Za-z0-9+/]{70}" + _KEY_LINE_BREAK + r"){3,}[A-Za-z0-9+/]{0,69}={0,2})"
)
# Where a body can start: a full line. A start inside a longer run decodes misaligned and fails
# the validator's structure check.
_KEY_BODY_LOCATOR = r"[A-Za-z0-9+/]{64}(?:\r?\n|\\r\\n|\\n)|[A-Za-z0-9+/]{70}(?:\r?\n|\\n)"
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
_VALUE_END = r"(?:[\s\"'`,;&|(){}<>\]\\]|$)"  # '\\': an escaped "\n" may follow
_XML_VALUE = _ascii_class("<>[]")
# URL userinfo: RFC 3986 would percent-encode more; people paste raw passwords.
_URL_USER = _ascii_class(":/?#@\"'[]<>\\`")
_URL_PASSWORD = _ascii_class("/\"'[]<>\\`")  # '@' too: the host follows the last one
_CONN_VALUE = _ascii_class(";\"'[]")
_CMD_VALUE = _ascii_class("\"'`[]<>|;&")  # a shell word, up to a quote, a separator or a pipe
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
_NON_ASCII = "\u0080-\U0010ffff"  # a class range written with the characters themselves (RE2 and re)
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_IPV4 = _OCTET + r"(?:\." + _OCTET + r"){3}"
_H16 = r"[0-9A-Fa-f]{1,4}"
_IPV6 = r"(?:" + _H16 + r")?(?:::?" + _H16 + r"){1,7}(?:::)?|(?:" + _H16 + r":){1,7}:"  # shape; ipaddress decides


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
            # The header as written or altered: three to six dashes, any case, extra spaces.
            _PEM_BEGIN + _PEM_BODY_START + r"(?:" + _PEM_BODY + r"*?" + _PEM_END + "|" + _PEM_BODY + r"*)",
            "PEM private key block: RSA, EC, DSA, PKCS#8, encrypted, PGP (also with an altered header)",
            keywords=["---"], locate=_PEM_BEGIN,
        ),
        _d(
            "private-key-body", cred, _KEY_BODY,
            "Private key body without its header line (PKCS#1, PKCS#8, SEC1 or OpenSSH structure)",
            group=1, validator=_private_key_body, automaton="keybody", locate=_KEY_BODY_LOCATOR,
        ),
        _d(
            "aws-bedrock-api-key", cred,
            r"\bABSK[A-Za-z0-9+/]{109,269}={0,2}|\bbedrock-api-key-YmVkcm9jay5hbWF6b25hd3MuY29t[A-Za-z0-9+/=%-]{16,}",
            "Amazon Bedrock API key (long-term ABSK..., short-term bedrock-api-key-...)",
            validator=_min_entropy(3.0), keywords=["absk", "bedrock-api-key-"],
            locate=r"\bABSK|\bbedrock-api-key-",
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
            "gitlab-session-cookie", cred, r"_gitlab_session=([0-9a-z]{32})",
            "GitLab session cookie",
            group=1, validator=_min_entropy(3.0), keywords=["_gitlab_session="], locate="_gitlab_session=",
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
            r"|xoxe-[0-9]-[A-Za-z0-9]{60,}"
            r"|xox[os]-[0-9]+-[0-9]+-[0-9]+-[a-fA-F0-9]+|xox[ar]-(?:[0-9]-)?[0-9A-Za-z]{8,48}(?:-[0-9A-Za-z]{4,48}){0,4})",
            "Slack bot, user, app, config, refresh or legacy token",
            validator=_min_entropy(2.5), keywords=["xox", "xapp-"],
            locate=r"\bx(?:ox[abposer]-[0-9]|app-[0-9]-|oxe[.-]|ox[ar]-[0-9A-Za-z])",
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
            "command-line-password", cred,
            # curl -u user:pass / --user user:pass, mysql -pSECRET / --password=SECRET, sshpass -p SECRET
            # curl's user:password, quoted whole or in parts; the validator splits and checks it.
            r"(?:(?:^|[ \t])(?:-u|--user)[ \t=]{1,5}([\"']?[^\s\"':]{0,64}[\"']?:[\"']?[^\s\"']{0,256}[\"']?)"
            r"|\bmysql(?:dump|admin)?\b" + _LINE + r"{0,120}?[ \t](?:-p|--password=)(" + _CMD_VALUE + r"{1,256})"
            r"|\bsshpass[ \t]{1,4}-p[ \t]{0,4}[\"']?(" + _CMD_VALUE + r"{1,256}))",
            "Password on a command line: curl -u, mysql -p, sshpass -p",
            group=(1, 2, 3), validator=_command_password,
            allow=[_URL_PASSWORD_ALLOW, *_REFERENCE_ALLOW],
            locate=r"(?:^|[ \t])(?:-u|--user)[ \t=]|\bmysql(?:dump|admin)?\b|\bsshpass[ \t]",
        ),
        _d(
            "authorization-header", cred,
            r"(?i:\b(?:authorization|proxy-authorization)[\"']?[ \t]{0,4}[:=][ \t]{0,4}[\"']?"
            r"(?:(?:bearer|basic|token|bot|digest|apikey|api-key|api-token|sso-key)[ \t]{1,4})?)"
            r"([A-Za-z0-9._~+/-]{8,}=*)",
            "HTTP Authorization header credentials",
            group=1, validator=_authorization,
            # Not the UUID allowance: an Authorization value shaped like a UUID is an API token.
            keywords=["authorization", "proxy-authorization"], allow=[a for a in _PLACEHOLDER_ALLOW if "{12}" not in a],
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
            r"\b(?:[0-9]{4}[ .-]){2,3}[0-9]{1,7}\b|\b[0-9]{4}[ .-][0-9]{6}[ .-][0-9]{4,5}\b"
            r"|\b[0-9]{12,19}\b",
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
            # Not glued to a version, a date, a path or a word on its left.
            r"(?:^|[^\w.:+/-])((?:\+|\b00)[1-9][0-9]{0,3}(?:[ .-]?\(?[0-9]{1,4}\)?){2,7}\b"
            r"|(?:\(\b[2-9][0-9]{2}\) ?|\b[2-9][0-9]{2}[ .-])[0-9]{3}[ .-][0-9]{4}\b"
            r"|\b0[1-9][0-9]{0,3}(?:[ .-][0-9]{2,4}){2,4}\b)(?:[^.\w-]|[.-][^0-9]|[.-]?$)",
            "Phone number (international, North American or national format)",
            group=1, validator=_phone,
        ),
        # Network addresses: a category of their own, which a bundle may choose to redact.
        _d(
            "ip-address", "network-addresses",
            r"(?:^|[^\w.:])(" + _IPV4 + r"|" + _IPV6 + r")(?:[^\w:.]|\.[^\w]|\.?$)",
            "IPv4 or IPv6 address (checked by the ipaddress module)",
            group=1, validator=_ip_address, automaton="network",
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
            # Letters of any script (a non-ASCII byte range: Unicode classes inside a counted
            # repetition would multiply the DFA's states), and not glued to a letter on the left.
            r"(?:^|[^A-Za-z0-9._%+" + _NON_ASCII + r"-])((?:[A-Za-z0-9]|[" + _NON_ASCII + r"])"
            r"(?:[A-Za-z0-9._%+-]|[" + _NON_ASCII + r"]){0,63}@(?:(?:[A-Za-z0-9-]|[" + _NON_ASCII + r"])+\.)+"
            r"(?:[A-Za-z]{2,24}|xn--[a-z0-9-]{1,59}|[" + _NON_ASCII + r"]{2,24}))(?:[^A-Za-z0-9" + _NON_ASCII
            + r"-]|$)",
            "Email address",
            group=1, allow=[r"^git@", r"@[0-9]+x\.(?:png|jpe?g|gif|webp|svg)$"], automaton="email",
        ),
    )  # fmt: skip


_BUILTINS: tuple[Detector, ...] | None = None


def builtin_detectors() -> tuple[Detector, ...]:
    """Every builtin detector, most specific first (the order breaks ties on overlap)."""
    global _BUILTINS
    if _BUILTINS is None:
        _BUILTINS = _builtin_detectors()
    return _BUILTINS


