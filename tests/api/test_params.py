"""Every bad parameter is a 400 whose JSON names it; nothing a client sends makes a 500."""

from __future__ import annotations

import pytest

from api import cursor, times
from api.errors import ApiError
from tests.support.api_world import READ, ApiClient

SERIES = "/v1/devices/dev-000001/series?metric=temperature_c"
BAD = [
    # (path and query, the parameter the 400 names)
    ("/v1/devices/bad%20id/latest", "device_id"),
    ("/v1/devices/" + "x" * 129 + "/latest", "device_id"),
    ("/v1/devices/dev-1/latest?extra=1", "extra"),
    ("/v1/devices/bad%2Fid/series?metric=temperature_c", "device_id"),
    ("/v1/devices/dev-1/series", "metric"),
    ("/v1/devices/dev-1/series?metric=Temperature", "metric"),
    ("/v1/devices/dev-1/series?metric=a&metric=b", "metric"),
    (SERIES + "&from=yesterday", "from"),
    (SERIES + "&from=1999-12-31T00:00:00Z", "from"),
    (SERIES + "&to=nan", "to"),
    (SERIES + "&to=1e400", "to"),
    (SERIES + "&from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", "from"),
    (SERIES + "&from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z&step=1d", "from"),
    (SERIES + "&step=0", "step"),
    (SERIES + "&step=2d", "step"),
    (SERIES + "&step=5x", "step"),
    (SERIES + "&step=-5", "step"),
    (SERIES + "&from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z&step=5", "step"),
    (SERIES + "&agg=median", "agg"),
    (SERIES + "&form=2026-01-01", "form"),
    ("/v1/devices?limit=0", "limit"),
    ("/v1/devices?limit=1001", "limit"),
    ("/v1/devices?limit=ten", "limit"),
    ("/v1/devices?limit=%EF%BC%91", "limit"),  # a full-width digit
    ("/v1/devices?prefix=a%20b", "prefix"),
    ("/v1/devices?cursor=not-ours", "cursor"),
    ("/v1/devices?cursor=" + cursor.encode("dev-1")[:-2] + "!!", "cursor"),
    ("/v1/fleet?minutes=0", "minutes"),
    ("/v1/fleet?minutes=16", "minutes"),
]


@pytest.mark.integration
@pytest.mark.parametrize(("path", "parameter"), BAD)
async def test_a_bad_parameter_is_a_400_naming_it(
    api: ApiClient, path: str, parameter: str
) -> None:
    response = await api.get(path, headers=READ)
    body = await response.json()
    assert response.status == 400, body
    assert body["error"]["code"] == "invalid_parameter"
    assert body["error"]["parameter"] == parameter
    assert body["error"]["message"]


@pytest.mark.integration
async def test_no_such_route_and_wrong_method_are_json_too(api: ApiClient) -> None:
    missing = await api.get("/v1/nothing", headers=READ)
    assert missing.status == 404
    assert (await missing.json())["error"]["code"] == "not_found"
    wrong = await api.post("/v1/devices", headers=READ)
    assert wrong.status == 405
    assert wrong.headers["Allow"] == "GET,HEAD"
    assert (await wrong.json())["error"]["status"] == 405


def test_times_are_rfc3339_or_unix_seconds() -> None:
    assert times.parse("2026-11-26T05:00:00Z") == 1795669200.0
    assert times.parse("2026-11-26T06:00:00+01:00") == 1795669200.0
    assert times.parse("2026-11-26T05:00:00") == 1795669200.0, "no zone is UTC"
    assert times.parse("1795669200.5") == 1795669200.5
    assert times.iso(1795669200.5) == "2026-11-26T05:00:00.500Z"
    for bad in ("", "tomorrow", "inf", "-1", "2200-01-01T00:00:00Z"):
        with pytest.raises(ValueError, match=r"isoformat|outside"):
            times.parse(bad)


def test_cursors_round_trip_and_reject_forgeries() -> None:
    assert cursor.decode(cursor.encode("lab.probe:7")) == "lab.probe:7"
    for forged in ("", "ZGV2", "%%%", cursor.encode("bad id")):
        with pytest.raises(ApiError) as error:
            cursor.decode(forged)
        assert error.value.parameter == "cursor"
