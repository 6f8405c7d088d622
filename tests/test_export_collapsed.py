"""Folded-stacks export: exact text, sanitising, values, and the parser round trip."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest
from modelfactory import INTERVAL_NS, make_empty_model, make_model, make_weird_model

from ringprof.exporters import collapsed
from ringprof.model import Frame, ProfileData

EXPECTED = """\
<module> (app.py:1);main (app.py:10) 1
<module> (app.py:1);main (app.py:10);Helper.run (lib.py:20) 1
<module> (app.py:1);main (app.py:10);fib (lib.py:40);fib (lib.py:40);fib (lib.py:40) 4
<module> (app.py:1);main (app.py:10);work (lib.py:5) 5
<truncated>;work (lib.py:5) 2
idle (worker.py:3) 5
"""


def test_exact_output_merges_lines_of_one_function() -> None:
    # work at line 7 (weight 3) and line 8 (weight 2) fold to one line of 5.
    assert collapsed.render(make_model()).decode() == EXPECTED


def test_lines_option_uses_sampled_line() -> None:
    text = collapsed.render(make_model(), lines=True).decode()
    assert "<module> (app.py:30);main (app.py:12);work (lib.py:7) 3\n" in text
    assert "<module> (app.py:30);main (app.py:12);work (lib.py:8) 2\n" in text
    assert "<truncated>;work (lib.py:7) 2\n" in text
    assert len(text.splitlines()) == 7


def test_value_ns_scales_by_interval() -> None:
    lines = collapsed.render(make_model(), value="ns").decode().splitlines()
    weights = [int(line.rpartition(" ")[2]) for line in EXPECTED.splitlines()]
    assert [int(line.rpartition(" ")[2]) for line in lines] == [w * INTERVAL_NS for w in weights]


def test_bad_value_option() -> None:
    with pytest.raises(ValueError, match="value must be"):
        collapsed.render(make_model(), value="ms")


def test_deterministic_and_independent_of_insertion_order() -> None:
    a = make_model()
    b = ProfileData(a.meta)
    b.threads = dict(a.threads)
    # Same samples, added in reverse order: different frame/stack ids, same output.
    for frames, weight in reversed(list(a.iter_stacks())):
        b.add_sample(frames, weight=weight)
    assert collapsed.render(a) == collapsed.render(a) == collapsed.render(b)


def test_sanitises_separators_and_newlines() -> None:
    text = collapsed.render(make_weird_model()).decode("utf-8")
    lines = text.splitlines()
    assert len(lines) == 2  # no newline leaked out of a name
    for line in lines:
        stack, _, count = line.rpartition(" ")
        assert count.isdigit()
        assert len(stack.split(";")) == 2  # the only ';' are separators
    assert "naïve_λ (ünï.py:7);a_b c d (we_ird dir/x.py:3) 2" in lines
    # An undecodable (surrogate-escaped) file name does not break the export.
    assert "bad (caf\\udce9.py:1) 1" in lines[0] + lines[1]


def test_empty_model_is_empty() -> None:
    assert collapsed.render(make_empty_model()) == b""


def test_empty_stack_gets_a_placeholder_and_parses_back() -> None:
    data = ProfileData({"interval": 0.01})
    data.add_sample([], weight=3)
    text = collapsed.render(data).decode()
    assert text == f"{collapsed.EMPTY_STACK} 3\n"
    back = collapsed.parse(text)
    assert list(back.iter_stacks()) == [((), 3)]


def test_round_trip_through_parser() -> None:
    data = make_model()
    back = collapsed.parse(collapsed.render(data).decode())
    assert collapsed.render(back) == collapsed.render(data)
    assert back.total_weight() == data.total_weight() == 18
    assert [(s.key[2], s.self_weight, s.total_weight) for s in back.function_stats()] == \
        [(s.key[2], s.self_weight, s.total_weight) for s in data.function_stats()]
    assert back.frames[0] == Frame("<module>", "app.py", 1, 1)
    assert Frame("<truncated>", "", 0, 0) in back.frames
    assert back.interval_ns == INTERVAL_NS


def test_parse_ns_values_with_interval() -> None:
    data = make_model()
    back = collapsed.parse(collapsed.render(data, value="ns").decode(), interval=1e-9)
    assert int(back.sample_ns().sum()) == int(data.sample_ns().sum()) == 18 * INTERVAL_NS


def test_parse_tolerates_comments_blank_lines_decimals_and_odd_labels() -> None:
    text = "# comment\n\nfoo;bar (x.py:3) 2\nfoo;bar (x.py:3) 1.6\nnot a label ( 4\nzero 0\n"
    data = collapsed.parse(text)
    assert sorted((tuple(f.label() for f in fr), w) for fr, w in data.iter_stacks()) == [
        (("foo", "bar (x.py:3)"), 4),
        (("not a label (",), 4),
    ]
    assert Frame("foo", "", 0, 0) in data.frames  # unparseable label: empty filename
    assert len(data) == 3  # the zero-count line adds no sample


@pytest.mark.parametrize("line", ["nocount", "a;b -3", "a;b x", "a;b inf"])
def test_parse_rejects_malformed_lines_with_line_number(line: str) -> None:
    with pytest.raises(ValueError, match="line 2"):
        collapsed.parse(f"ok 1\n{line}\n")


def test_windows_style_path_label() -> None:
    frame = collapsed.parse_label("f (C:\\src\\x.py:12)")
    assert frame == Frame("f", "C:\\src\\x.py", 12, 12)


def _flamegraph_tool() -> list[str]:
    for cmd in ("inferno-flamegraph", "flamegraph.pl", "flamegraph"):
        path = shutil.which(cmd)
        if path:
            return [path]
    reason = ("no flame-graph renderer on PATH (inferno-flamegraph or flamegraph.pl): "
              "tools/build_inferno.sh builds inferno from Debian's sources")
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def _expected_node_weights(folded: str) -> Counter[tuple[str, int]]:
    """(frame label, weight) of every box a flame graph of ``folded`` draws: one per
    distinct stack prefix, weighing the samples under it."""
    under: Counter[tuple[str, ...]] = Counter()
    for line in folded.splitlines():
        stack, _, count = line.rpartition(" ")
        names = stack.split(";")
        for depth in range(1, len(names) + 1):
            under[tuple(names[:depth])] += int(count)
    return Counter((prefix[-1], weight) for prefix, weight in under.items())


def _svg_boxes(svg: str) -> Counter[tuple[str, int]]:
    """(label, samples) of every box in a flamegraph.pl/inferno SVG, from the box titles
    ("name (N samples, P%)"), without the root box."""
    titles = [el.text or "" for el in ET.fromstring(svg).iter("{http://www.w3.org/2000/svg}title")]
    boxes: Counter[tuple[str, int]] = Counter()
    for title in titles:
        match = re.fullmatch(r"(.*) \(([\d,]+) samples?, [\d.]+%\)", title)
        assert match, title
        if match[1] != "all":
            boxes[(match[1], int(match[2].replace(",", "")))] += 1
    return boxes


def test_real_flamegraph_tool_draws_every_stack_with_its_weight(tmp_path: Path) -> None:
    tool = _flamegraph_tool()
    src = tmp_path / "p.folded"
    src.write_bytes(collapsed.render(make_model()))
    svg = subprocess.run([*tool, str(src)], capture_output=True, check=True, timeout=60).stdout.decode()
    assert _svg_boxes(svg) == _expected_node_weights(EXPECTED)
    assert "<title>all (18 samples, 100%)</title>" in svg


def test_real_flamegraph_tool_reads_sanitised_names(tmp_path: Path) -> None:
    tool = _flamegraph_tool()
    src = tmp_path / "w.folded"
    folded = collapsed.render(make_weird_model())
    src.write_bytes(folded)
    svg = subprocess.run([*tool, str(src)], capture_output=True, check=True, timeout=60).stdout.decode()
    assert _svg_boxes(svg) == _expected_node_weights(folded.decode())
