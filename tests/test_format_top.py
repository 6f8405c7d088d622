"""The top-N table (``format_top``) on hand-made models with exact weights."""

from __future__ import annotations

import pytest

from ringprof import Profile
from ringprof.model import Frame, ProfileData, format_top, top_functions

FRAMEWORK_DEPTH = 60


def framework_model() -> ProfileData:
    """60 framework frames on every stack; below them a leaf with 60 % of the self
    time and four leaves with 10 % each.  Every framework frame has 100 % total
    time and 0 self, so ranking by total first hides the leaves."""
    data = ProfileData({"mode": "cpu", "interval": 0.01, "duration": 1.0, "stats": {"dropped": 0}})
    framework = [Frame(f"layer{i}", "framework.py", 10 * i + 1, 10 * i + 2) for i in range(FRAMEWORK_DEPTH)]
    hot = Frame("hot_leaf", "app.py", 5, 6)
    data.add_sample([*framework, hot], thread=1, time_ns=0, weight=60)
    for k in range(4):
        data.add_sample([*framework, Frame(f"cool{k}", "app.py", 20 + k, 21 + k)], thread=1,
                        time_ns=k + 1, weight=10)
    return data


def _rows(text: str) -> list[tuple[float, float, str]]:
    rows = []
    for line in text.splitlines()[2:]:
        self_pct, total_pct, rest = line.split(None, 2)
        rows.append((float(self_pct), float(total_pct), rest.split(" (")[0]))
    return rows


@pytest.mark.parametrize("n", [1, 3, 10, 15])
def test_self_sort_finds_the_leaf_under_a_deep_framework_stack(n: int) -> None:
    rows = _rows(format_top(framework_model(), n, sort="self"))
    assert len(rows) == n
    assert rows[0] == (60.0, 60.0, "hot_leaf")
    expected = [(60.0, 60.0, "hot_leaf")] + [(10.0, 10.0, f"cool{k}") for k in range(4)]
    expected += [(0.0, 100.0, f"layer{i}") for i in range(FRAMEWORK_DEPTH)]
    assert rows == expected[:n]


def test_self_ranking_is_over_every_function() -> None:
    stats = top_functions(framework_model(), 5, "self")
    assert [(s.key[2], s.self_weight, s.total_weight) for s in stats] == [
        ("hot_leaf", 60, 60), ("cool0", 10, 10), ("cool1", 10, 10), ("cool2", 10, 10), ("cool3", 10, 10)]


def test_total_sort_unchanged() -> None:
    rows = _rows(format_top(framework_model(), 3))
    assert rows == [(0.0, 100.0, "layer0"), (0.0, 100.0, "layer1"), (0.0, 100.0, "layer2")]


def test_profile_format_top_uses_the_same_ranking() -> None:
    data = framework_model()
    text = Profile.from_data(data).format_top(2, sort="self")
    assert text == format_top(data, 2, sort="self")
    assert _rows(text)[0][2] == "hot_leaf"
    assert text.splitlines()[0] == "ringprof: 5 samples, cpu mode, interval 0.01 s, 1.00 s sampled, dropped 0"


def test_unknown_sort_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown sort"):
        top_functions(framework_model(), 3, "cumulative")
