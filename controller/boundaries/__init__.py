"""Data boundaries: the normalised view, decoding layers, detector catalogue, scanner and redactor.

The public names are re-exported here, so callers do not depend on how the package is split into
modules.
"""

from controller.boundaries.catalogue import builtin_detectors
from controller.boundaries.detector import CATEGORIES, PLACEHOLDER_PREFIX, Detector, compile_pattern, placeholder
from controller.boundaries.scanner import Hit, Scanner
from controller.boundaries.selection import bundle_detectors, pattern_detector, resolve_detectors
from controller.boundaries.validators import iban_valid, luhn_valid, shannon_entropy

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
