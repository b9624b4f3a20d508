"""Baseline: the bare functions-framework hello function, served the same way as ours."""

import functions_framework


@functions_framework.http
def hello(request):  # type: ignore[no-untyped-def]
    return {"status": "ok"}
