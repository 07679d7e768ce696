"""The data-boundary detectors, as one public surface: the detector model, the builtin catalogue,
validators, bundle-pattern selection and the scanner live in their own modules
(``detector``, ``catalogue``, ``validators``, ``selection``, ``scanner``); this module
re-exports their public names so callers import from one place."""

from __future__ import annotations

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
