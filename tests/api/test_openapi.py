"""``/openapi.json`` is true: it documents every route and nothing else, and every answer
schemathesis provokes from it (all operations, with a valid key) is documented, follows its
schema and is never a 5xx."""

from __future__ import annotations

import dataclasses
import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import hypothesis
import pytest
import schemathesis
from prometheus_client.parser import text_string_to_metric_families
from schemathesis import Case
from schemathesis.checks import positive_data_acceptance

from api.app import create_app
from api.openapi import SPEC
from streams.settings import Settings
from tests.support.api import ApiProcess
from tests.support.api_world import BOTH_KEY, LAGS, Seeded
from tests.support.lagsource import FakeLagSource


def test_every_route_is_documented_and_nothing_else() -> None:
    app = create_app(Settings())
    served = {
        (resource.canonical, route.method.lower())
        for resource in app.router.resources()
        for route in resource
        if route.method != "HEAD"
    }
    documented = {(path, method) for path, item in SPEC["paths"].items() for method in item}
    assert served == documented


@pytest.fixture(scope="module")
def api_process(seeded: Seeded, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiProcess]:
    lag = FakeLagSource(seeded.settings.consumer_group, seeded.settings.topic, dict(LAGS))
    log = tmp_path_factory.mktemp("api") / "api.log"
    process = ApiProcess(dataclasses.replace(seeded.settings, api_lag_url=lag.url), log)
    yield process
    process.stop()
    lag.close()


schema = schemathesis.openapi.from_dict(SPEC)


@schema.auth()
class ApiKey:
    """Every generated request carries a key with both scopes (schemathesis knows it is set)."""

    def get(self, case: Case[Any], ctx: schemathesis.AuthContext) -> str:
        return BOTH_KEY

    def set(self, case: Case[Any], data: str, ctx: schemathesis.AuthContext) -> None:
        case.headers["Authorization"] = f"Bearer {data}"


@pytest.mark.integration
def test_the_served_reference_is_this_one(api_process: ApiProcess) -> None:
    with urllib.request.urlopen(f"{api_process.url}/openapi.json") as response:
        assert json.load(response) == json.loads(json.dumps(SPEC))


@pytest.mark.integration
@pytest.mark.serial  # pytest-xdist would run one operation's subtest, not every one
@schema.parametrize()
@hypothesis.settings(max_examples=50, deadline=None)
def test_every_answer_follows_the_reference(case: Case[Any], api_process: ApiProcess) -> None:
    case.call_and_validate(
        base_url=api_process.url,
        # Schema-valid is not always acceptable: from < to, the span and the point cap join
        # parameters, which a schema cannot say; those answers are documented 400s.
        excluded_checks=[positive_data_acceptance],
    )


@pytest.mark.integration
@pytest.mark.serial
def test_the_fuzzing_got_through_to_every_route(api_process: ApiProcess) -> None:
    """After the fuzzing above (file order): the key was sent, every route answered 200."""
    request = urllib.request.Request(
        f"{api_process.url}/metrics", headers={"Authorization": f"Bearer {BOTH_KEY}"}
    )
    with urllib.request.urlopen(request) as response:
        text = response.read().decode()
    answered: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "streamgauge_api_requests_total" and sample.value:
                answered.setdefault(sample.labels["route"], set()).add(sample.labels["status"])
    if set(answered) <= {"/openapi.json", "/metrics"}:
        pytest.skip("run with the fuzzing above")
    for path in SPEC["paths"]:
        assert "200" in answered.get(path, set()), (path, answered.get(path))
