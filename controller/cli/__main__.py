"""``python -m controller.cli``: the same entry point as the ``rollout`` console script."""

from controller.cli import main

main()
