"""Cloud Function `query`."""

from __future__ import annotations

import functions_framework
from werkzeug.wrappers import Request, Response

from shared.http import Router

router = Router("query")


@functions_framework.http
def query(request: Request) -> Response:
    return router.handle(request)
