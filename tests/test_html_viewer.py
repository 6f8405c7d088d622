"""The HTML flame graph viewer, driven in a real headless Chromium.

Needs the Debian packages ``chromium`` and ``chromium-driver`` and selenium from
PyPI (no browser download: the system binaries are used; override their paths
with ``RINGPROF_CHROMIUM`` / ``RINGPROF_CHROMEDRIVER``). Skipped with a reason
when any of them is missing.

Every page is loaded from a ``file://`` URL with ``alert``/``confirm``/
``prompt`` replaced (before any page script runs, via the DevTools protocol) by
functions that only record their calls, so a successful XSS is observed
instead of blocking the browser; each test also fails on any browser console
error. Set ``RINGPROF_UPDATE_SCREENSHOT=1`` to refresh ``docs/flamegraph.png``.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ringprof.exporters import html
from ringprof.model import Frame, ProfileData

if os.path.dirname(os.path.abspath(__file__)) not in sys.path:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from html_models import (
    MAIN_TID,
    XSS_FILE,
    XSS_LABEL,
    XSS_NAME,
    XSS_SCRIPT,
    big_model,
    realistic_model,
    simple_model,
    xss_model,
)

CHROMIUM = os.environ.get("RINGPROF_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = (os.environ.get("RINGPROF_CHROMEDRIVER") or shutil.which("chromedriver")
                or "/usr/bin/chromedriver")
REPO = Path(__file__).resolve().parent.parent

webdriver = pytest.importorskip(
    "selenium.webdriver", reason="selenium is not installed (pip install selenium) - browser tests skipped")
if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
    pytest.skip(f"chromium/chromedriver not found at {CHROMIUM} / {CHROMEDRIVER} "
                "(apt-get install chromium chromium-driver) - browser tests skipped", allow_module_level=True)

from selenium.common.exceptions import NoAlertPresentException  # noqa: E402
from selenium.webdriver import Chrome as WebDriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.actions.action_builder import ActionBuilder  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

#: Seconds a page may take to show a change on a loaded CI machine (the condition must still come true).
UI_WAIT = 30

pytestmark = pytest.mark.browser

DIALOG_TRAP = """
window.__dialogs = [];
for (const k of ["alert", "confirm", "prompt"]) {
  window[k] = function (m) { window.__dialogs.push(k + ":" + String(m)); return null; };
}
"""


@pytest.fixture(scope="module")
def driver() -> Iterator[WebDriver]:
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,900", "--force-device-scale-factor=1", "--force-color-profile=srgb",
                "--hide-scrollbars", "--lang=en-US"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    try:
        drv.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": DIALOG_TRAP})
        yield drv
    finally:
        drv.quit()


@pytest.fixture()
def browser(driver: WebDriver) -> Iterator[WebDriver]:
    """The shared driver, checked for console errors and dialogs after each test."""
    console_log = driver.get_log  # untyped in selenium's stubs
    console_log("browser")  # type: ignore[no-untyped-call]  # drop anything earlier tests left
    yield driver
    entries: list[dict[str, Any]] = console_log("browser")  # type: ignore[no-untyped-call]
    errors = [e for e in entries if e.get("level") == "SEVERE"]
    assert not errors, f"browser console errors: {errors}"
    try:
        dialogs = driver.execute_script("return window.__dialogs || []")
    except Exception:  # the page may be gone; nothing to check then
        dialogs = []
    assert dialogs == [], f"page opened dialogs: {dialogs}"


def load(drv: WebDriver, tmp_path: Path, data: ProfileData, name: str = "profile.html",
         **options: Any) -> float:
    """Render, open via file:// and wait for the first paint; returns seconds taken."""
    path = tmp_path / name
    path.write_bytes(html.render(data, **options))
    t0 = time.perf_counter()
    drv.get(path.as_uri())
    WebDriverWait(drv, 20).until(lambda d: d.execute_script(
        "return document.body.dataset.ready === '1' || !document.getElementById('error').hidden"))
    elapsed = time.perf_counter() - t0
    err = drv.find_element(By.ID, "error")
    assert not err.is_displayed(), err.text
    return elapsed


