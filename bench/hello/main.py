"""The baseline: a bare functions-framework hello-world, nothing of ours imported."""

import functions_framework


@functions_framework.http
def hello(request):  # type: ignore[no-untyped-def]
    return "ok"
