"""Markdown pieces shared by the benchmark scripts that print tables for RESULTS.md.

``benchmarks.tachyon`` and ``benchmarks.versions`` both write results as JSON,
render them later as Markdown tables (``--render FILE...``) and fail early
when their ``--json`` file cannot be written; the shared parts live here.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from typing import Any

#: The checkout (the parent of ``benchmarks/``).
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str = "") -> list[str]:
    """A Markdown table: ``align`` has one letter per column, ``l`` (left) or ``r`` (right);
    by default the first column is left-aligned and the others right-aligned."""
    align = align or "l" + "r" * (len(header) - 1)
    lines = ["| " + " | ".join(header) + " |", "|" + "".join(" :--- |" if a == "l" else " ---: |" for a in align)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def ratio_pct(median: float, low: float | None = None, high: float | None = None) -> str:
    """A ratio (profiled / unprofiled) as a signed percentage, with its range when given:
    ``+1.2% <sub>[-0.3, +2.0]</sub>``."""
    text = f"{100 * (median - 1):+.1f}%"
    if low is not None and high is not None:
        text += f" <sub>[{100 * (low - 1):+.1f}, {100 * (high - 1):+.1f}]</sub>"
    return text


def count(value: float) -> str:
    """A count or rate with thousands separators: ``12,345``."""
    return f"{value:,.0f}"


def read_json_files(paths: Sequence[str], prog: str) -> list[Any] | None:
    """The documents of ``paths``, or None after one line on stderr when one cannot be read."""
    docs = []
    for path in paths:
        try:
            with open(path) as fh:
                docs.append(json.load(fh))
        except (OSError, ValueError) as exc:
            print(f"{prog}: cannot read {path}: {exc}", file=sys.stderr)
            return None
    return docs


def check_writable(path: str, prog: str) -> bool:
    """Whether ``path`` can be written (checked before a long run, not after it); one line on stderr if not."""
    try:
        with open(path, "a"):
            pass
    except OSError as exc:
        print(f"{prog}: cannot write {path}: {exc.strerror or exc}", file=sys.stderr)
        return False
    return True
