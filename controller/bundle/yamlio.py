"""YAML loading that remembers where every value came from.

Validation messages must name the file, the field and the line, so bundles are read with
ruamel's round-trip loader (which records positions) and converted to plain Python values
plus a map from field path to 1-based line number.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

__all__ = ["LineMap", "YamlDocument", "YamlSyntaxError", "line_for", "load_yaml", "parse_yaml"]

LineMap = dict[tuple[str | int, ...], int]


class YamlSyntaxError(Exception):
    """The file is not well-formed YAML; ``line`` is 1-based when known."""

    def __init__(self, message: str, line: int | None):
        super().__init__(message)
        self.line = line


class YamlDocument:
    """Plain data plus the line of every key and list item."""

    def __init__(self, data: Any, lines: LineMap):
        self.data = data
        self.lines = lines


def load_yaml(path: Path) -> YamlDocument:
    """Parse ``path``; raise ``YamlSyntaxError`` (never a ruamel exception) when malformed."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise YamlSyntaxError(f"not UTF-8 text ({exc.reason})", None) from None
    return parse_yaml(text)


def parse_yaml(text: str) -> YamlDocument:
    """Parse YAML text; raise ``YamlSyntaxError`` (never a ruamel exception) when malformed."""
    yaml = YAML(typ="rt", pure=True)
    yaml.allow_duplicate_keys = False
    try:
        raw = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "malformed YAML"
        raise YamlSyntaxError(f"malformed YAML: {problem}", line) from None
    except YAMLError as exc:
        raise YamlSyntaxError(f"malformed YAML: {exc}", None) from None
    lines: LineMap = {}
    return YamlDocument(_plain(raw, (), lines), lines)


def _plain(node: Any, path: tuple[str | int, ...], lines: LineMap) -> Any:
    if isinstance(node, CommentedMap):
        out: dict[Any, Any] = {}
        for key, value in node.items():
            with contextlib.suppress(KeyError, TypeError, AttributeError):
                lines[(*path, str(key))] = node.lc.key(key)[0] + 1
            out[str(key) if not isinstance(key, str) else key] = _plain(value, (*path, str(key)), lines)
        return out
    if isinstance(node, CommentedSeq):
        items = []
        for index, value in enumerate(node):
            with contextlib.suppress(KeyError, TypeError, AttributeError, IndexError):
                lines[(*path, index)] = node.lc.item(index)[0] + 1
            items.append(_plain(value, (*path, index), lines))
        return items
    if isinstance(node, Mapping):
        return {k: _plain(v, (*path, str(k)), lines) for k, v in node.items()}
    if isinstance(node, str):
        return str(node)
    if isinstance(node, bool | int | float) or node is None:
        return node
    if isinstance(node, dt.datetime | dt.date):
        return node
    if isinstance(node, Sequence):
        return [_plain(v, (*path, i), lines) for i, v in enumerate(node)]
    return node


def line_for(lines: LineMap, loc: Sequence[str | int]) -> int | None:
    """Line of the deepest known prefix of ``loc`` (pydantic error locations included)."""
    key = tuple(loc)
    while key:
        if key in lines:
            return lines[key]
        key = key[:-1]
    return None
