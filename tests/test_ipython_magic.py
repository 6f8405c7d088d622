"""``%load_ext ringprof``, ``%ringprof`` and ``%%ringprof``: a real notebook run by a
real Jupyter kernel (nbclient + ipykernel), and a real terminal IPython."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ringprof.ipython_magic import parse_options

_BURN = """\
def notebook_burn(n):
    total = 0
    for i in range(n):
        total += i * i
    return total
"""


def total_pct(table: str, name: str) -> float:
    """The total % of ``name`` in a top table (``self % total %  function (file:line)``)."""
    for line in table.splitlines():
        m = re.match(r"^\s*([\d.]+)\s+([\d.]+)\s+(\S+)", line)
        if m and m.group(3) == name:
            return float(m.group(2))
    raise AssertionError(f"{name} not in\n{table}")


def test_parse_options() -> None:
    assert parse_options("f(x)") == ({}, "f(x)")
    assert parse_options("-i 0.002 -m wall  f(x,  'a b')") == ({"interval": "0.002", "mode": "wall"}, "f(x,  'a b')")
    assert parse_options("--interval=0.002 --top 5 -a -r g()") == (
        {"interval": "0.002", "top": "5", "all_threads": "1", "return": "1"}, "g()")
    assert parse_options("-o out.html -- -x + 1") == ({"output": "out.html"}, "-x + 1")
    assert parse_options("-x + 1") == ({}, "-x + 1")  # not an option: the statement
    assert parse_options("--mode wall") == ({"mode": "wall"}, "")
    with pytest.raises(ValueError, match="needs a value"):
        parse_options("-i")


def test_import_ringprof_does_not_import_ipython() -> None:
    code = ("import sys, ringprof; assert callable(ringprof.load_ipython_extension); "
            "bad = [m for m in ('IPython', 'ringprof.ipython_magic') if m in sys.modules]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def _cell_outputs(cell: Any) -> tuple[str, str, str]:
    """(text/html, text/plain of displays, stream text) of an executed cell."""
    html = plain = stream = ""
    for out in cell.outputs:
        if out.output_type in ("display_data", "execute_result"):
            html += out.data.get("text/html", "")
            plain += out.data.get("text/plain", "")
        elif out.output_type == "stream":
            stream += out.text
        elif out.output_type == "error":
            raise AssertionError("\n".join(out.traceback))
    return html, plain, stream


@pytest.fixture(scope="module")
def notebook(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    """A notebook using the magics, executed by a real kernel: (cells, its directory)."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    tmp_path = tmp_path_factory.mktemp("notebook")
    cells = [
        "%load_ext ringprof",
        _BURN,
        "%ringprof -i 0.001 notebook_burn(3_000_000)",
        "%%ringprof --mode wall --interval 0.002\nimport time\nnotebook_burn(2_000_000)\ntime.sleep(0.3)",
        f"prof = %ringprof -r -o {tmp_path / 'line.ringprof'} notebook_burn(2_000_000)\n"
        "print(type(prof).__name__, prof.top(1)[0].name)",
        "%ringprof -i 10",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
                            ).execute()
    return nb.cells, tmp_path


def test_notebook_renders_the_flame_graph_inline(notebook: tuple[Any, Path]) -> None:
    executed, tmp_path = notebook

    html, plain, _ = _cell_outputs(executed[2])
    assert html.startswith('<iframe sandbox="allow-scripts"') and " srcdoc=\"" in html
    assert "allow-same-origin" not in html
    assert "&lt;!DOCTYPE html&gt;" in html or "&lt;!doctype html&gt;" in html.lower()
    assert "notebook_burn" in html
    assert "<script" not in html.split("srcdoc=", 1)[1]  # the page is escaped into the attribute
    assert total_pct(plain, "notebook_burn") >= 90
    # The stacks start at the profiled statement: no kernel or IPython frames above it.
    assert "site-packages" not in plain and "interactiveshell" not in plain

    html, plain, _ = _cell_outputs(executed[3])
    assert "<iframe" in html and "notebook_burn" in html
    assert "wall mode" in plain
    # Wall time: the sleep is seen too, and only this thread (no idle kernel threads).
    assert 20 <= total_pct(plain, "notebook_burn") < 100

    _, _, stream = _cell_outputs(executed[4])
    assert stream.strip() == "Profile notebook_burn"
    assert (tmp_path / "line.ringprof").stat().st_size > 0

    _, _, stream = _cell_outputs(executed[5])
    assert "usage: %ringprof" in stream