def js(drv: WebDriver, script: str, *args: Any) -> Any:
    return drv.execute_script(script, *args)


def rect(drv: WebDriver, name: str, nth: int = 0) -> dict[str, float]:
    r = js(drv, "return window.ringprof.rectOf(arguments[0], arguments[1])", name, nth)
    assert r is not None, f"no box for {name!r}"
    return dict(r)


def move_to(drv: WebDriver, x: float, y: float) -> None:
    ab = ActionBuilder(drv)
    ab.pointer_action.move_to_location(int(x), int(y))  # type: ignore[no-untyped-call]
    ab.perform()


def click_at(drv: WebDriver, x: float, y: float) -> None:
    ab = ActionBuilder(drv)
    ab.pointer_action.move_to_location(int(x), int(y)).click()  # type: ignore[no-untyped-call]
    ab.perform()


def hover(drv: WebDriver, name: str, nth: int = 0) -> None:
    r = rect(drv, name, nth)
    if not 0 <= r["cy"] < js(drv, "return window.innerHeight"):  # deep graphs: bring the box into view
        js(drv, "window.scrollBy(0, arguments[0] - window.innerHeight / 2)", r["cy"])
        r = rect(drv, name, nth)
    move_to(drv, r["x"] + 1, r["y"] + 1)  # a wiggle so a "move" fires even if already there
    move_to(drv, r["cx"], r["cy"])
    WebDriverWait(drv, UI_WAIT).until(
        lambda d: d.find_element(By.ID, "tooltip").is_displayed()
        and d.find_element(By.CSS_SELECTOR, "#tooltip .tt-name").text == name)


def state(drv: WebDriver) -> dict[str, Any]:
    return dict(js(drv, "return window.ringprof.state()"))


def pixel(drv: WebDriver, name: str, nth: int = 0) -> list[int]:
    """RGBA of a box's top-right corner (clear of its label text)."""
    return list(js(drv, """
        const r = window.ringprof.rectOf(arguments[0], arguments[1]);
        const c = document.getElementById('flame'); const b = c.getBoundingClientRect();
        const k = c.width / b.width;
        const x = Math.floor((r.x - b.left + r.w - 4) * k), y = Math.floor((r.y - b.top + 2) * k);
        return Array.from(c.getContext('2d').getImageData(x, y, 1, 1).data);""", name, nth))


def css_rgb(drv: WebDriver, var: str) -> list[int]:
    value = js(drv, "return getComputedStyle(document.documentElement)"
                    ".getPropertyValue(arguments[0]).trim()", var)
    m = re.fullmatch(r"#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})", value, re.I)
    assert m, value
    return [int(g, 16) for g in m.groups()]


def total_text(drv: WebDriver) -> str:
    return str(drv.find_element(By.ID, "total").text)


# ---------------------------------------------------------------------- tests

def test_loads_clean_and_shows_header(browser: WebDriver, tmp_path: Path) -> None:
    load(browser, tmp_path, simple_model())
    assert browser.find_element(By.ID, "title").text == "ringprof: demo.py --fast"
    assert total_text(browser) == "1.00 s · 100 samples"
    st = state(browser)
    assert st["totalWeight"] == 100 and st["zoom"] == "all" and st["view"] == "flame"
    assert not browser.find_element(By.ID, "breadcrumb").is_displayed()
    meta = browser.find_element(By.ID, "meta").text
    assert "cpu" in meta and "10.0 ms" in meta and "3.11.7" in meta


def test_hover_shows_tooltip(browser: WebDriver, tmp_path: Path) -> None:
    load(browser, tmp_path, simple_model())
    hover(browser, "inner")
    tip = browser.find_element(By.ID, "tooltip").text
    assert "json/decoder.py:33" in tip
    assert "Total\n300 ms\n30.0%" in tip and "Self\n300 ms\n30.0%" in tip
    assert "Samples\n30" in tip
    # Full stack path, root first.
    assert "<module>\n→ main\n→ compute\n→ inner" in tip
    hover(browser, "compute")  # under main: total 40, self 10
    tip = browser.find_element(By.ID, "tooltip").text
    assert "Total\n400 ms\n40.0%" in tip and "Self\n100 ms\n10.0%" in tip
    assert browser.find_element(By.ID, "d-name").text == "compute"
    # Leaving the graph hides the tooltip.
    move_to(browser, 5, 5)
    WebDriverWait(browser, UI_WAIT).until(lambda d: not d.find_element(By.ID, "tooltip").is_displayed())


