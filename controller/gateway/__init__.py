"""The data plane: one request path for ``rollout ask``, ``rollout serve`` and the Lambda.

    identity.py        verify the SSO token (the pure claims decision and the verifier)
    handler.py         the request path: identity, flags, release, boundaries, retrieval, model, audit
    http.py            the HTTP surface over the handler
    lambda_handler.py  the AWS Lambda entry point (API Gateway payload v2)

Its collaborators arrive through ``controller.ports`` and are wired in ``controller.service.compose``.
"""
