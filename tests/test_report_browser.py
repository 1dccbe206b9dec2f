"""The HTML dashboard in a real browser (headless Chromium through selenium and chromedriver).

Checks that every chart lays out with a non-zero size and draws its data points, that the page logs
no console error and fetches nothing (no resource entries at all: no fonts, scripts or images).
Needs the Debian packages chromium and chromium-driver and the pip package selenium. Without them the
tests skip with a message, except under CI=true, where a missing browser is a failure.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from _report_fixtures import chromium_paths, in_ci, model_doc, rich_doc

from vistasim.report.html import render_html

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,900",
)


def _missing(reason: str) -> None:
    if in_ci():
        pytest.fail(f"{reason} (CI=true: the browser checks must run; install chromium, chromium-driver and selenium)")
    pytest.skip(f"{reason}: apt-get install -y chromium chromium-driver && pip install selenium")


@pytest.fixture(scope="module")
def browser():
    paths = chromium_paths()
    if paths is None:
        _missing("Chromium or chromedriver not found on PATH")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _missing("selenium is not installed")
    options = webdriver.ChromeOptions()
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    profile = tempfile.TemporaryDirectory(prefix="vistasim-chromium-")
    options.add_argument(f"--user-data-dir={profile.name}")
    options.binary_location = paths[0]
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(paths[1]), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        profile.cleanup()


CHART_STATE = """
return Array.from(document.querySelectorAll('svg.chart')).map(function (svg) {
  var r = svg.getBoundingClientRect();
  var datums = Array.from(svg.querySelectorAll('.datum'));
  var drawn = datums.filter(function (d) { var b = d.getBBox(); return b.width > 0 || b.height > 0; });
  return {id: svg.id, w: r.width, h: r.height, points: parseInt(svg.getAttribute('data-points'), 10),
          datums: datums.length, drawn: drawn.length,
          values: datums.map(function (d) { return d.getAttribute('data-value'); })};
});
"""


def _open(browser, tmp_path: Path, html: str):
    page = tmp_path / "report.html"
    page.write_text(html, encoding="utf-8")
    browser.get_log("browser")  # drop anything logged before this page
    browser.get(page.as_uri())
    return browser.execute_script(CHART_STATE)


def _check_page(browser, charts) -> None:
    assert charts, "no charts found"
    for c in charts:
        assert c["w"] > 100 and c["h"] > 20, c["id"]
        assert c["datums"] == c["points"] > 0, c["id"]
    errors = [e for e in browser.get_log("browser") if e.get("level") in ("SEVERE", "ERROR")]
    assert errors == []
    resources = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name);")
    assert resources == []  # nothing fetched: no fonts, images, scripts or styles from anywhere
    nav = browser.execute_script("return performance.getEntriesByType('navigation').map(e => e.name);")
    assert all(u.startswith("file://") for u in nav)


def test_model_report_renders_every_chart_in_chromium(browser, tmp_path):
    doc = model_doc()
    charts = _open(browser, tmp_path, render_html(doc))
    _check_page(browser, charts)
    by_id = {c["id"]: c for c in charts}
    assert by_id["timeline-chart-1"]["datums"] == len(doc["batches"])
    assert by_id["quality-chart-2"]["datums"] == len(doc["quality_trends"]["batch_quality"])
    ft = doc["failure_analysis"]["failure_types"]
    assert sorted(int(v) for v in by_id["failures-chart-1"]["values"]) == sorted(v for v in ft.values() if v)
    # bars with a positive value have a visible box (zero counts may legitimately draw nothing)
    assert by_id["failures-chart-1"]["drawn"] == sum(1 for v in ft.values() if v)
    assert by_id["timeline-chart-1"]["drawn"] == len(doc["batches"])


def test_rich_report_with_data_mode_risk_and_comparison(browser, tmp_path):
    charts = _open(browser, tmp_path, render_html(rich_doc()))
    _check_page(browser, charts)
    kinds = browser.execute_script(
        "return Array.from(document.querySelectorAll('svg.chart')).map(s => s.getAttribute('class'));"
    )
    assert any("chart-bands" in k for k in kinds) and any("chart-gates" in k for k in kinds)
    tables = browser.execute_script("return document.querySelectorAll('table').length;")
    assert tables >= len(charts)


def test_console_errors_are_detected(browser, tmp_path):
    """The console check above is not vacuous: a page that logs an error is caught."""
    _open(browser, tmp_path, "<!DOCTYPE html><html><body><script>console.error('boom')</script></body></html>")
    logs = browser.get_log("browser")
    assert any("boom" in e.get("message", "") and e.get("level") == "SEVERE" for e in logs)