def test_search_highlights_and_totals(browser: WebDriver, tmp_path: Path) -> None:
    load(browser, tmp_path, simple_model())
    unmatched_before = pixel(browser, "io_wait")
    box = browser.find_element(By.ID, "search")
    box.send_keys("compute")
    result = browser.find_element(By.ID, "search-result")
    # compute: 40 under main + 15 under handle = 55 of 100.
    WebDriverWait(browser, UI_WAIT).until(lambda d: result.text.startswith("55.0%"))
    assert result.text == "55.0% of samples · 1 function"
    assert state(browser)["searchFraction"] == pytest.approx(0.55)
    match = css_rgb(browser, "--match")
    for nth in (0, 1):
        assert pixel(browser, "compute", nth)[:3] == match
    dimmed = pixel(browser, "io_wait")
    assert dimmed[:3] != match and dimmed[:3] != unmatched_before[:3]
    # Substring search is case-insensitive and also matches file names.
    box.clear()
    box.send_keys("SERVER/")
    WebDriverWait(browser, UI_WAIT).until(lambda d: result.text.startswith("40.0%"))  # handle (and below)
    # Regex mode.
    box.clear()
    box.send_keys("^(inner|parse)$")
    browser.find_element(By.ID, "regex").click()
    WebDriverWait(browser, UI_WAIT).until(lambda d: result.text.startswith("55.0%"))  # 30 + 25
    assert result.text.endswith("2 functions")
    box.clear()
    box.send_keys("(")
    WebDriverWait(browser, UI_WAIT).until(lambda d: result.text == "invalid regular expression")
    box.send_keys(Keys.ESCAPE)
    WebDriverWait(browser, UI_WAIT).until(lambda d: result.text == "")
    assert pixel(browser, "io_wait")[:3] == unmatched_before[:3]


def test_click_zooms_and_breadcrumb_goes_back(browser: WebDriver, tmp_path: Path) -> None:
    load(browser, tmp_path, simple_model())
    full = rect(browser, "inner")["w"]
    r = rect(browser, "compute")
    click_at(browser, r["cx"], r["cy"])
    crumb = browser.find_element(By.ID, "breadcrumb")
    WebDriverWait(browser, UI_WAIT).until(lambda d: crumb.is_displayed())
    buttons = crumb.find_elements(By.TAG_NAME, "button")
    assert [b.text for b in buttons] == ["all", "<module>", "main", "compute"]
    assert state(browser)["zoom"] == "compute"
    # compute fills the width; inner is 30 of its 40.
    canvas_w = js(browser, "return document.getElementById('flame').getBoundingClientRect().width")
    assert rect(browser, "compute")["w"] == pytest.approx(canvas_w, abs=1)
    assert rect(browser, "inner")["w"] == pytest.approx(canvas_w * 0.75, abs=1.5)
    assert rect(browser, "inner")["w"] > full
    assert js(browser, "return window.ringprof.rectOf('parse', 0)") is None  # other subtree hidden
    # Back one level through the breadcrumb, then all the way out.
    buttons[2].click()
    WebDriverWait(browser, UI_WAIT).until(lambda d: state(d)["zoom"] == "main")
    crumb.find_elements(By.TAG_NAME, "button")[0].click()
    WebDriverWait(browser, UI_WAIT).until(lambda d: not crumb.is_displayed())
    assert state(browser)["zoom"] == "all"
    assert rect(browser, "inner")["w"] == pytest.approx(full, abs=0.5)
    # Escape zooms out one level.
    r = rect(browser, "inner")
    click_at(browser, r["cx"], r["cy"])
    WebDriverWait(browser, UI_WAIT).until(lambda d: state(d)["zoom"] == "inner")
    ActionChains(browser).send_keys(Keys.ESCAPE).perform()
    WebDriverWait(browser, UI_WAIT).until(lambda d: state(d)["zoom"] == "compute")


