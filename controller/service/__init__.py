"""The service layer: load -> decide -> save, and the one place that wires everything.

    rollout.py   RolloutService: promote, rollback, kill, release-kill, reconcile, status, verify
    publish.py   the one flag publish path (every sink; the never-un-kill rule)
    compose.py   the composition root for the CLI, the server and the Lambdas
"""
