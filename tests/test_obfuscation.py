"""The normalised view, the decoding layers, and detection through obfuscation (unit and property
tests): an obfuscated secret is still found, redaction removes the ORIGINAL span (the invisible
characters and escapes inside it too), a second redaction changes nothing, and generated clean
text yields no finding outside a planted span."""

from __future__ import annotations

import base64
import random
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.boundaries import builtin_detectors
from controller.boundaries.decoding import decoded_runs
from controller.boundaries.normalise import fold_char, normalised_view
from controller.boundaries.redactor import Action, Redactor
from tests.fakes.obfuscate import FORMS
from tests.fakes.secrets import ALNUM, PW, UPPER27, chars, mixed

REDACTOR = Redactor(builtin_detectors(), {d.category: Action.REDACT for d in builtin_detectors()})


def _secrets(rng: random.Random) -> dict[str, str]:
    return {
        "aws-access-key": "AKIA" + chars(rng, UPPER27, 16),
        "github-pat": "ghp_" + mixed(rng, ALNUM, 36),
        "slack-token": "xoxb-" + chars(rng, string.digits, 12) + "-" + mixed(rng, ALNUM, 24),
        "google-api-key": "AIza" + mixed(rng, ALNUM, 35),
        "generic-secret": "DB_" + PW.upper() + "=" + mixed(rng, ALNUM, 14),
    }


# --- the view -------------------------------------------------------------------------------


def test_pure_ascii_text_without_sites_has_no_view() -> None:
    assert normalised_view("plain words, numbers 12 and a line\nbreak between words") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a\u200bb\u200dc\u2060d\u00ade\u202ef", "abcdef"),
        ("\uff21\uff2b\uff29\uff21\uff11", "AKIA1"),
        ("\u0410\u041a\u0399\u0410", "AKIA"),  # Cyrillic A, K; Greek Iota; Cyrillic A
        ("\\u0041KIA %41%42 \\x43", "AKIA AB C"),
        ("AKIA1234\nABCD", "AKIA1234ABCD"),
        ("key12345\\nABCD", "key12345ABCD"),
        ("xx A K I A 1 2 3 4 yy", "xx AKIA1234 yy"),
        ("m\u00fcller@beispiel.de", None),  # nothing to fold: no view
    ],
)
def test_the_view_reads_what_a_person_reads(text: str, expected: str | None) -> None:
    view = normalised_view(text)
    assert (view.text if view else None) == expected


def test_view_spans_map_back_to_the_original_including_invisible_characters() -> None:
    text = "id: AK\u200bIA12\u200b34 end"
    view = normalised_view(text)
    assert view is not None
    start = view.text.index("AKIA")
    s, e = view.to_original(start, start + len("AKIA1234"))
    assert text[s:e] == "AK\u200bIA12\u200b34"
    assert view.to_original(0, 3) == (0, 3)
    assert view.to_original(len(view.text) - 3, len(view.text)) == (len(text) - 3, len(text))


def test_fold_char_removes_format_characters_and_folds_confusables() -> None:
    assert fold_char("\u200b") == ""
    assert fold_char("\u0430") == "a"
    assert fold_char("\uff20") == "@"
    assert fold_char("\u00fc") == "\u00fc"


# --- decoding -------------------------------------------------------------------------------


def test_encoded_runs_that_decode_to_text_are_found() -> None:
    inner = "token is here and long"
    text = f"a {base64.b64encode(inner.encode()).decode()} b {inner.encode().hex()} c"
    assert [d for _, _, d in decoded_runs(text)] == [inner, inner]


@pytest.mark.parametrize(
    "text",
    ["0123456789abcdef0123456789abcdef01234567", "NetworkBandwidthGbpsRequest", "a_long_snake_case_identifier", "x" * 40],
)
def test_hashes_identifiers_and_binary_do_not_decode(text: str) -> None:
    assert list(decoded_runs(text)) == []


# --- detection through every form -------------------------------------------------------------


@pytest.mark.parametrize("form", sorted(FORMS))
def test_every_form_of_every_secret_is_caught_and_its_original_span_removed(form: str) -> None:
    rng = random.Random(form)
    for kind, value in _secrets(rng).items():
        hidden = FORMS[form](value)
        text = f"please use {hidden} today"
        result = REDACTOR.apply(text)
        assert result.findings, (form, kind)
        assert result.text.startswith("please use ") and result.text.endswith(" today"), (form, kind, result.text)
        assert hidden not in result.text
        assert REDACTOR.apply(result.text).text == result.text


_SECRET_KINDS = st.sampled_from(sorted(_secrets(random.Random(0))))
_FORM_NAMES = st.sampled_from(sorted(FORMS))
# No one-letter words: next to a letter-spaced run, "a" reads as part of it.
_WORDS = st.lists(st.sampled_from(["the", "release", "notes", "are", "ready", "for", "review", "by", "Friday", "and", "all", "owners", "agree"]), min_size=1, max_size=12)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(kind=_SECRET_KINDS, form=_FORM_NAMES, seed=st.integers(0, 2**32 - 1), before=_WORDS, after=_WORDS)
def test_property_obfuscated_secrets_are_detected_and_redaction_is_idempotent(
    kind: str, form: str, seed: int, before: list[str], after: list[str]
) -> None:
    value = _secrets(random.Random(seed))[kind]
    hidden = FORMS[form](value)
    prefix, suffix = " ".join(before) + " ", " " + " ".join(after)
    text = prefix + hidden + suffix
    result = REDACTOR.apply(text)
    assert result.findings
    # Every finding lies inside the planted span: clean words around it are left alone.
    for f in result.findings:
        assert len(prefix) <= f.start and f.end <= len(prefix) + len(hidden), (f, text)
    assert result.text.startswith(prefix) and result.text.endswith(suffix)
    assert REDACTOR.apply(result.text).text == result.text


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["Release", "notes", "for", "version", "2", "of", "the", "service", "are", "ready;", "owners:", "docs", "team.", "Über", "naïve", "café", "3", "items"]), max_size=40))
def test_property_clean_text_has_no_finding(words: list[str]) -> None:
    assert REDACTOR.scan(" ".join(words)) == []
