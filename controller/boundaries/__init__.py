"""Data boundaries: the normalised view, decoding layers, detector catalogue, scanner and redactor.

The public names are re-exported here (and from ``controller.boundaries.detectors``), so callers do
not depend on how the package is split into modules.
"""

from controller.boundaries.detectors import (
    CATEGORIES,
    PLACEHOLDER_PREFIX,
    Detector,
    Hit,
    Scanner,
    builtin_detectors,
    bundle_detectors,
    compile_pattern,
    iban_valid,
    luhn_valid,
    pattern_detector,
    placeholder,
    resolve_detectors,
    shannon_entropy,
)

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