def test_thread_and_label_filters(browser: WebDriver, tmp_path: Path) -> None:
    load(browser, tmp_path, simple_model())
    threads = Select(browser.find_element(By.ID, "thread"))
    assert [o.text for o in threads.options] == [
        "All threads (2)", "MainThread (tid 1001) · 60.0%", "worker (tid 2002) · 40.0%"]
    threads.select_by_index(2)
    WebDriverWait(browser, UI_WAIT).until(lambda d: total_text(d) == "400 ms · 40 samples · 40.0% of profile")
    assert state(browser)["totalWeight"] == 40
    assert js(browser, "return window.ringprof.rectOf('io_wait', 0)") is None
    hover(browser, "compute")  # only the worker's compute now: 15 of 40
    assert "Total\n150 ms\n37.5%" in browser.find_element(By.ID, "tooltip").text
    threads.select_by_index(1)
    WebDriverWait(browser, UI_WAIT).until(lambda d: total_text(d) == "600 ms · 60 samples · 60.0% of profile")
    threads.select_by_index(0)
    WebDriverWait(browser, UI_WAIT).until(lambda d: total_text(d) == "1.00 s · 100 samples")

    labels = Select(browser.find_element(By.ID, "labels"))
    assert [o.text for o in labels.options] == ["All samples", "route=/a", "route=/b"]
    labels.select_by_visible_text("route=/a")
    WebDriverWait(browser, UI_WAIT).until(lambda d: total_text(d) == "250 ms · 25 samples · 25.0% of profile")
    assert state(browser)["label"] == "route=/a"
    labels.select_by_index(0)
    WebDriverWait(browser, UI_WAIT).until(lambda d: total_text(d) == "1.00 s · 100 samples")


def test_asyncio_tasks_are_one_label_entry_each(browser: WebDriver, tmp_path: Path) -> None:
    """A task's ``task``/``task_id`` labels make one "task=name #id" entry, listed
    first; two tasks of the same name stay apart; selecting one shows its samples."""
    d = ProfileData({"mode": "cpu", "interval": 0.01, "duration": 1.0})
    d.threads = {1: "MainThread"}
    step = [Frame("_run_once", "asyncio/base_events.py", 1, 2), Frame("handler", "app.py", 10, 11)]
    t = 0
    for n, labels in ((30, {"task": "req", "task_id": "7", "route": "/a"}), (10, {"task": "req", "task_id": "7"}),
                      (20, {"task": "req", "task_id": "9", "route": "/a"}), (40, {})):
        for _ in range(n):
            d.add_sample(step, thread=1, time_ns=t * 10_000_000, labels=labels or None)
            t += 1
    load(browser, tmp_path, d)
    labels = Select(browser.find_element(By.ID, "labels"))
    assert [o.text for o in labels.options] == ["All samples", "task=req #7", "task=req #9", "route=/a"]
    labels.select_by_visible_text("task=req #7")
    WebDriverWait(browser, UI_WAIT).until(lambda d: total_text(d) == "400 ms · 40 samples · 40.0% of profile")
    labels.select_by_visible_text("task=req #9")
    WebDriverWait(browser, UI_WAIT).until(lambda d: total_text(d) == "200 ms · 20 samples · 20.0% of profile")


def test_timeline_drag_selects_time_range(browser: WebDriver, tmp_path: Path) -> None:
    load(browser, tmp_path, simple_model())
    tl = js(browser, "const b = document.getElementById('timeline').getBoundingClientRect();"
                     "return {x: b.left, y: b.top, w: b.width, h: b.height}")
    y = tl["y"] + tl["h"] / 2
    ab = ActionBuilder(browser)
    pointer: Any = ab.pointer_action  # selenium leaves move_to_location untyped
    pointer.move_to_location(int(tl["x"] + 1), int(y)).pointer_down()
    pointer.move_to_location(int(tl["x"] + tl["w"] * 0.25), int(y))
    pointer.move_to_location(int(tl["x"] + tl["w"] * 0.5), int(y)).pointer_up()
    ab.perform()
    WebDriverWait(browser, UI_WAIT).until(lambda d: state(d)["range"] is not None)
    st = state(browser)
    lo, hi = st["range"]
    assert lo == 0 and 45 <= hi <= 52
    # Samples 0..hi: main's first 30, then worker's route=/a ones.
    assert st["totalWeight"] == hi + 1
    assert browser.find_element(By.ID, "range").text.startswith("0 \u2013 ")
    browser.find_element(By.ID, "range-clear").click()
    WebDriverWait(browser, UI_WAIT).until(lambda d: state(d)["range"] is None)
    assert state(browser)["totalWeight"] == 100


