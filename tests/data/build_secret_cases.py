"""Build ``secret_cases.json`` from gitleaks' rule tests (MIT licence, github.com/gitleaks/gitleaks,
``cmd/generate/config/rules/*.go``): the true positives (``tps``) and false positives (``fps``)
other people wrote for each rule, for the families this project's detectors cover.

    python tests/data/build_secret_cases.py GITLEAKS_CHECKOUT_OR_GIT_DIR [COMMIT]

Each case's text is stored as a list of code points, not as a string, so that no secret scanner
(ours in CI, gitleaks, detect-secrets) flags this repository for the test cases it holds. Cases
that gitleaks builds at run time (``fmt.Sprintf``, ``secrets.NewSecret``) are skipped; for
``GenerateSampleSecrets(id, secret)`` the secret is kept in a ``<id>_token = "<secret>"``
assignment, one of the forms gitleaks generates from it. This script reads trusted source code,
not user input, so it uses the stdlib ``re``.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

FAMILIES = {
    "aws.go": "aws", "github.go": "github", "gitlab.go": "gitlab", "slack.go": "slack",
    "stripe.go": "stripe", "gcp.go": "google", "anthropic.go": "anthropic", "openai.go": "openai",
    "npm.go": "npm", "pypi.go": "pypi", "jwt.go": "jwt", "generic.go": "generic", "curl.go": "basic-auth",
    "privatekey.go": "private-key",
}  # fmt: skip

_LITERAL = re.compile(r'`([^`]*)`|"((?:[^"\\\n]|\\.)*)"')
_SAMPLE = re.compile(r'GenerateSampleSecrets\(\s*"([^"]*)"\s*,\s*(?:`([^`]*)`|"((?:[^"\\\n]|\\.)*)")\s*\)')


def _go_string(raw: str | None, quoted: str | None) -> str:
    if raw is not None:
        return raw
    return json.loads('"' + (quoted or "").replace("\\'", "'") + '"')


def _cases(source: str, start_kw: str, stop: tuple[str, ...]) -> list[str]:
    out: list[str] = []
    for block in re.finditer(r"\b" + start_kw + r"\s*:?=", source):
        body = source[block.end() :]
        ends = [i for i in (body.find(s) for s in stop) if i >= 0]
        body = body[: min(ends)] if ends else body
        for m in _SAMPLE.finditer(body):
            out.append(f'{m.group(1)}_token = "{_go_string(m.group(2), m.group(3))}"')
        cleaned = _SAMPLE.sub("", body)
        for m in _LITERAL.finditer(cleaned):
            line_start = cleaned.rfind("\n", 0, m.start()) + 1
            line = cleaned[line_start : cleaned.find("\n", m.end()) if "\n" in cleaned[m.end() :] else None]
            if "Sprintf" in line or "NewSecret" in line or "%s" in m.group(0) or line.lstrip().startswith("//"):
                continue
            if "Keywords" in line or "RuleID" in line or "regexp" in line:
                continue
            # Only list elements: the literal opens its line (after the indent) and a ',' follows it.
            if cleaned[line_start : m.start()].strip() or not cleaned[m.end() :].lstrip(" \t").startswith((",", "}", ")")):
                continue
            text = _go_string(m.group(1), m.group(2))
            if len(text) >= 8:
                out.append(text)
    return out


def _read(repo: Path, commit: str, name: str) -> str:
    path = f"cmd/generate/config/rules/{name}"
    if (repo / path).is_file():
        return (repo / path).read_text(encoding="utf-8")
    return subprocess.run(["git", "-C", str(repo), "show", f"{commit}:{path}"], capture_output=True, text=True,
                          check=True).stdout  # fmt: skip


def main(argv: list[str]) -> int:
    repo = Path(argv[1])
    commit = argv[2] if len(argv) > 2 else "HEAD"
    resolved = subprocess.run(["git", "-C", str(repo), "rev-parse", commit], capture_output=True, text=True).stdout.strip()
    cases = []
    for name, family in FAMILIES.items():
        source = _read(repo, commit, name)
        for kind, kw, stop in (("positive", "tps", ("fps", "return utils.Validate")), ("negative", "fps", ("return utils.Validate",))):
            for text in dict.fromkeys(_cases(source, kw, stop)):
                cases.append({"family": family, "kind": kind, "rule_file": name, "codes": [ord(c) for c in text]})
    doc = {
        "source": "gitleaks rule tests, https://github.com/gitleaks/gitleaks, cmd/generate/config/rules/",
        "licence": "MIT (Copyright (c) 2019 Zachary Rice)",
        "commit": resolved or commit,
        "note": "text stored as code points so that secret scanners do not flag this repository",
        "cases": cases,
    }
    out = Path(__file__).with_name("secret_cases.json")
    out.write_text(json.dumps(doc, separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"{len(cases)} cases -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
