"""The one exception root of ai-rollout, and the exit code each failure maps to.

    RolloutError                 exit 1   (base; never raised bare)
    ├── InvalidInput             exit 2   bad bundle, bad flag, bad argument, tampered evidence
    │   └── BundleInvalid        exit 2   a workflow bundle failed validation (all problems at once)
    ├── RefusedError             exit 3   a gate said no (eval FAIL, promotion refused)
    ├── Conflict                 exit 4   a concurrent change won (lock held, CAS failed)
    └── BackendUnavailable       exit 5   a store, flag source or model endpoint cannot be reached
        └── EvalInconclusive     exit 5   an eval could not judge: the model or a dependency was
                                          unavailable for some cases (stored; rolls nothing back)

``RefusedError`` is the exception a command raises to exit 3; the gate's own refusal is a value,
``controller.core.gates.Refused``, which the service turns into that exit code.

The CLI catches ``RolloutError``, prints one clear paragraph and exits with ``exit_code``;
anything else escaping is a bug and keeps its traceback.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "BackendUnavailable",
    "BundleInvalid",
    "Conflict",
    "EvalInconclusive",
    "InvalidInput",
    "Problem",
    "RefusedError",
    "RolloutError",
]


class RolloutError(Exception):
    """Base of every user-facing failure; carries the process exit code."""

    exit_code = 1


class InvalidInput(RolloutError):
    exit_code = 2


@dataclass(frozen=True)
class Problem:
    """One validation problem: where (file, field path, line) and what is wrong."""

    file: str
    field: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        field = f" {self.field}:" if self.field else ""
        return f"{where}:{field} {self.message}"

    def to_dict(self) -> dict[str, object]:
        return {"file": self.file, "field": self.field, "line": self.line, "message": self.message}


class BundleInvalid(InvalidInput):
    """Every problem found in a bundle, reported at once."""

    def __init__(self, bundle: str, problems: Sequence[Problem]):
        self.bundle = bundle
        self.problems = tuple(problems)
        lines = "\n".join(f" - {p}" for p in self.problems)
        count = f"{len(self.problems)} problem{'s' if len(self.problems) != 1 else ''}"
        super().__init__(f"Invalid workflow bundle {bundle} ({count}):\n{lines}")


class RefusedError(RolloutError):
    exit_code = 3


class Conflict(RolloutError):
    exit_code = 4


class BackendUnavailable(RolloutError):
    exit_code = 5


class EvalInconclusive(BackendUnavailable):
    """An eval whose verdict is INCONCLUSIVE (``controller.core.verdict``): no fresh evidence."""