def test_icicle_toggle(browser: WebDriver, tmp_path: Path) -> None:
    load(browser, tmp_path, simple_model())
    top = js(browser, "return document.getElementById('flame').getBoundingClientRect().top")
    assert rect(browser, "all")["y"] > rect(browser, "inner")["y"]  # flame: root at the bottom
    browser.find_element(By.ID, "view-icicle").click()
    WebDriverWait(browser, UI_WAIT).until(lambda d: state(d)["view"] == "icicle")
    assert rect(browser, "all")["y"] == pytest.approx(top, abs=0.5)
    assert rect(browser, "all")["y"] < rect(browser, "inner")["y"]
    hover(browser, "inner")


@pytest.mark.parametrize(("template", "expected"), [
    ("https://github.com/org/repo/blob/abc123/{path}#L{line}", "https://github.com/org/repo/blob/abc123/server/parse.py#L85"),
    ("vscode://file/{abspath}:{line}", "vscode://file/proj/server/parse.py:85"),
    ("file://{abspath}", "file:///proj/server/parse.py"),
])
def test_source_link(browser: WebDriver, tmp_path: Path, template: str, expected: str) -> None:
    load(browser, tmp_path, simple_model(), source_url=template)
    hover(browser, "parse")
    link = browser.find_element(By.ID, "d-source")
    assert link.is_displayed()
    assert link.get_attribute("href") == expected
    assert link.get_attribute("rel") == "noopener noreferrer"


def test_no_source_link_without_template(browser: WebDriver, tmp_path: Path) -> None:
    load(browser, tmp_path, simple_model())
    hover(browser, "parse")
    assert not browser.find_element(By.ID, "d-source").is_displayed()


def test_xss_names_render_as_text(browser: WebDriver, tmp_path: Path) -> None:
    load(browser, tmp_path, xss_model(), source_url="https://code.example/{path}#L{line}")
    probe = js(browser, """return {
        xss: window.__xss === undefined ? null : window.__xss,
        dialogs: window.__dialogs,
        injected: document.querySelectorAll(
            'img, iframe, object, embed, [onerror], [onload], [onmouseover]').length,
        svgs: document.querySelectorAll('svg').length,
        scripts: document.scripts.length}""")
    assert probe == {"xss": None, "dialogs": [], "injected": 0, "svgs": 1, "scripts": 2}
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text  # noqa: B018 - accessing it is the check
    assert browser.title == f"ringprof: prog.py {XSS_SCRIPT} {XSS_NAME}"
    assert browser.find_element(By.ID, "title").text == f"ringprof: prog.py {XSS_SCRIPT} {XSS_NAME}"
    threads = Select(browser.find_element(By.ID, "thread")).options
    assert XSS_NAME in [o.text.split(" (tid")[0] for o in threads]
    labels = Select(browser.find_element(By.ID, "labels")).options
    assert f"{XSS_LABEL}={XSS_SCRIPT}" in [o.text for o in labels]
    hover(browser, XSS_NAME)
    tip = browser.find_element(By.ID, "tooltip")
    assert tip.find_element(By.CLASS_NAME, "tt-name").text == XSS_NAME
    assert XSS_FILE in tip.text
    hover(browser, XSS_SCRIPT)
    # A file named like a javascript: URL still yields a link into the allowed host.
    hover(browser, "pathy")
    href = browser.find_element(By.ID, "d-source").get_attribute("href") or ""
    assert href.startswith("https://code.example/") and "javascript" in href
    # Search and zoom re-render the same strings: still text.
    browser.find_element(By.ID, "search").send_keys("<img")
    WebDriverWait(browser, UI_WAIT).until(lambda d: d.find_element(By.ID, "search-result").text.startswith("50.0%"))
    r = rect(browser, XSS_NAME)
    click_at(browser, r["cx"], r["cy"])
    crumb = browser.find_element(By.ID, "breadcrumb")
    WebDriverWait(browser, UI_WAIT).until(lambda d: crumb.is_displayed())
    assert crumb.find_elements(By.TAG_NAME, "button")[-1].text == XSS_NAME
    assert js(browser, "return document.querySelectorAll('img, [onerror]').length") == 0
    assert js(browser, "return window.__dialogs") == []


