"""Thin Lambda entry points. Each one imports ``controller`` lazily and holds no logic of its own
beyond adapting an AWS event to the controller call (the redaction drain's pure parts are
tested without AWS)."""
