"""The pstats converter: exact numbers on hand-made profiles, and real consumers.

Consumers checked: :mod:`pstats` itself (files, sorting, callers/callees
printing, ``Stats.add``), snakeviz (its stats table code and its web server)
and gprof2dot (``-f pstats``).
"""

from __future__ import annotations

import io
import marshal
import os
import pstats
import queue
import re
import socket
import subprocess
import sys
import threading
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from cprofile_models import (
    INTERVAL,
    KEY_A,
    KEY_B,
    KEY_MAIN,
    KEY_TRUNC,
    SORT_FUNCS,
    SORT_ORDERS,
    empty_model,
    recursive_model,
    sort_model,
)

from ringprof.exporters import pstats as pstats_export
from ringprof.model import ProfileData


def _stats(*args: Any, **kwargs: Any) -> Any:
    """pstats.Stats, typed loosely: typeshed lacks its ``stats``/``fcn_list``
    attributes and does not know it accepts any object with ``create_stats``."""
    return pstats.Stats(*args, **kwargs)


def _s(weight: int, interval: float = INTERVAL) -> float:
    """Seconds of ``weight`` timer expirations, computed as the converter does
    (integer nanoseconds / 1e9), so results compare exactly with ``==``."""
    return weight * round(interval * 1e9) / 1e9


def _write(tmp_path: Path, data: ProfileData, name: str = "out.prof") -> str:
    path = tmp_path / name
    path.write_bytes(pstats_export.render(data))
    return str(path)  # pstats.Stats only takes str paths


# --------------------------------------------------------------------- numbers
def test_extensions() -> None:
    assert pstats_export.EXTENSIONS == (".prof", ".pstats")


def test_recursive_exact_numbers() -> None:
    st = pstats_export.to_stats_dict(recursive_model())
    assert set(st) == {KEY_MAIN, KEY_A, KEY_B, KEY_TRUNC}

    # main: on the stack in 6 weight (3 + 3), never the leaf, no caller.
    assert st[KEY_MAIN] == (6, 6, 0.0, _s(6), {})

    # a: 2 frames x 3 + 1 x 3 = 9 frame-samples; on stack in 6; leaf in 3.
    cc, nc, tt, ct, callers = st[KEY_A]
    assert (cc, nc) == (6, 9)
    assert tt == _s(3) and ct == _s(6)
    assert callers == {
        KEY_MAIN: (6, 6, _s(3), _s(6)),  # main->a in every a-sample
        KEY_B: (3, 3, 0.0, _s(3)),  # inner b->a, never leaf via b
    }

    # b: 2 x 3 + 1 = 7 frame-samples; on stack in 4; leaf in 4.
    cc, nc, tt, ct, callers = st[KEY_B]
    assert (cc, nc) == (4, 7)
    assert tt == _s(4) and ct == _s(4)
    assert callers == {
        # a->b twice per recursive sample: nc counts both, cc/ct once.
        KEY_A: (6, 3, _s(3), _s(3)),
        KEY_TRUNC: (1, 1, _s(1), _s(1)),
    }

    assert st[KEY_TRUNC] == (1, 1, 0.0, _s(1), {})


def test_interval_scales_times() -> None:
    st = pstats_export.to_stats_dict(recursive_model(interval=0.001))
    assert st[KEY_B][2] == pytest.approx(0.004)
    assert st[KEY_MAIN][3] == pytest.approx(0.006)
    # counts do not depend on the interval
    assert st[KEY_B][:2] == (4, 7)


def test_agrees_with_model_function_stats() -> None:
    """cc/tt/ct are the model's total/self weights (the same recursion rule)."""
    for data in (recursive_model(), sort_model()):
        st = pstats_export.to_stats_dict(data)
        for fs in data.function_stats():
            key = fs.key if fs.key[0] else ("~", 0, fs.key[2])
            cc, _nc, tt, ct, _callers = st[key]
            assert cc == fs.total_weight
            assert tt == pytest.approx(fs.self_weight * INTERVAL)
            assert ct == pytest.approx(fs.total_weight * INTERVAL)


def test_edges_partition_self_time() -> None:
    """Edge tt into f sums to f's tt (f is never a root in sort_model, except R)."""
    st = pstats_export.to_stats_dict(sort_model())
    for key, (_cc, _nc, tt, ct, callers) in st.items():
        if key[2] == "run_all":
            assert callers == {}
            continue
        assert sum(c[2] for c in callers.values()) == pytest.approx(tt)
        if key[2] != "delta":  # no recursion: edge ct partition ct too
            assert sum(c[3] for c in callers.values()) == pytest.approx(ct)


