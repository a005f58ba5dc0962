"""Cloud Function `oauth`."""

from __future__ import annotations

import functions_framework
from werkzeug.wrappers import Request, Response

from shared.http import Router

router = Router("oauth")


@functions_framework.http
def oauth(request: Request) -> Response:
    return router.handle(request)
