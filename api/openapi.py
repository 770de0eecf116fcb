"""``GET /openapi.json``: the API's reference, OpenAPI 3.1, checked against the routes by tests.

Written out by hand, next to nothing but itself: tests/api/test_openapi.py keeps it true (every
route documented and nothing else; schemathesis checks every answer against it).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from api import devices, fleet, series
from api.auth import public
from api.params import DEVICE_PREFIX
from streams.validate import DEVICE_ID, METRIC

routes = web.RouteTableDef()

JSON = "application/json"
_TIME = {"type": "string", "format": "date-time"}
_NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _object(properties: dict[str, Any], optional: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": [name for name in properties if name not in optional],
        "additionalProperties": False,
    }


SCHEMAS: dict[str, Any] = {
    "Freshness": {
        **_object(
            {
                "lag_seconds": {
                    "type": ["number", "null"],
                    "description": "Current lag of the worst of the partitions the device's "
                    "messages may be waiting on (`partitions`; for listings: of the worst "
                    "partition), from the lag exporter, aged to this answer; null when unknown, "
                    "never a made-up zero.",
                },
                "lag_messages": {"type": ["integer", "null"]},
                "stale": {
                    "type": ["boolean", "null"],
                    "description": "lag_seconds + age_seconds > slo_seconds; null when the lag "
                    "is unknown.",
                },
                "slo_seconds": {"type": "number"},
                "age_seconds": {
                    "type": "number",
                    "minimum": 0,
                    "description": "How long ago this answer's data was read from ClickHouse "
                    "(the short-TTL cache; longer when an earlier answer stands in for a "
                    "failed query).",
                },
                "partition": {
                    "type": ["integer", "null"],
                    "description": "The partition whose lag this is (null for listings).",
                },
                "partitions": {
                    "type": ["array", "null"],
                    "items": {"type": "integer", "minimum": 0},
                    "description": "The partitions the device's messages may be waiting on, "
                    "from where its readings arrived (null for listings).",
                },
                "partitions_basis": {
                    "enum": ["readings", "spread", "not-stored-yet", "unknown", "topic"],
                    "description": "Why those partitions: `readings`, those its readings "
                    "arrived on lately, plus partitions added to the topic since; every "
                    "partition when its readings arrive on several at once (`spread`), when "
                    "none is stored yet (`not-stored-yet`) or when ClickHouse could not say "
                    "(`unknown`); `topic` for listings.",
                },
                "partition_status": {
                    "type": ["string", "null"],
                    "description": "The lag exporter's status: OK, WARN, STALL, STOP, REWIND.",
                },
                "source": {"enum": ["lag-exporter", "unavailable"]},
                "lag_refreshed_at": _NULLABLE_TIME,
                "read_at": _NULLABLE_TIME,
                "clickhouse": {
                    "enum": ["ok", "timeout", "unavailable"],
                    "description": "How the ClickHouse part of this answer went.",
                },
                "detail": {
                    "type": ["string", "null"],
                    "description": "Why something is unknown or old.",
                },
            }
        ),
        "description": "How late the data in this answer may be.",
    },
    "Error": _object(
        {
            "error": _object(
                {
                    "status": {"type": "integer"},
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "parameter": {
                        "type": "string",
                        "description": "The request parameter at fault (400).",
                    },
                },
                optional=("parameter",),
            ),
            "freshness": _ref("Freshness"),
        },
        optional=("freshness",),
    ),
    "MetricValue": _object(
        {
            "metric": {"type": "string"},
            "value": {"type": "number"},
            "seq": {"type": "integer", "minimum": 0},
            "event_time": _TIME,
            "stored_at": _TIME,
        }
    ),
    "Latest": _object(
        {
            "device_id": {"type": "string"},
            "metrics": {"type": "array", "items": _ref("MetricValue"), "minItems": 1},
            "freshness": _ref("Freshness"),
        }
    ),
    "Series": _object(
        {
            "device_id": {"type": "string"},
            "metric": {"type": "string"},
            "agg": {"enum": list(series.AGGS)},
            "step_seconds": {"type": "integer", "minimum": 1},
            "from": {**_TIME, "description": "Start of the first bucket."},
            "to": {**_TIME, "description": "End of the last bucket (exclusive)."},
            "source": {"enum": ["readings_1m", "readings"]},
            "points": {
                "type": "array",
                "maxItems": series.MAX_POINTS,
                "items": _object(
                    {
                        "time": {**_TIME, "description": "Start of the bucket."},
                        "value": {"type": "number"},
                    }
                ),
            },
            "freshness": _ref("Freshness"),
        }
    ),
    "Device": _object(
        {
            "device_id": {"type": "string"},
            "first_seen": _TIME,
            "last_seen": _TIME,
            "firmware": {"type": ["string", "null"]},
            "site": {"type": ["string", "null"]},
            "metrics": {"type": "array", "items": {"type": "string"}},
        }
    ),
    "DeviceList": _object(
        {
            "devices": {"type": "array", "items": _ref("Device")},
            "next_cursor": {
                "type": ["string", "null"],
                "description": "Pass as `cursor` for the next page; null on the last page.",
            },
            "freshness": _ref("Freshness"),
        }
    ),
    "PartitionLag": _object(
        {
            "partition": {"type": "integer"},
            "lag_seconds": {"type": ["number", "null"]},
            "lag_messages": {"type": ["integer", "null"]},
            "status": {"type": "string"},
            "committed_offset": {"type": ["integer", "null"]},
            "end_offset": {"type": ["integer", "null"]},
        }
    ),
    "Fleet": _object(
        {
            "minutes": {"type": "integer"},
            "from": {**_TIME, "description": "Start of the first minute covered."},
            "ingest": {
                "type": ["array", "null"],
                "description": "Readings stored per event-time minute; null when ClickHouse "
                "failed (freshness.clickhouse says how).",
                "items": _object(
                    {
                        "minute": _TIME,
                        "readings": {"type": "integer", "minimum": 0},
                        "readings_per_second": {"type": "number", "minimum": 0},
                    }
                ),
            },
            "partitions": {"type": "array", "items": _ref("PartitionLag")},
            "lag_history": {
                "type": "array",
                "description": "Lag of every partition at each refresh of the lag exporter; "
                "lag_seconds[i] is partition i's.",
                "items": _object(
                    {
                        "time": _TIME,
                        "lag_seconds": {"type": "array", "items": {"type": ["number", "null"]}},
                    }
                ),
            },
            "freshness": _ref("Freshness"),
        }
    ),
    "Health": _object({"status": {"const": "ok"}}),
    "Check": _object(
        {
            "ok": {"type": "boolean"},
            "required": {"type": "boolean", "description": "whether readiness depends on it"},
            "detail": {
                "type": ["string", "null"],
                "description": "why it failed; only for a key with the metrics scope",
            },
        },
        optional=("detail",),
    ),
    "Ready": _object(
        {
            "status": {"enum": ["ready", "not ready"]},
            "checks": _object({"clickhouse": _ref("Check"), "lag_source": _ref("Check")}),
        }
    ),
}

_FRESHNESS_HEADERS = {
    "X-Streamgauge-Lag-Seconds": {
        "description": "freshness.lag_seconds, or `unknown`.",
        "schema": {"type": "string", "pattern": r"^(unknown|-?[0-9]+(\.[0-9]+)?)$"},
    },
    "X-Streamgauge-Stale": {
        "description": "freshness.stale: true, false or unknown.",
        "schema": {"enum": ["true", "false", "unknown"]},
    },
}
_CHALLENGE = {"WWW-Authenticate": {"schema": {"type": "string"}}}


def _json(description: str, schema: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {JSON: {"schema": _ref(schema)}},
    }
    if headers:
        response["headers"] = headers
    return response


def _errors(*statuses: int, fresh: bool = False) -> dict[str, Any]:
    descriptions = {
        400: "A parameter is invalid; error.parameter names it.",
        401: "No valid API key (`Authorization: Bearer <key>`).",
        403: "The API key lacks the scope this route needs.",
        404: "Never seen (or no such route).",
        503: "ClickHouse is unavailable; freshness is still given.",
        504: "ClickHouse did not answer in time; freshness is still given.",
    }
    responses = {}
    for status in statuses:
        headers: dict[str, Any] | None = _CHALLENGE if status in (401, 403) else None
        if fresh and status >= 500:
            headers = _FRESHNESS_HEADERS
        responses[str(status)] = _json(descriptions[status], "Error", headers)
    return responses


_READ: list[dict[str, list[str]]] = [{"bearer": []}]
_DEVICE_ID = {
    "name": "device_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": f"^{DEVICE_ID.pattern}$"},
    "example": "dev-000001",
}


def _query(name: str, schema: dict[str, Any], description: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "in": "query", "schema": schema, "description": description, **extra}


def _operation(
    operation_id: str,
    summary: str,
    responses: dict[str, Any],
    parameters: list[dict[str, Any]] | None = None,
    security: list[dict[str, list[str]]] | None = None,
    tag: str = "data",
) -> dict[str, Any]:
    return {
        "get": {
            "operationId": operation_id,
            "summary": summary,
            "tags": [tag],
            "parameters": parameters or [],
            "security": security if security is not None else [],
            "responses": responses,
        }
    }


PATHS: dict[str, Any] = {
    "/v1/devices/{device_id}/latest": _operation(
        "latest",
        "Every metric's latest value of one device, with event and storage times.",
        {
            "200": _json("The latest values and their freshness.", "Latest", _FRESHNESS_HEADERS),
            **_errors(400, 401, 403, 404, 503, 504, fresh=True),
        },
        [_DEVICE_ID],
        _READ,
    ),
    "/v1/devices/{device_id}/series": _operation(
        "series",
        "One metric of one device, downsampled into buckets of `step` seconds.",
        {
            "200": _json("The buckets and their freshness.", "Series", _FRESHNESS_HEADERS),
            **_errors(400, 401, 403, 404, 503, 504, fresh=True),
        },
        [
            _DEVICE_ID,
            _query(
                "metric",
                {"type": "string", "pattern": f"^{METRIC.pattern}$"},
                "The metric.",
                required=True,
                example="temperature_c",
            ),
            _query(
                "from",
                {"type": "string"},
                "Start: RFC 3339 (no zone means UTC) or Unix seconds; default `to` minus 1 h.",
            ),
            _query("to", {"type": "string"}, "End, exclusive: as `from`; default now."),
            _query(
                "step",
                {"type": "string", "pattern": r"^[0-9]{1,6}[smhd]?$", "example": "5m"},
                "Bucket size: seconds, or with a unit (90s, 5m, 1h, 1d), 1 s to 1 d. A whole "
                f"number of minutes reads the rollups. Default: the smallest of "
                f"{', '.join(str(s) for s in series.NICE_STEPS)} s giving at most "
                f"{series.AUTO_POINTS} buckets. At most {series.MAX_POINTS} buckets.",
            ),
            _query(
                "agg",
                {"enum": list(series.AGGS), "default": "avg"},
                "How a bucket's readings become one value.",
            ),
        ],
        _READ,
    ),
    "/v1/devices": _operation(
        "devices",
        "Every device ever seen, by device id, a page at a time.",
        {
            "200": _json("One page of devices.", "DeviceList", _FRESHNESS_HEADERS),
            **_errors(400, 401, 403, 503, 504, fresh=True),
        },
        [
            _query(
                "prefix",
                {"type": "string", "pattern": f"^{DEVICE_PREFIX.pattern}$"},
                "Only device ids starting with this.",
            ),
            _query(
                "limit",
                {"type": "integer", "minimum": 1, "maximum": devices.MAX_LIMIT, "default": 100},
                "Devices per page.",
            ),
            _query("cursor", {"type": "string"}, "`next_cursor` of the previous page."),
        ],
        _READ,
    ),
    "/v1/fleet": _operation(
        "fleet",
        "Readings stored per minute and lag per partition, now and over the last minutes.",
        {
            "200": _json("The fleet's picture.", "Fleet", _FRESHNESS_HEADERS),
            **_errors(400, 401, 403),
        },
        [
            _query(
                "minutes",
                {"type": "integer", "minimum": 1, "maximum": fleet.MAX_MINUTES, "default": 15},
                "How many minutes back.",
            )
        ],
        _READ,
    ),
    "/healthz": _operation(
        "healthz", "The process answers.", {"200": _json("Alive.", "Health")}, tag="operations"
    ),
    "/readyz": _operation(
        "readyz",
        "ClickHouse answers (the lag source is reported, not required).",
        {"200": _json("Ready.", "Ready"), "503": _json("Not ready; checks say why.", "Ready")},
        tag="operations",
    ),
    "/metrics": _operation(
        "metrics",
        "Prometheus metrics of this API process (needs the `metrics` scope).",
        {
            "200": {
                "description": "Prometheus text exposition format.",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            },
            **_errors(401, 403),
        },
        security=[{"bearer": []}],
        tag="operations",
    ),
    "/openapi.json": _operation(
        "openapi",
        "This document.",
        {"200": {"description": "OpenAPI 3.1.", "content": {JSON: {"schema": {"type": "object"}}}}},
        tag="operations",
    ),
    "/": _operation(
        "dashboard",
        "The live dashboard (asks for an API key, keeps it in sessionStorage).",
        {"200": {"description": "HTML.", "content": {"text/html": {"schema": {"type": "string"}}}}},
        tag="dashboard",
    ),
    "/static/{name}": _operation(
        "static",
        "The dashboard's script and style sheet.",
        {
            "200": {
                "description": "The file.",
                "content": {
                    "text/javascript": {"schema": {"type": "string"}},
                    "text/css": {"schema": {"type": "string"}},
                },
            },
            "404": _json("No such file.", "Error"),
        },
        [
            {
                "name": "name",
                "in": "path",
                "required": True,
                "schema": {"enum": ["dashboard.js", "dashboard.css"]},
            }
        ],
        tag="dashboard",
    ),
}

SPEC: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "streamgauge read API",
        "version": "1.0.0",
        "description": "Latest values, series and devices, each answer with its freshness: how "
        "late the data may be (docs/api.md). Every error is JSON: "
        '{"error": {"status", "code", "message", "parameter"?}}.',
    },
    "paths": PATHS,
    "components": {
        "schemas": SCHEMAS,
        "securitySchemes": {
            "bearer": {
                "type": "http",
                "scheme": "bearer",
                "description": "An API key; scopes `read` (data) and `metrics` (/metrics).",
            }
        },
    },
}


@routes.get("/openapi.json")
@public
async def openapi(_request: web.Request) -> web.Response:
    return web.json_response(SPEC)
