"""ringprof.diff on hand-made models with exact share changes, and `ringprof diff` exit codes."""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
from diff_models import EXPECTED_SHARES, base_model, new_model

from ringprof import cli, diff
from ringprof.exporters import pprof, render
from ringprof.model import Frame, ProfileData


def by_name(result: diff.ProfileDiff) -> dict[str, diff.FunctionDiff]:
    return {f.name: f for f in result.functions}


def test_shares_and_changes_are_exact() -> None:
    result = diff.compare(base_model(), new_model())
    rows = by_name(result)
    assert set(rows) == set(EXPECTED_SHARES)
    for name, (bs, ns, bt, nt) in EXPECTED_SHARES.items():
        f = rows[name]
        assert (f.share("base", "self"), f.share("new", "self")) == pytest.approx((bs, ns), abs=1e-12), name
        assert (f.share("base", "total"), f.share("new", "total")) == pytest.approx((bt, nt), abs=1e-12), name
        assert f.delta_pp("self") == pytest.approx(100 * (ns - bs), abs=1e-9)
        assert f.delta_pp("total") == pytest.approx(100 * (nt - bt), abs=1e-9)
    # Paired across the edit: NEW's first lines are reported.
    assert rows["a"].firstlineno == 17 and rows["a"].status == ""
    assert rows["d"].status == "new"
    assert result.base_weight == 100 and result.new_weight == 500


def test_binomial_noise_estimate() -> None:
    result = diff.compare(base_model(), new_model())
    c = by_name(result)["c"]
    expected = 100 * math.sqrt(0.2 * 0.8 / 100 + 0.48 * 0.52 / 500)
    assert c.noise_pp("total") == pytest.approx(expected)
    assert result.max_noise_pp == pytest.approx(100 * math.sqrt(0.25 / 100 + 0.25 / 500))
    assert by_name(result)["main"].noise_pp("total") == 0.0


def test_time_per_sample_uses_each_interval() -> None:
    base = base_model()
    base.meta["interval"] = 0.005  # BASE sampled at 5 ms: c got 0.2 * 5 ms per sample
    c = by_name(diff.compare(base, new_model()))["c"]
    assert c.delta_per_sample_ns("self") == pytest.approx(0.48 * 10e6 - 0.2 * 5e6)


def test_length_does_not_matter_only_shares() -> None:
    base = base_model()
    longer = base_model()
    longer.merge(base_model())
    longer.merge(base_model())
    result = diff.compare(base, longer)
    assert all(f.delta_pp(k) == pytest.approx(0) for f in result.functions for k in ("self", "total"))
    assert result.grew_above(0.0) == []


def test_recursion_counts_once_per_sample() -> None:
    fib = Frame("fib", "m.py", 1, 2)
    base = ProfileData({"interval": 0.01})
    base.add_sample([fib], weight=1)
    base.add_sample([Frame("other", "m.py", 9, 9)], weight=1)
    new = ProfileData({"interval": 0.01})
    new.add_sample([fib, fib, fib], weight=3)
    new.add_sample([Frame("other", "m.py", 9, 9)], weight=1)
    f = by_name(diff.compare(base, new))["fib"]
    assert (f.share("base", "total"), f.share("new", "total")) == (0.5, 0.75)


def test_largest_changes_and_gate() -> None:
    result = diff.compare(base_model(), new_model())
    assert [f.name for f in result.largest_changes("self")] == ["a", "c", "d", "b"]  # main is never a leaf
    assert [f.name for f in result.largest_changes("self", 4)] == ["a", "c", "d", "b"]
    assert [f.name for f in result.largest_changes("total", 4)] == ["a", "c", "d", "b"]
    assert [f.name for f in result.grew_above(5)] == ["c", "d", "b"]  # by largest growth
    assert [f.name for f in result.grew_above(15)] == ["c", "d"]
    assert [f.name for f in result.grew_above(30)] == []
    assert [f.name for f in result.grew_above(5, re.compile(r"^b "))] == ["b"]
    assert [f.name for f in result.grew_above(5, re.compile(r"util\.py"))] == ["c"]


def test_text_report() -> None:
    text = diff.format_text(diff.compare(base_model(), new_model()), base_name="old.pprof", new_name="new.pprof")
    assert "base old.pprof: cpu, 100 samples at 10.00 ms, 1.00 s sampled" in text
    assert "new  new.pprof: cpu, 500 samples at 10.00 ms, 5.00 s sampled" in text
    assert f"at most {100 * math.sqrt(0.25 / 100 + 0.25 / 500):.2f} pp" in text
    self_part, total_part = text.split("Total share")
    assert re.search(r"\+28\.00pp\s+\S+pp\s+20\.00%\s+48\.00%\s+\+2\.80 ms\s+c \(lib/util\.py:5\)", self_part)
    assert re.search(r"-18\.00pp\s+\S+pp\s+30\.00%\s+12\.00%\s+-1\.80 ms\s+b \(app\.py:27\)", self_part)
    assert re.search(r"\+10\.00pp\s+\S+pp\s+50\.00%\s+60\.00%\s+\+1\.00 ms\s+b \(app\.py:27\)", total_part)
    assert "d (app.py:47)  [new]" in self_part


