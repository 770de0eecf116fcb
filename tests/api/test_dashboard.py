"""The dashboard in headless Chromium: it takes a key, draws every chart with data, and says
"delayed by" when the device's partition is past the SLO."""

from __future__ import annotations

import dataclasses
import re
import shutil
from pathlib import Path

import pytest

from api.lag import LAG
from tests.support import browser
from tests.support.api_world import PARTITION_OF, PARTITIONS, READ_KEY, Seeded, StartApi, until
from tests.support.lagsource import FakeLagSource

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _chromium() -> None:
    # make test installs it (scripts/ensure-tools.sh); a missing browser is a failure.
    assert browser.executable() is not None, "no Chromium: run scripts/ensure-tools.sh"


RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results"
FIRST_DEVICE = "dev-000001"  # the page picks the first device of the listing


async def test_the_dashboard_renders_live_data_with_its_freshness(
    seeded: Seeded, lag_source: FakeLagSource, start_api: StartApi, tmp_path: Path
) -> None:
    late = PARTITION_OF[FIRST_DEVICE]
    lag_source.lags = {p: (95.0 if p == late else 0.4 + p / 2) for p in range(PARTITIONS)}
    api = await start_api(dataclasses.replace(seeded.settings, api_lag_url=lag_source.url))
    app = api.app
    assert app is not None
    await until(lambda: app[LAG].view().status is not None)
    url = str(api.make_url("/")) + f"#key={READ_KEY}"

    async with browser.Browser(tmp_path / "profile") as page:
        await page.open(url)
        charts = "#series-chart, #ingest-chart, #lag-chart"
        await page.wait_for(
            f"[...document.querySelectorAll('{charts}')].every(c => Number(c.dataset.points) > 0)"
        )
        await page.wait_for("document.getElementById('lag-legend').children.length > 0")
        # the device's own freshness comes with its latest values, after the charts' data
        await page.wait_for(
            f"document.getElementById('device-freshness').textContent.startsWith('{FIRST_DEVICE}')"
        )
        banner = await page.evaluate("document.getElementById('device-freshness').textContent")
        rows = await page.evaluate("document.querySelectorAll('#latest-table tbody tr').length")
        kept = await page.evaluate("sessionStorage.getItem('streamgauge.apiKey')")
        fragment = await page.evaluate("location.hash")
        await page.screenshot(tmp_path / "dashboard.png")

    # 95 s when the lag was read, and older by the time the page asked (a busy machine: seconds)
    assert re.match(rf"{FIRST_DEVICE}: Delayed by 1 min (3[5-9]|4[0-9]) s", banner), banner
    assert rows == 2
    assert kept == READ_KEY
    assert fragment == "", "the key leaves the address bar"
    assert page.errors == []
    RESULTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(tmp_path / "dashboard.png", RESULTS / "dashboard.png")


async def test_without_a_key_the_page_asks_for_one(
    seeded: Seeded, lag_source: FakeLagSource, start_api: StartApi, tmp_path: Path
) -> None:
    api = await start_api(dataclasses.replace(seeded.settings, api_lag_url=lag_source.url))
    async with browser.Browser(tmp_path / "profile") as page:
        await page.open(str(api.make_url("/")))
        assert await page.wait_for("document.getElementById('key-dialog').open")
        reason = await page.evaluate("document.getElementById('key-reason').textContent")
    assert "Authorization: Bearer" in reason
