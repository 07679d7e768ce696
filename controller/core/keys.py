"""Store keys: the one rule of what a key may be, shared by every ``Store`` backend.

Keys are ``/``-separated relative paths. ``validate_key`` refuses anything that could escape
the store's root or alias another key on some backend: empty keys or segments, absolute paths,
``.``/``..``, backslashes, NUL and other control characters. Segments starting with ``.`` are
reserved for store internals (LocalStore keeps its lock and temp files there), so they are
refused everywhere and every backend accepts exactly the same keys. Bad keys raise
``InvalidInput`` (exit 2).
"""

from __future__ import annotations

from controller.errors import InvalidInput

__all__ = ["MAX_KEY_BYTES", "validate_key", "validate_prefix"]

# S3's own limit; enforced everywhere so a key that works locally also works at scale.
MAX_KEY_BYTES = 1024


def _problem(text: str, what: str) -> str | None:
    if not isinstance(text, str):
        return f"must be a string, not {type(text).__name__}"
    if len(text.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        return f"is longer than {MAX_KEY_BYTES} bytes"
    if "\\" in text:
        return "contains a backslash"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        return "contains NUL or another control character"
    if any(0xD800 <= ord(c) <= 0xDFFF for c in text):
        return "contains a lone surrogate (not valid UTF-8)"
    if text.startswith("/"):
        return f"must be a relative {what}, not absolute"
    return None


def validate_key(key: str) -> str:
    """Return ``key`` unchanged when it is a safe store key, else raise ``InvalidInput``."""
    problem = _problem(key, "key")
    if problem is None:
        if key == "":
            problem = "is empty"
        else:
            for segment in key.split("/"):
                if segment == "":
                    problem = "has an empty segment ('//' or a trailing '/')"
                    break
                if segment.startswith("."):
                    problem = (
                        f"has segment {segment!r}: segments may not start with '.' "
                        "('.' and '..' would traverse; dot-names are reserved for the store)"
                    )
                    break
    if problem is not None:
        raise InvalidInput(f"Invalid store key {key!r}: it {problem}.")
    return key


def validate_prefix(prefix: str) -> str:
    """A list prefix: ``""``, or a key, or a key followed by ``/``; a partial last segment
    (``"audit/wf/0000"``) is allowed, as in S3."""
    problem = _problem(prefix, "prefix")
    if problem is None and prefix:
        segments = prefix.split("/")
        # the last segment may be empty (trailing '/') or a partial name
        for i, segment in enumerate(segments):
            last = i == len(segments) - 1
            if segment == "" and not last:
                problem = "has an empty segment ('//')"
                break
            if segment.startswith("."):
                problem = f"has segment {segment!r}: segments may not start with '.'"
                break
    if problem is not None:
        raise InvalidInput(f"Invalid store prefix {prefix!r}: it {problem}.")
    return prefix
