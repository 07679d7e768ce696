"""ai-rollout: one sanctioned AI workflow on auditable rails.

The package is a functional core (spec, release, boundaries, gates, flag rendering, audit
hashing) with thin I/O adapters behind Protocols and one CLI, ``rollout``.
"""

__version__ = "0.1.0"