def test_sort_model_numbers() -> None:
    st = pstats_export.to_stats_dict(sort_model())
    by_name = {k[2]: v for k, v in st.items()}
    expected = {  # (cc, nc, tt weight, ct weight)
        "run_all": (15, 15, 2, 15),
        "alpha": (5, 5, 5, 5),
        "bravo": (7, 7, 3, 7),
        "charlie": (4, 4, 4, 4),
        "delta": (1, 8, 1, 1),
    }
    for name, (cc, nc, tw, cw) in expected.items():
        got = by_name[name]
        assert got[:2] == (cc, nc), name
        assert got[2] == _s(tw) and got[3] == _s(cw), name
    delta_key = SORT_FUNCS["D"].function_key
    run_key = SORT_FUNCS["R"].function_key
    # delta -> delta 7 times per sample (8 deep), counted once for cc/ct
    assert by_name["delta"][4] == {
        run_key: (1, 1, 0.0, _s(1)),
        delta_key: (7, 1, _s(1), _s(1)),
    }


def test_empty_profile_has_placeholder() -> None:
    st = pstats_export.to_stats_dict(empty_model())
    assert st == {pstats_export.NO_SAMPLES_KEY: (0, 0, 0.0, 0.0, {})}


def test_only_empty_stacks_is_empty() -> None:
    data = ProfileData({"interval": INTERVAL})
    data.add_sample([], weight=4)
    assert set(pstats_export.to_stats_dict(data)) == {pstats_export.NO_SAMPLES_KEY}


def test_render_is_plain_marshal_of_builtin_types(tmp_path: Path) -> None:
    data = recursive_model()
    raw = pstats_export.render(data)
    loaded = marshal.loads(raw)
    assert loaded == pstats_export.to_stats_dict(data)
    for key, (cc, nc, tt, ct, callers) in loaded.items():
        assert type(key) is tuple and [type(x) for x in key] == [str, int, str]
        assert [type(x) for x in (cc, nc, tt, ct)] == [int, int, float, float]
        for ckey, cval in callers.items():
            assert type(ckey) is tuple and [type(x) for x in cval] == [int, int, float, float]


def test_render_rejects_options() -> None:
    with pytest.raises(ValueError, match="no options"):
        pstats_export.render(recursive_model(), lines=True)


def test_render_is_deterministic() -> None:
    assert pstats_export.render(recursive_model()) == pstats_export.render(recursive_model())
    data = sort_model()
    assert pstats_export.render(data) == pstats_export.render(data.copy())


def test_registry_routes_prof_and_pstats(tmp_path: Path) -> None:
    from ringprof import exporters

    for name in ("x.prof", "x.pstats"):
        assert exporters.format_from_path(name) == "pstats"
        exporters.write(sort_model(), tmp_path / name)
        assert _stats(str(tmp_path / name)).stats == pstats_export.to_stats_dict(sort_model())


# --------------------------------------------------------------------- pstats
def test_pstats_loads_file(tmp_path: Path) -> None:
    st = _stats(_write(tmp_path, recursive_model()))
    assert st.total_calls == 6 + 9 + 7 + 1
    assert st.prim_calls == 6 + 6 + 4 + 1
    assert st.total_tt == _s(7)  # every weighted sample's leaf, once


def test_pstats_loads_empty_profile(tmp_path: Path) -> None:
    out = io.StringIO()
    st = _stats(_write(tmp_path, empty_model()), stream=out)
    st.sort_stats("cumulative").print_stats()
    assert "0 function calls in 0.000 seconds" in out.getvalue()
    assert "{no samples}" in out.getvalue()


class _Source:
    """What pstats accepts besides a file: an object with create_stats()/stats."""

    def __init__(self, data: ProfileData) -> None:
        self.data = data
        self.stats: pstats_export.StatsDict = {}
        self.created = 0

    def create_stats(self) -> None:
        self.created += 1
        self.stats = pstats_export.to_stats_dict(self.data)


def test_pstats_loads_object_with_create_stats() -> None:
    src = _Source(recursive_model())
    st = _stats(src)
    assert src.created == 1
    assert st.stats[KEY_A][:2] == (6, 9)


@pytest.mark.parametrize("key", sorted(SORT_ORDERS))
def test_sort_keys_order(tmp_path: Path, key: str) -> None:
    st = _stats(_write(tmp_path, sort_model())).sort_stats(key)
    assert [k[2] for k in st.fcn_list] == SORT_ORDERS[key]