def test_empty_profile_is_an_error() -> None:
    with pytest.raises(ValueError, match="BASE profile has no samples"):
        diff.compare(ProfileData({"interval": 0.01}), new_model())


# ---------------------------------------------------------------- CLI
@pytest.fixture()
def files(tmp_path: Path) -> tuple[Path, Path]:
    base, new = tmp_path / "base.pb.gz", tmp_path / "new.ringprof"
    base.write_bytes(pprof.render(base_model()))  # any two readable formats
    new_model().save(new)
    return base, new


def test_cli_prints_report_and_exits_0(files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["diff", str(files[0]), str(files[1])]) == 0
    out = capsys.readouterr()
    assert out.out == diff.format_text(diff.compare(base_model(), new_model()), base_name="base.pb.gz",
                                       new_name="new.ringprof")
    assert out.err == ""


def test_cli_fail_above_names_the_functions(files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["diff", str(files[0]), str(files[1]), "--fail-above", "15"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("ringprof diff: 2 function(s) grew more than 15 pp (sampling noise: 1 SE")
    assert err[1].startswith("  c (lib/util.py:5): self 20.00% -> 48.00% (+28.00 pp, SE ")
    assert err[2].startswith("  d (app.py:47): self 0.00% -> 20.00% (+20.00 pp")
    assert len(err) == 3
    assert cli.main(["diff", str(files[0]), str(files[1]), "--fail-above", "30"]) == 0
    assert "no function grew more than 30 pp" in capsys.readouterr().err
    # --match restricts the gate: b grew 10 pp (total) only.
    assert cli.main(["diff", str(files[0]), str(files[1]), "--fail-above", "5", "--match", "^b "]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and err[1].startswith("  b (app.py:27): total 50.00% -> 60.00% (+10.00 pp")
    assert cli.main(["diff", str(files[0]), str(files[1]), "--fail-above", "5", "--match", "^a "]) == 0


def test_cli_writes_text_and_html(files: tuple[Path, Path], tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["diff", str(files[0]), str(files[1]), "-o", str(tmp_path / "d.txt")]) == 0
    assert "+28.00pp" in (tmp_path / "d.txt").read_text()
    assert cli.main(["diff", str(files[0]), str(files[1]), "-o", str(tmp_path / "d.html")]) == 0
    page = (tmp_path / "d.html").read_text()
    assert '"diff":{"base_name":"base.pb.gz","new_name":"new.ringprof"' in page
    assert "Content-Security-Policy" in page
    assert capsys.readouterr().out == ""


BAD_DIFF_ARGS = {
    "missing-new": ["{base}"],
    "no-such-file": ["{base}", "{tmp}/none.pprof"],
    "malformed": ["{base}", "{tmp}/junk.pprof"],
    "empty-profile": ["{base}", "{tmp}/empty.ringprof"],
    "bad-regex": ["{base}", "{new}", "--fail-above", "1", "--match", "("],
    "negative-pp": ["{base}", "{new}", "--fail-above", "-1"],
    "nan-pp": ["{base}", "{new}", "--fail-above", "nan"],
    "pp-not-a-number": ["{base}", "{new}", "--fail-above", "x"],
    "unknown-output": ["{base}", "{new}", "-o", "{tmp}/d.pdf"],
    "output-dir-missing": ["{base}", "{new}", "-o", "{tmp}/no/dir/d.html"],
    "bad-top": ["{base}", "{new}", "-n", "0"],
}


@pytest.mark.parametrize("case", sorted(BAD_DIFF_ARGS))
def test_cli_bad_input_is_one_line_exit_2(case: str, files: tuple[Path, Path], tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "junk.pprof").write_bytes(pprof.render(base_model())[:-9])
    (tmp_path / "empty.ringprof").write_bytes(render(ProfileData({"interval": 0.01}), "native"))
    args = [a.format(base=files[0], new=files[1], tmp=tmp_path) for a in BAD_DIFF_ARGS[case]]
    assert cli.main(["diff", *args]) == 2
    out = capsys.readouterr()
    assert out.out == "" and len(out.err.splitlines()) == 1 and out.err.startswith("ringprof: error: ")


def test_cli_subprocess_exit_codes(files: tuple[Path, Path], tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "ringprof", "diff", *args], capture_output=True, text=True,
                              timeout=60, cwd=tmp_path)

    ok = run(str(files[0]), str(files[1]))
    assert ok.returncode == 0 and "Self share" in ok.stdout
    gate = run(str(files[0]), str(files[1]), "--fail-above", "15")
    assert gate.returncode == 1 and "c (lib/util.py:5)" in gate.stderr
    bad = run(str(files[0]), str(tmp_path / "missing"))
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr


def test_profiles_from_different_checkouts_pair_by_path_suffix() -> None:
    def model(root: str, slow: int) -> ProfileData:
        data = ProfileData({"interval": 0.01})
        main = Frame("main", f"{root}/app/main.py", 1, 2)
        data.add_sample([main, Frame("work", f"{root}/app/work.py", 3, 4)], weight=slow)
        data.add_sample([main, Frame("other", f"{root}/app/other.py", 3, 4)], weight=10)
        data.add_sample([Frame("load", "<frozen importlib._bootstrap>", 1, 1)], weight=1)
        return data

    base, new = model("/ci/main", 10), model("/ci/pr-12", 30)
    rows = by_name(diff.compare(base, new))
    assert set(rows) == {"main", "work", "other", "load"}
    assert rows["work"].filename == "/ci/pr-12/app/work.py" and rows["work"].status == ""
    assert rows["work"].delta_pp("self") == pytest.approx(100 * (30 / 41 - 10 / 21))
    aligned = diff.aligned_base(base, new)
    assert {f.filename for f in aligned.frames} == {f.filename for f in new.frames}


def test_align_files_only_pairs_unique_best_matches() -> None:
    assert diff.align_files(["/a/x/u.py", "/a/y/u.py", "/a/z.py"], ["/b/x/u.py", "/b/y/u.py", "/b/q.py"]) == \
        {"/a/x/u.py": "/b/x/u.py", "/a/y/u.py": "/b/y/u.py"}
    # Two equally good candidates: no guess.
    assert diff.align_files(["/a/u.py"], ["/b/x/u.py", "/b/y/u.py"]) == {}
    # Files in both are left alone; synthetic names never move.
    assert diff.align_files(["same.py", "<string>"], ["same.py", "<stdin>"]) == {}


def test_function_weights_agree_with_the_model_on_a_large_profile() -> None:
    from html_models import big_model

    data = big_model(3000)
    expected = {(s.key[2], s.key[0]): (s.self_weight, s.total_weight) for s in data.function_stats()}
    got = {k: v[:2] for k, v in diff.function_weights(data).items()}
    assert got == expected


def _unpack(b64: str) -> list[int]:
    """The viewer's decoding of a packed column (LEB128 varints, base64)."""
    import base64

    out, value, shift = [], 0, 0
    for byte in base64.b64decode(b64):
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            out.append(value)
            value, shift = 0, 0
    return out


def test_html_payload_base_trie_matches_a_naive_walk() -> None:
    from html_models import big_model

    from ringprof.exporters import html

    base = big_model(2000, seed=3)
    tables = html._Tables(base, "/")
    payload = html._diff_payload(base, tables, ("b", "n"))
    nodes = {k: _unpack(v) for k, v in payload["nodes"].items()}
    # Rebuild (path of (name, file)) -> (self, total) from the payload...
    path_of: dict[int, tuple[tuple[str, str], ...]] = {0: ()}
    got: dict[tuple[tuple[str, str], ...], tuple[int, int]] = {}
    file_names = {fid: name for name, fid in tables._file_ids.items()}
    for i, (parent, name, file, self_w, total) in enumerate(zip(*(nodes[k] for k in ("parent", "name", "file",
                                                                                      "self", "total")),
                                                                 strict=True), 1):
        assert parent < i  # parents first
        path_of[i] = (*path_of[parent], (tables.strings[name], file_names[file]))
        got[path_of[i]] = (self_w, total)
    # ...and compare with a plain walk over the stacks.
    want: dict[tuple[tuple[str, str], ...], list[int]] = {}
    for frames, w in base.iter_stacks():
        keys = tuple((f.name, f.filename) for f in frames)
        for depth in range(1, len(keys) + 1):
            want.setdefault(keys[:depth], [0, 0])[1] += w
        want[keys][0] += w
    assert got == {k: (v[0], v[1]) for k, v in want.items()}
    assert payload["base_weight"] == base.total_weight()


def test_text_report_warns_about_different_modes_and_honours_match() -> None:
    new = new_model()
    new.meta["mode"] = "wall"
    text = diff.format_text(diff.compare(base_model(), new), match=re.compile(r"^c "))
    assert "warning: comparing a cpu profile with a wall profile" in text
    assert "Only functions matching /^c /." in text
    rows = [line for line in text.splitlines() if line.startswith("    ") and "function" not in line]
    assert rows and all(line.endswith("c (lib/util.py:5)") for line in rows)
