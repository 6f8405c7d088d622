"""The differential flame graph (`ringprof diff -o diff.html`) in a real headless Chromium.

Same harness as test_html_viewer.py (system chromium + chromedriver, selenium;
console errors and dialogs fail the test). The models are diff_models.py's,
whose share changes are known exactly.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

if os.path.dirname(os.path.abspath(__file__)) not in sys.path:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import test_html_viewer as hv  # skips this module, with its reason, when selenium or chromium is missing
from diff_models import EXPECTED_SHARES, base_model, new_model
from test_html_viewer import browser, driver  # noqa: F401  (fixtures)

from ringprof import diff

pytestmark = pytest.mark.browser

MINUS = "\u2212"  # the viewer writes a real minus sign


def open_diff(drv: hv.WebDriver, tmp_path: Path) -> None:
    path = tmp_path / "diff.html"
    diff.write_html(base_model(), new_model(), path, base_name="base.pprof", new_name="new.pprof")
    drv.get(path.as_uri())
    hv.WebDriverWait(drv, 20).until(lambda d: d.execute_script(
        "return document.body.dataset.ready === '1' || !document.getElementById('error').hidden"))
    err = drv.find_element(hv.By.ID, "error")
    assert not err.is_displayed(), err.text


def tooltip(drv: hv.WebDriver, name: str) -> str:
    hv.hover(drv, name)
    return str(drv.find_element(hv.By.ID, "tooltip").text)


def test_hover_shows_both_shares_and_the_change(browser: hv.WebDriver, tmp_path: Path) -> None:  # noqa: F811
    open_diff(browser, tmp_path)
    tip = tooltip(browser, "c")
    assert "base.pprof → new.pprof (share of samples)" in tip
    assert "Total\n20.0% → 48.0%\n+28.00 pp" in tip
    assert "Self\n20.0% → 48.0%\n+28.00 pp" in tip
    assert "sampling noise (1 SE) ±" in tip
    tip = tooltip(browser, "b")  # total grew, self shrank
    assert "Total\n50.0% → 60.0%\n+10.00 pp" in tip and "Self\n30.0% → 12.0%\n" + MINUS + "18.00 pp" in tip
    tip = tooltip(browser, "d")  # only in NEW
    assert "Total\n0% → 20.0%\n+20.00 pp" in tip and "not sampled in base.pprof" in tip
    tip = tooltip(browser, "a")
    assert "Total\n50.0% → 20.0%\n" + MINUS + "30.00 pp" in tip
    # The details bar and the header say it too.
    assert "base.pprof total 50.0%, " + MINUS + "30.00 pp" in browser.find_element(hv.By.ID, "d-stats").text
    assert "base.pprof → new.pprof" in browser.find_element(hv.By.ID, "meta").text
    assert "red: share of samples grew since base.pprof" in browser.find_element(hv.By.ID, "legend").text


def test_shares_match_the_python_diff(browser: hv.WebDriver, tmp_path: Path) -> None:  # noqa: F811
    open_diff(browser, tmp_path)
    for name, (bs, ns, bt, nt) in EXPECTED_SHARES.items():
        got = hv.js(browser, "return window.ringprof.diffOf(arguments[0], 0)", name)
        assert got is not None, name
        assert (got["baseSelf"], got["newSelf"], got["baseTotal"], got["newTotal"]) == \
            pytest.approx((bs, ns, bt, nt), abs=1e-12), name
        assert got["inBase"] == (name != "d")


def test_colours_follow_the_sign_of_the_change(browser: hv.WebDriver, tmp_path: Path) -> None:  # noqa: F811
    open_diff(browser, tmp_path)
    red = [hv.pixel(browser, name) for name in ("c", "d", "b")]  # grew 28, 20, 10 pp (total)
    blue = hv.pixel(browser, "a")  # shrank 30 pp
    grey = hv.pixel(browser, "main")  # unchanged (100 % in both)
    for r, g, b, _a in red:
        assert r > b + 40 and r > g + 20, red
    assert blue[2] > blue[0] + 40, blue
    assert max(grey[:3]) - min(grey[:3]) < 16, grey
    # Stronger change, stronger colour: c (+28) is more saturated than b (+10).
    sat = [r - b for r, _g, b, _a in red]
    assert sat[0] > sat[2], red


def test_plain_page_has_no_diff(browser: hv.WebDriver, tmp_path: Path) -> None:  # noqa: F811
    hv.load(browser, tmp_path, new_model())
    assert hv.js(browser, "return window.ringprof.diffOf('c', 0)") is None
    assert "pp" not in tooltip(browser, "c")
    assert "colours are hashed by file" in browser.find_element(hv.By.ID, "legend").text


def test_hostile_names_stay_text(browser: hv.WebDriver, tmp_path: Path) -> None:  # noqa: F811
    from html_models import XSS_NAME, XSS_SCRIPT, xss_model

    path = tmp_path / "xss.html"
    diff.write_html(xss_model(), xss_model(), path, base_name=XSS_SCRIPT, new_name=XSS_NAME)
    browser.get(path.as_uri())
    hv.WebDriverWait(browser, 20).until(lambda d: d.execute_script("return document.body.dataset.ready === '1'"))
    assert hv.js(browser, "return window.__xss === undefined")
    assert XSS_SCRIPT in browser.find_element(hv.By.ID, "meta").text  # shown as text
    assert not browser.find_elements(hv.By.CSS_SELECTOR, "img, svg:not(.logo)")
    # The browser fixture fails the test on any dialog (alert) or console error.