def test_sortkey_enum_and_legacy_ints(tmp_path: Path) -> None:
    path = _write(tmp_path, sort_model())
    st = _stats(path).sort_stats(pstats.SortKey.CUMULATIVE)
    assert [k[2] for k in st.fcn_list] == SORT_ORDERS["cumulative"]
    st = _stats(path).sort_stats(2)  # legacy 2 == cumulative
    assert [k[2] for k in st.fcn_list] == SORT_ORDERS["cumulative"]


def test_print_stats_callers_callees(tmp_path: Path) -> None:
    out = io.StringIO()
    st = _stats(_write(tmp_path, recursive_model()), stream=out)
    st.sort_stats("cumulative").print_stats()
    st.print_callers()
    st.print_callees()
    text = out.getvalue()
    assert "23 function calls (17 primitive calls) in 0.070 seconds" in text
    assert "Ordered by: cumulative time" in text
    assert "ncalls  tottime  percall  cumtime  percall filename:lineno(function)" in text
    assert re.search(r"^\s+9/6\s+0\.030\s.*/app/mod\.py:10\(a\)$", text, re.M)
    assert "{truncated}" in text
    assert "called by" in text and "called..." in text


def test_pstats_add_merges_files(tmp_path: Path) -> None:
    p1 = _write(tmp_path, recursive_model(), "one.prof")
    p2 = _write(tmp_path, recursive_model(), "two.pstats")
    st = _stats(p1, p2)
    cc, nc, tt, _ct, callers = st.stats[KEY_B]
    assert (cc, nc) == (8, 14) and tt == _s(8)
    assert callers[KEY_A][:2] == (12, 6)


# --------------------------------------------------------------------- gprof2dot
def test_gprof2dot_reads_our_file(tmp_path: Path) -> None:
    pytest.importorskip("gprof2dot", reason="gprof2dot not installed (pip install gprof2dot)")
    path = _write(tmp_path, sort_model())
    proc = subprocess.run([sys.executable, "-m", "gprof2dot", "-f", "pstats", path],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.lstrip().startswith("digraph")
    for name in ("run_all", "alpha", "bravo", "charlie", "delta"):
        assert name in proc.stdout, name


def test_gprof2dot_reads_recursive_and_synthetic(tmp_path: Path) -> None:
    pytest.importorskip("gprof2dot", reason="gprof2dot not installed (pip install gprof2dot)")
    path = _write(tmp_path, recursive_model())
    proc = subprocess.run([sys.executable, "-m", "gprof2dot", "-f", "pstats", path],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert ":10:a" in proc.stdout and ":20:b" in proc.stdout


# --------------------------------------------------------------------- snakeviz
def test_snakeviz_stats_table(tmp_path: Path) -> None:
    pytest.importorskip("snakeviz", reason="snakeviz not installed (pip install snakeviz)")
    from snakeviz.stats import json_stats, table_rows

    st = _stats(_write(tmp_path, recursive_model()))
    rows = table_rows(st)
    assert any("mod.py:10(a)" in row[5] and row[0][0] == "9/6" for row in rows)
    tree = json_stats(st)
    assert "/app/mod.py:10(a)" in tree
    assert "/app/mod.py:20(b)" in tree["/app/mod.py:10(a)"]["children"]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_snakeviz_server_renders_our_file(tmp_path: Path) -> None:
    """Start ``snakeviz --server`` on loopback and fetch the page for our file."""
    pytest.importorskip("snakeviz", reason="snakeviz not installed (pip install snakeviz)")
    path = _write(tmp_path, sort_model())
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "snakeviz", "--server", "-H", "127.0.0.1", "-p", str(_free_port()), path],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    try:
        url = None
        seen: list[str] = []
        while url is None:
            try:
                line = lines.get(timeout=30)
            except queue.Empty:
                pytest.fail(f"snakeviz printed no URL within 30 s: {seen!r}")
            seen.append(line)
            if line.startswith("http://127.0.0.1:"):
                url = line.strip()
        assert url.endswith("/snakeviz/" + urllib.parse.quote(path, safe=""))
        with urllib.request.urlopen(url, timeout=30) as resp:
            assert resp.status == 200
            body = resp.read().decode("utf-8", "replace")
        for name in ("run_all", "alpha", "bravo", "charlie", "delta"):
            assert name in body, name
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