def test_large_profile_renders(browser: WebDriver, tmp_path: Path) -> None:
    """100k unique stacks load, draw and stay interactive.  The timings are
    printed, not asserted: a unit test on a loaded 2-core machine is no place
    for a time budget (the 30 s waits only catch a page that never gets there)."""
    data = big_model(100_000)
    t0 = time.perf_counter()
    page = html.render(data)
    export_s = time.perf_counter() - t0
    (tmp_path / "big.html").write_bytes(page)
    t0 = time.perf_counter()
    browser.get((tmp_path / "big.html").as_uri())
    WebDriverWait(browser, 30).until(lambda d: d.execute_script("return document.body.dataset.ready === '1'"))
    load_s = time.perf_counter() - t0
    timings = js(browser, "return window.ringprof.timings")
    print(f"\n100k unique stacks: {timings['nodes'] - 1:,} trie nodes, {len(page) / 1e6:.1f} MB html; "
          f"export {export_s:.2f} s; browser load+first paint {load_s:.2f} s "
          f"(in-page: parse {timings['parse_ms']:.0f} ms, build {timings['build_ms']:.0f} ms, "
          f"first paint {timings['first_paint_ms']:.0f} ms)")
    assert state(browser)["totalWeight"] == data.total_weight()
    # Interactions stay responsive at this size.
    t0 = time.perf_counter()
    Select(browser.find_element(By.ID, "thread")).select_by_index(1)
    WebDriverWait(browser, 10).until(lambda d: state(d)["thread"] == 0)
    switch_s = time.perf_counter() - t0
    top = Counter[str]()
    main = data.thread == MAIN_TID
    for sid, w in zip(data.stack[main].tolist(), data.weight[main].tolist(), strict=True):
        top[data.frames[data.stacks[sid][0]].name] += w
    name = top.most_common(1)[0][0]
    r = js(browser, "return window.ringprof.rectOf(arguments[0], 0, 1)", name)
    move_to(browser, r["cx"], r["cy"])
    WebDriverWait(browser, UI_WAIT).until(
        lambda d: d.find_element(By.CSS_SELECTOR, "#tooltip .tt-name").text == name)
    print(f"thread switch {switch_s * 1000:.0f} ms (incl. WebDriver round trips)")


@pytest.mark.parametrize("hidden_by", ["width:0", "display:none"])
def test_redraws_when_its_frame_is_sized_after_load(browser: WebDriver, tmp_path: Path, hidden_by: str) -> None:
    """A page embedded the way a notebook shows it (a sandboxed ``<iframe srcdoc>``)
    that is laid out with no width first and sized afterwards draws its boxes."""
    import html as html_escape

    page = html.render(simple_model()).decode("utf-8")
    host = tmp_path / "host.html"
    host.write_text(
        f'<!DOCTYPE html><html><body><div id="box" style="{hidden_by}">'
        f'<iframe sandbox="allow-scripts" style="width:100%;height:500px" '
        f'srcdoc="{html_escape.escape(page, quote=True)}"></iframe></div></body></html>')
    browser.get(host.as_uri())
    browser.switch_to.frame(browser.find_element(By.TAG_NAME, "iframe"))
    try:
        WebDriverWait(browser, 30).until(lambda d: d.execute_script("return document.body.dataset.ready === '1'"))
        first = js(browser, "return window.ringprof.rectOf('main', 0)")
        assert first is None or first["w"] < 100  # drawn with (next to) no width
        browser.switch_to.default_content()
        js(browser, "document.getElementById('box').style.cssText = 'width:900px'")
        browser.switch_to.frame(browser.find_element(By.TAG_NAME, "iframe"))
        WebDriverWait(browser, 30).until(lambda d: d.execute_script(
            "return window.ringprof.rectOf('main', 0) !== null"))
        r = rect(browser, "main")
        assert 450 < r["w"] < 600  # main: 60 % of a 900 px page
    finally:
        browser.switch_to.default_content()


