"""Cloud Function `sync`."""

from __future__ import annotations

import functions_framework
from werkzeug.wrappers import Request, Response

from shared.http import Router

router = Router("sync")


@functions_framework.http
def sync(request: Request) -> Response:
    return router.handle(request)
