"""The Tachyon side-by-side benchmark's parsing and plumbing (benchmarks/tachyon.py), and the report
tool keeping hand-kept sections.  The measurements themselves live in benchmarks/, never here."""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import tachyon  # noqa: E402

# The summary `python3.15 -m profiling.sampling run` prints (3.15.2), verbatim.
SUMMARY = """Captured 6,915 samples in 6.92 seconds
Sample rate: 999.83 samples/sec
Error rate: 10.76
Warning: missed 1 samples from the expected total of 6916 (0.01%)
Collapsed stack output written to /x/t.collapsed
"""


def test_parse_tachyon_summary() -> None:
    s = tachyon.parse_tachyon_summary(SUMMARY)
    assert s["passes"] == 6915
    assert s["seconds"] == pytest.approx(6.92)
    assert s["passes_per_s"] == pytest.approx(6915 / 6.92)
    assert s["missed"] == 1 and s["expected"] == 6916
    assert s["error_rate_pct"] == pytest.approx(10.76)
    assert tachyon.parse_tachyon_summary("nothing useful") == {}


def test_split_shares_only_counts_stacks_under_split_driver(tmp_path: Path) -> None:
    f = tmp_path / "c.collapsed"
    f.write_text(
        "tid:1;tachyon_target.py:main:1;accuracy.py:split_driver:9;accuracy.py:part_a:3;accuracy.py:_helper:2 5\n"
        "tid:1;tachyon_target.py:main:1;accuracy.py:split_driver:9;accuracy.py:part_b:4 3\n"
        "tid:1;tachyon_target.py:main:1;accuracy.py:split_driver:9;accuracy.py:part_c:5;<native> 2\n"
        # calibration and truth phases: same functions, outside split_driver: ignored
        "tid:1;tachyon_target.py:main:1;accuracy.py:truth:7;accuracy.py:part_a:3 100\n"
        "tid:2;threading.py:Thread._bootstrap:1 7\n"
    )
    shares, n = tachyon.split_shares(tachyon.parse_collapsed(str(f)))
    assert n == 10
    assert shares == pytest.approx({"part_a": 0.5, "part_b": 0.3, "part_c": 0.2})


def test_qualified_names_are_matched_by_bare_name() -> None:
    assert tachyon._frame_func("workloads.py:_Vec.dot:53") == ("workloads.py", "dot")
    assert tachyon._frame_func("<GC>") == ("", "<GC>")


def _bench_report() -> object:
    spec = importlib.util.spec_from_file_location("bench_report", ROOT / "tools" / "bench_report.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_report_keeps_hand_kept_sections(tmp_path: Path) -> None:
    br = _bench_report()
    md = tmp_path / "RESULTS.md"
    md.write_text("generated\n<!-- kept: a -->\n## A\nx\n<!-- /kept -->\nmore generated\n"
                  "<!-- kept: b -->\n## B\n<!-- /kept -->\n<!-- kept: unterminated\n")
    kept = br.kept_sections(str(md))  # type: ignore[attr-defined]
    assert kept == "<!-- kept: a -->\n## A\nx\n<!-- /kept -->\n\n<!-- kept: b -->\n## B\n<!-- /kept -->\n"
    assert br.kept_sections(str(tmp_path / "missing.md")) == ""  # type: ignore[attr-defined]


def _has_tachyon() -> bool:
    try:
        return importlib.util.find_spec("profiling.sampling") is not None
    except ModuleNotFoundError:
        return False


needs_tachyon = pytest.mark.skipif(not _has_tachyon(), reason="profiling.sampling (Tachyon) ships with CPython 3.15+")


@needs_tachyon
def test_one_tachyon_run_end_to_end() -> None:
    """One real `profiling.sampling run` of the benchmark target: it attaches, samples, and the target
    sees its own profiler's CPU through /proc (the whole-tree figure depends on it)."""
    with tempfile.TemporaryDirectory() as tmp:
        cfg = tachyon.Config("tachyon", "wall", 100)
        res = tachyon._one(sys.executable, cfg, ["--workload", "calls", "--scale", "0.5"], tmp, "t")
        assert "error" not in res, res.get("error")
        assert res["rc"] == 0
        assert res["passes"] > 0 and res["stacks"] > 0
        assert res["parent_cpu"] is not None and res["parent_cpu"] > 0
        assert res["tree_cpu"] >= res["cpu"]
        assert os.listdir(tmp) == []  # per-run files are cleaned up


def test_ringprof_run_of_the_target() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = tachyon.Config("ringprof", "cpu", 100)
        res = tachyon._one(sys.executable, cfg, ["--workload", "calls", "--scale", "0.5"], tmp, "r")
        assert "error" not in res, res.get("error")
        assert res["cpu"] > 0 and res["samples"] >= 0 and res["dropped"] == 0
        assert res["weight"] >= res["samples"]
