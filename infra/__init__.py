"""The Pulumi program that provisions one sanctioned workflow on AWS, and its Lambda handlers.

Nothing here imports Pulumi at package level: ``infra.handlers`` ships inside the Lambda
archive (see ``infra.build_archive``) next to the ``controller`` package, and
``controller.core.provisioning``/``infra.policies`` are shared with the policy pack.
"""
