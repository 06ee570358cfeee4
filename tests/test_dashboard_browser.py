"""The dashboard in headless Chromium: the series list, and a series chart with anomaly markers.

Screenshots land in test-artifacts/ (gitignored).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rushhour.store import open_store
from tests.api_helpers import TOKEN, live_server, seed, settings_for
from tests.conftest import need_service

CHROMIUM = os.environ.get("RUSHHOUR_TEST_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).parents[1] / "test-artifacts"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = pytest.mark.services


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    need_service(
        "Chromium",
        Path(CHROMIUM).is_file() or shutil.which(CHROMIUM) is not None,
        f"set RUSHHOUR_TEST_CHROMIUM; tried {CHROMIUM}",
    )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Any]]:
    tmp = tmp_path_factory.mktemp("dash")
    settings = settings_for(tmp, token=TOKEN)
    store = open_store(settings.store_url())
    seeded = seed(store, settings)
    try:
        with live_server(settings, store) as (url, _):
            yield url, seeded
    finally:
        store.close()


def _page(browser: Any) -> Any:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    # the dashboard works offline: any request leaving 127.0.0.1 fails the test
    outside: list[str] = []
    page.on(
        "request", lambda r: None if r.url.startswith("http://127.0.0.1") else outside.append(r.url)
    )
    page.errors, page.outside = errors, outside
    return page


def test_series_list_shows_status_and_sparkline(browser: Any, site: tuple[str, Any]) -> None:
    url, seeded = site
    page = _page(browser)
    page.goto(url + "/")
    page.wait_for_selector("table tbody tr")
    row = page.locator("table tbody tr").first
    assert seeded.key.split("{")[0] in row.inner_text()
    assert row.locator("svg.spark polyline").count() == 1
    assert row.locator(".badge").inner_text() in ("ok", "anomalous")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard-series-list.png"))
    assert page.errors == [] and page.outside == []


def test_series_chart_renders_band_anomalies_and_forecast(
    browser: Any, site: tuple[str, Any]
) -> None:
    url, seeded = site
    page = _page(browser)
    page.goto(f"{url}/ui/series/{seeded.series_id}")
    page.wait_for_selector("#chart .uplot canvas")
    page.wait_for_selector("#score .uplot canvas")
    markers = int(page.locator("#chart").get_attribute("data-anomalies") or 0)
    assert markers == seeded.anomalies > 0
    legend = page.locator("#chart .u-legend").inner_text()
    for name in ("requests", "expected", "anomaly", "forecast"):
        assert name in legend
    assert page.locator("#anoms table tbody tr").count() == min(seeded.anomalies, 50)
    # the canvas is not blank: the plot drew pixels in the series colours
    drawn = page.evaluate(
        """() => { const c = document.querySelector('#chart canvas');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let blue = 0, red = 0;
        for (let i = 0; i < d.length; i += 4) {
          if (d[i] < 60 && d[i+1] < 100 && d[i+2] > 180) blue++;
          if (d[i] > 200 && d[i+1] < 60 && d[i+2] < 60) red++; }
        return {blue, red}; }"""
    )
    assert drawn["blue"] > 500 and drawn["red"] > 20, drawn
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard-series.png"), full_page=True)
    # zoom: drag across the chart; the server answers a finer step for the narrower range
    box = page.locator("#chart .u-over").bounding_box()
    assert box is not None
    before = page.locator("#note").inner_text()
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + 50)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.45, box["y"] + 50, steps=5)
    page.mouse.up()
    page.wait_for_function(f"document.querySelector('#note').innerText !== {before!r}")
    assert "one per 1 min" in page.locator("#note").inner_text()
    assert page.errors == [] and page.outside == []


def test_alerts_page_explains_anomalies(browser: Any, site: tuple[str, Any]) -> None:
    url, seeded = site
    page = _page(browser)
    page.goto(url + "/ui/alerts")
    page.wait_for_selector("#anomalies table tbody tr")
    assert "No alerts sent yet." in page.locator("#alerts").inner_text()
    assert page.locator("#anomalies table tbody tr").count() == min(seeded.anomalies, 100)
    assert "vs expected" in page.locator("#anomalies table tbody tr").first.inner_text()
    assert page.errors == []


def test_upload_a_file_and_see_its_results(
    browser: Any, site: tuple[str, Any], tmp_path: Path
) -> None:
    url, _ = site
    csv = tmp_path / "shop.csv"
    csv.write_text(
        "timestamp,value,shop\n2026-02-16T10:00:00Z,5,berlin\n2026-02-16T10:01:00Z,x,berlin\n"
    )
    page = _page(browser)
    page.goto(url + "/ui/upload")
    page.fill("#tok", TOKEN)
    page.set_input_files("input[type=file]", str(csv))
    page.fill("input[name=series]", "orders")
    page.click("button.primary")
    page.wait_for_selector("#result .panel")
    text = page.locator("#result").inner_text()
    assert "1 points committed" in text and "1 × value not a number" in text
    assert page.locator("#result a", has_text="orders{shop=berlin}").count() == 1
    page.screenshot(path=str(ARTIFACTS / "dashboard-upload.png"))
    assert page.errors == []


def test_an_alert_link_opens_the_chart_on_its_range(browser: Any, site: tuple[str, Any]) -> None:
    url, seeded = site
    page = _page(browser)
    # the link notify puts in alerts: <dashboard_url>/series/<id>?from=..&to=..
    page.goto(f"{url}/series/{seeded.series_id}?from=2026-03-16T09:00:00Z&to=2026-03-16T11:00:00Z")
    page.wait_for_selector("#chart .uplot canvas")
    assert page.url.startswith(f"{url}/ui/series/{seeded.series_id}?from=")
    assert "one per 1 min" in page.locator("#note").inner_text()
    assert page.locator("#anoms table tbody tr").count() >= 1  # the 10:00 spike
    page.screenshot(path=str(ARTIFACTS / "dashboard-alert-link.png"))
    assert page.errors == [] and page.outside == []
