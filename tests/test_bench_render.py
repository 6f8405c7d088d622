"""The Markdown the benchmark scripts render from their kept JSON (benchmarks/report.py, shared by
benchmarks/tachyon.py and benchmarks/versions.py).  Rendering only: the measurements live in benchmarks/."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import report, tachyon, versions  # noqa: E402

BENCH = ROOT / "benchmarks"


def test_table_and_cells() -> None:
    assert report.table(["a", "b", "c"], [["x", "1", "2"]]) == ["| a | b | c |", "| :--- | ---: | ---: |",
                                                               "| x | 1 | 2 |"]
    assert report.table(["a", "b"], [], "ll")[1] == "| :--- | :--- |"
    assert report.ratio_pct(1.012) == "+1.2%"
    assert report.ratio_pct(0.99, 0.95, 1.1) == "-1.0% <sub>[-5.0, +10.0]</sub>"
    assert report.count(12345.6) == "12,346"


def _in_order(rendered: str, text: str) -> bool:
    pos = 0
    for line in rendered.splitlines():
        pos = text.find(line, pos)
        if pos < 0:
            return False
        pos += len(line)
    return True


def test_kept_json_renders_the_tables_in_results_md() -> None:
    """RESULTS.md's hand-kept sections were printed by --render from the JSON kept beside them: the shared
    rendering must reproduce them line for line."""
    results = (BENCH / "RESULTS.md").read_text()
    docs = report.read_json_files([str(p) for p in sorted((BENCH / "results-versions").glob("*.json"))], "test")
    assert docs
    assert _in_order(versions.render(docs), results)
    parts = report.read_json_files([str(BENCH / "results-tachyon" / n) for n in ("tachyon.json", "ringprof.json")],
                                   "test")
    assert parts is not None
    rendered = tachyon.render(tachyon.merge(parts))
    assert rendered.count("\n") > 20 and all(line in results for line in rendered.splitlines())


def test_unreadable_json_is_one_line(tmp_path: Path, capsys: object) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    assert versions.main(["--render", str(bad)]) == 2
    assert tachyon.main(["--render", str(tmp_path / "missing.json")]) == 2
    assert report.check_writable(str(tmp_path / "no" / "x.json"), "test") is False
