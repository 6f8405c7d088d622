"""`ringprof diff` on two real runs of a small benchmark where one function was made slower.

ringprof records a child process twice (``python -m ringprof -o run.pb.gz
bench.py``): the program as written, then after an edit that makes
``checksum`` do three times the work (and moves every line below it, as a real
edit does). The gate must flag ``checksum`` and nothing else. CPU mode: the
shares are shares of CPU time, which hold on a loaded machine.

Expected shares: BASE a third each; NEW checksum 3/5 = 60 % (+27 pp), the
other two 20 % (-13 pp). Binomial noise at ~750 samples per run is ~2.5 pp, so
the 10 pp threshold sits far from both.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = '''\
import sys


def parse_rows(n):
    acc = 0
    for i in range(n):
        acc = (acc * 31 + i) % 1000003
    return acc


def render_page(n):
    acc = 0
    for i in range(n):
        acc = (acc * 37 + i) % 1000033
    return acc


def checksum(n):
{checksum_body}


def main():
    n = 1_200_000
    for _ in range(3):
        parse_rows(n)
        render_page(n)
        checksum(n)


if __name__ == "__main__":
    main()
'''

FAST = '''\
    acc = 0
    for i in range(n):
        acc = (acc * 41 + i) % 1000037
    return acc'''

SLOW = '''\
    # "Improved" checksum: three passes instead of one.
    acc = 0
    for _ in range(3):
        for i in range(n):
            acc = (acc * 41 + i) % 1000037
    return acc'''


def record(tmp_path: Path, body: str, out: Path) -> None:
    script = tmp_path / "bench.py"
    script.write_text(BENCH.format(checksum_body=body))
    proc = subprocess.run([sys.executable, "-m", "ringprof", "-i", "0.001", "-o", str(out), str(script)],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("diffdemo")
    base, new = tmp / "base.pb.gz", tmp / "new.pb.gz"  # pprof: what the directory sink writes
    record(tmp, FAST, base)
    record(tmp, SLOW, new)
    return base, new


def ringprof_diff(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ringprof", "diff", *args], capture_output=True, text=True,
                          timeout=120, cwd=cwd)


def test_the_slowed_function_is_flagged_and_only_it(runs: tuple[Path, Path]) -> None:
    base, new = runs
    proc = ringprof_diff(str(base), str(new), "--fail-above", "10", cwd=base.parent)
    assert proc.returncode == 1, proc.stderr + proc.stdout
    err = proc.stderr.splitlines()
    assert err[0].startswith("ringprof diff: 1 function(s) grew more than 10 pp (sampling noise: 1 SE"), err
    assert len(err) == 2 and err[1].startswith("  checksum (") and "bench.py" in err[1], err
    m = re.search(r"self (\d+\.\d+)% -> (\d+\.\d+)%", err[1])
    assert m is not None
    before, after = float(m.group(1)), float(m.group(2))
    assert 23 < before < 43 and 50 < after < 70, (before, after)  # nominal 33.3 % -> 60 %
    # The text report shows the other two shrinking.
    self_part = proc.stdout.split("Total share")[0]
    for name in ("parse_rows", "render_page"):
        row = next(line for line in self_part.splitlines() if f" {name} (" in line)
        assert row.split()[0].startswith("-"), row


def test_the_gate_passes_when_the_slowed_function_is_excluded(runs: tuple[Path, Path]) -> None:
    base, new = runs
    proc = ringprof_diff(str(base), str(new), "--fail-above", "10", "--match", "^(parse_rows|render_page) ",
                         cwd=base.parent)
    assert proc.returncode == 0, proc.stderr
    assert "no function grew more than 10 pp" in proc.stderr


def test_a_run_compared_with_itself_flags_nothing(runs: tuple[Path, Path], tmp_path: Path) -> None:
    base, _ = runs
    proc = ringprof_diff(str(base), str(base), "--fail-above", "0.001", "-o", str(tmp_path / "same.html"),
                         cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "same.html").stat().st_size > 0
