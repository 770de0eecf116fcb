"""Errors the API answers with: one JSON body for every 4xx and 5xx, never a traceback.

``{"error": {"status": 400, "code": "invalid_parameter", "message": "...", "parameter": "from"}}``;
an answer that knows its freshness carries it too (body and headers), even when it failed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from api.freshness import REQUEST_FRESHNESS, ClickHouseState

log = logging.getLogger(__name__)

CLICKHOUSE_FAILURES: dict[str, ClickHouseState] = {
    "clickhouse_timeout": "timeout",
    "clickhouse_unavailable": "unavailable",
}


class ApiError(Exception):
    """An answer other than success: its status, a stable code, one sentence for a human."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        parameter: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.parameter = parameter
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"status": self.status, "code": self.code, "message": self.message}
        if self.parameter is not None:
            error["parameter"] = self.parameter
        return {"error": error}


def bad_parameter(parameter: str, message: str) -> ApiError:
    return ApiError(400, "invalid_parameter", message, parameter)


def not_found(message: str) -> ApiError:
    return ApiError(404, "not_found", message)


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as error:
        return error_response(request, error)
    except web.HTTPException as http:
        if http.status < 400:
            raise
        return error_response(request, _from_http(http))
    except Exception:
        log.exception("%s %s failed", request.method, request.path)
        return error_response(
            request,
            ApiError(500, "internal", "The API failed to answer; the error is in its log."),
        )


def error_response(request: web.Request, error: ApiError) -> web.Response:
    body = error.body()
    headers = dict(error.headers)
    freshness = request.get(REQUEST_FRESHNESS)
    if freshness is not None:
        if error.code in CLICKHOUSE_FAILURES:
            freshness = freshness.failed(CLICKHOUSE_FAILURES[error.code])
        body["freshness"] = freshness.as_json()
        headers.update(freshness.headers())
    return web.json_response(body, status=error.status, headers=headers)


def _from_http(http: web.HTTPException) -> ApiError:
    """aiohttp's own answers (no such route, method not allowed) in our shape."""
    code = http.reason.lower().replace(" ", "_")
    headers = {"Allow": http.headers["Allow"]} if "Allow" in http.headers else {}
    message = {
        404: "No such route; /openapi.json lists every route.",
        405: "Method not allowed; /openapi.json lists every route and its methods.",
    }.get(http.status, http.reason)
    return ApiError(http.status, code, message, headers=headers)
