"""The OpenAPI 3.1 document, generated from the routes' declared models.

Each `Route` declares its method, its path pattern and the pydantic models of
its body and query (the same models `ctx.body()` and `ctx.query()` parse
with), so the spec cannot drift from the validation. Path parameters are the
opaque ids `shared.http` admits (`[A-Za-z0-9_-]{1,128}`). Every operation
documents problem+json errors, with `Retry-After` and `RateLimit` headers on
429. Operations accept a Clerk session token as a bearer token; which of
them require one is the handler's decision, so the security requirement is
stated as optional rather than guessed.

Pure and deterministic: the same routes give the same document.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from shared.http.render import PROBLEM_JSON
from shared.http.routing import Route, Router

__all__ = ["PATH_PARAMETER_PATTERN", "document"]

PATH_PARAMETER_PATTERN = "^[A-Za-z0-9_-]{1,128}$"
_REF = "#/components/schemas/{model}"

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details.",
    "required": ["type", "title", "status", "detail", "request_id"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "request_id": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "loc": {"type": "array", "items": {"type": "string"}},
                    "msg": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        },
    },
    "additionalProperties": True,
}

_PROBLEM_CONTENT = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
_ERRORS: dict[str, dict[str, Any]] = {
    "400": {"description": "Malformed request", "content": _PROBLEM_CONTENT},
    "401": {"description": "Not authenticated", "content": _PROBLEM_CONTENT},
    "403": {"description": "Not allowed", "content": _PROBLEM_CONTENT},
    "404": {"description": "Not found, or not yours", "content": _PROBLEM_CONTENT},
    "409": {"description": "Conflict", "content": _PROBLEM_CONTENT},
    "413": {"description": "Body too large", "content": _PROBLEM_CONTENT},
    "422": {"description": "Validation failed", "content": _PROBLEM_CONTENT},
    "429": {
        "description": "Rate limited",
        "headers": {
            "Retry-After": {"schema": {"type": "integer", "minimum": 1}},
            "RateLimit": {"schema": {"type": "string"}},
            "RateLimit-Policy": {"schema": {"type": "string"}},
        },
        "content": _PROBLEM_CONTENT,
    },
    "5XX": {"description": "Server or upstream error", "content": _PROBLEM_CONTENT},
}


def _models(routes: list[Route]) -> list[type[BaseModel]]:
    seen: dict[type[BaseModel], None] = {}
    for route in routes:
        for model in (route.body, route.query):
            if model is not None:
                seen.setdefault(model, None)
    return list(seen)


def _query_parameters(schema: dict[str, Any], defs: dict[str, Any]) -> list[dict[str, Any]]:
    if "$ref" in schema:
        schema = defs[schema["$ref"].rsplit("/", 1)[-1]]
    required = set(schema.get("required", []))
    return [
        {"name": name, "in": "query", "required": name in required, "schema": prop}
        for name, prop in schema.get("properties", {}).items()
    ]


def _operation_id(route: Route, function: str, taken: set[str]) -> str:
    base = route.action or f"{function}.{route.handler.__name__}"
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base}.{n}", n + 1
    taken.add(candidate)
    return candidate


def document(
    routers: Iterable[Router],
    *,
    title: str = "Cosma API",
    version: str = "1",
    server_url: str = "",
) -> dict[str, Any]:
    """The OpenAPI 3.1 document for every route of `routers`."""
    routers = list(routers)
    routes = [(router.function, route) for router in routers for route in router.routes]
    models = _models([route for _, route in routes])
    keyed, top = (
        models_json_schema([(m, "validation") for m in models], ref_template=_REF)
        if models
        else ({}, {})
    )
    schemas: dict[str, Any] = dict(top.get("$defs", {}))
    schemas["Problem"] = PROBLEM_SCHEMA

    paths: dict[str, dict[str, Any]] = {}
    taken: set[str] = set()
    for function, route in routes:
        operation: dict[str, Any] = {
            "operationId": _operation_id(route, function, taken),
            "summary": route.summary or route.handler.__name__.replace("_", " "),
            "tags": [function],
            "security": [{"bearerAuth": []}, {}],
            "parameters": [
                {
                    "name": name,
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "pattern": PATH_PARAMETER_PATTERN},
                }
                for name in route.names
            ],
            "responses": {
                "2XX": {"description": "Success", "content": {"application/json": {"schema": {}}}},
                **_ERRORS,
            },
        }
        if route.query is not None:
            operation["parameters"] += _query_parameters(
                keyed[(route.query, "validation")], schemas
            )
        if route.body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": keyed[(route.body, "validation")]}},
            }
        paths.setdefault(route.pattern, {})[route.method.lower()] = operation

    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
    }
    if server_url:
        doc["servers"] = [{"url": server_url}]
    return doc
