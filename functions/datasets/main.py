"""Cloud Function `datasets`."""

from __future__ import annotations

import functions_framework
from werkzeug.wrappers import Request, Response

from shared.http import Router

router = Router("datasets")


@functions_framework.http
def datasets(request: Request) -> Response:
    return router.handle(request)
