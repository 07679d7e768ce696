"""The ai-rollout policy pack: ``policies`` (importable, testable) and ``__main__`` (the pack)."""