def test_screenshot(browser: WebDriver, tmp_path: Path) -> None:
    """A realistic profile with a tooltip open; refreshes docs/flamegraph.png on request."""
    load(browser, tmp_path, realistic_model(),
         source_url="https://github.com/acme/shopd/blob/4f2c9e1/{path}#L{line}",
         title="shopd \u2014 checkout & search load test")
    # Fit the window to the page (and the open tooltip) so the image has no empty band.
    hover(browser, "load_cart")
    need = js(browser, "const t = document.getElementById('tooltip').getBoundingClientRect();"
                       "const f = document.querySelector('.foot').getBoundingClientRect();"
                       "return Math.ceil(Math.max(f.bottom, t.bottom + 12))"
                       " + (window.outerHeight - window.innerHeight)")
    size = browser.get_window_size()
    browser.set_window_size(1400, need)
    try:
        move_to(browser, 2, 2)
        hover(browser, "load_cart")
        shot = tmp_path / "flamegraph.png"
        assert browser.save_screenshot(str(shot))
    finally:
        browser.set_window_size(size["width"], size["height"])
    assert shot.stat().st_size > 10_000
    if os.environ.get("RINGPROF_UPDATE_SCREENSHOT") == "1":
        (REPO / "docs").mkdir(exist_ok=True)
        shutil.copyfile(shot, REPO / "docs" / "flamegraph.png")


def async_model() -> ProfileData:
    """On-CPU samples (30) and asyncio waiting samples (70, state=waiting) of one loop thread."""
    data = ProfileData({"mode": "cpu", "interval": 0.01, "argv": ["svc.py"]})
    handler = Frame("handler", "svc.py", 10, 12)
    data.add_sample([handler, Frame("render", "svc.py", 20, 21)], thread=MAIN_TID, weight=30, cpu_ns=300_000_000)
    data.add_sample([handler, Frame("fetch_user", "svc.py", 30, 31), Frame("Pool.acquire", "pool.py", 5, 9)],
                    thread=MAIN_TID, weight=50, labels={"state": "waiting", "task": "Task-1", "task_id": "0x1"})
    data.add_sample([handler, Frame("sleep", "asyncio/tasks.py", 600, 649)], thread=MAIN_TID, weight=20,
                    labels={"state": "waiting", "task": "Task-2", "task_id": "0x2"})
    return data


def test_async_switch_shows_cpu_waiting_or_both(browser: WebDriver, tmp_path: Path) -> None:
    load(browser, tmp_path, async_model())
    field = browser.find_element(By.ID, "state-field")
    assert field.is_displayed()
    assert state(browser)["state"] == "all" and state(browser)["totalWeight"] == 100
    browser.find_element(By.ID, "state-cpu").click()
    WebDriverWait(browser, UI_WAIT).until(lambda d: state(d)["totalWeight"] == 30)
    assert js(browser, "return window.ringprof.rectOf('fetch_user', 0)") is None
    assert js(browser, "return window.ringprof.rectOf('render', 0)") is not None
    browser.find_element(By.ID, "state-waiting").click()
    WebDriverWait(browser, UI_WAIT).until(lambda d: state(d)["totalWeight"] == 70)
    assert js(browser, "return window.ringprof.rectOf('render', 0)") is None
    hover(browser, "fetch_user")
    assert "Total\n500 ms\n71.4%" in browser.find_element(By.ID, "tooltip").text
    assert "on" in (browser.find_element(By.ID, "state-waiting").get_attribute("class") or "")
    browser.find_element(By.ID, "state-all").click()
    WebDriverWait(browser, UI_WAIT).until(lambda d: state(d)["totalWeight"] == 100)


def test_async_switch_hidden_without_waiting_samples(browser: WebDriver, tmp_path: Path) -> None:
    load(browser, tmp_path, simple_model())
    assert not browser.find_element(By.ID, "state-field").is_displayed()
    assert state(browser)["hasWaiting"] is False