def test_terminal_ipython_prints_a_top_table(tmp_path: Path) -> None:
    pytest.importorskip("IPython")
    (tmp_path / "burn.py").write_text(_BURN)
    script = (f"%load_ext ringprof\n%run {tmp_path / 'burn.py'}\n"
              "%ringprof -i 0.001 notebook_burn(3_000_000)\n"
              "%ringprof -m bogus notebook_burn(10)\n")
    out = subprocess.run([sys.executable, "-m", "IPython", "--simple-prompt", "--colors=NoColor", "--no-banner"],
                         input=script, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "<iframe" not in out.stdout
    assert re.search(r"ringprof: \d+ samples, cpu mode", out.stdout), out.stdout
    assert total_pct(out.stdout, "notebook_burn") >= 90
    assert "%ringprof: unknown mode 'bogus'" in out.stderr


def test_notebook_iframe_renders_in_chromium(notebook: tuple[Any, Path], tmp_path: Path) -> None:
    """The iframe from the notebook output, in a real browser: the sandboxed viewer runs and draws."""
    import os
    import shutil

    chromium = os.environ.get("RINGPROF_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    chromedriver = os.environ.get("RINGPROF_CHROMEDRIVER") or shutil.which("chromedriver") or "/usr/bin/chromedriver"
    webdriver = pytest.importorskip("selenium.webdriver")
    if not (os.access(chromium, os.X_OK) and os.access(chromedriver, os.X_OK)):
        if os.environ.get("CI"):
            pytest.fail("chromium/chromedriver missing in CI (apt-get install chromium chromium-driver)")
        pytest.skip("chromium/chromedriver not installed")
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.support.ui import WebDriverWait

    html, _, _ = _cell_outputs(notebook[0][2])
    page = tmp_path / "output.html"
    page.write_text(f"<!DOCTYPE html><html><body>{html}</body></html>")
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,900"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(service=Service(chromedriver), options=opts)
    try:
        drv.get(page.as_uri())
        drv.switch_to.frame(drv.find_element("tag name", "iframe"))
        WebDriverWait(drv, 30).until(lambda d: d.execute_script(
            "return document.body && (document.body.dataset.ready === '1' || "
            "!document.getElementById('error').hidden)"))
        assert drv.execute_script("return document.body.dataset.ready") == "1"
        # The iframe may get its final size after the first draw (a loaded machine lays the page out
        # late); the viewer redraws on resize, so wait for the frame to be drawn rather than assert at once.
        try:
            WebDriverWait(drv, 30).until(lambda d: d.execute_script(
                "return window.ringprof.rectOf('notebook_burn', 0) !== null"))
        except TimeoutException:
            layout = drv.execute_script(
                "const c = document.getElementById('flame'); return {inner: [innerWidth, innerHeight], "
                "canvas: [c.clientWidth, c.clientHeight, c.width], state: window.ringprof.state(), "
                "hidden: document.hidden}")
            pytest.fail(f"notebook_burn never drawn in the notebook's iframe: {layout}")
        # Sandboxed without allow-same-origin: the viewer cannot reach the notebook page.
        assert drv.execute_script("try { return String(window.parent.document.title) } catch (e) { return 'blocked' }"
                                  ) == "blocked"
        errors = [e for e in drv.get_log("browser") if e.get("level") == "SEVERE"]
        assert not errors, errors
    finally:
        drv.quit()
