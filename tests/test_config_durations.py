"""One duration parser (``ringprof.config.parse_duration``) for every duration ringprof reads."""

from __future__ import annotations

import argparse

import pytest

from ringprof import cli
from ringprof.config import ConfigError, from_env, parse_duration, parse_interval


@pytest.mark.parametrize(("text", "seconds"), [
    ("0.01", 0.01), ("10ms", 0.01), ("500us", 0.0005), ("1s", 1.0), (" 2 s ", 2.0), ("5m", 300.0),
    ("2h", 7200.0), ("7d", 7 * 86400.0), ("1e-3", 0.001), ("10MS", 0.01), (3, 3.0), (0.5, 0.5),
])
def test_units(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


def test_rates_only_where_asked() -> None:
    assert parse_interval("100hz") == pytest.approx(0.01)
    assert parse_duration("250Hz", rate=True) == pytest.approx(0.004)
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("100hz", "window")


@pytest.mark.parametrize("bad", ["", "abc", "-1", "0", "0ms", "0hz", "1w", "10 parsecs", "nan", "inf"])
def test_bad_values_are_one_line_errors(bad: str) -> None:
    for rate in (False, True):
        with pytest.raises(ValueError) as info:
            parse_duration(bad, "window", rate=rate)
        assert "\n" not in str(info.value)


@pytest.mark.parametrize("text", ["0.01", "10ms", "500us", "100hz", "2ms"])
def test_cli_and_environment_accept_the_same_intervals(text: str, tmp_path: object) -> None:
    env = from_env({"RINGPROF_INTERVAL": text, "RINGPROF_SINKS": f"dir:{tmp_path}"})
    assert cli.interval_arg(text) == env.interval == parse_interval(text)


def test_cli_interval_errors_are_argparse_errors() -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="not an interval"):
        cli.interval_arg("fast")


def test_window_uses_the_same_parser(tmp_path: object) -> None:
    assert from_env({"RINGPROF_WINDOW": "2m", "RINGPROF_SINKS": f"dir:{tmp_path}"}).window == 120.0
    assert from_env({"RINGPROF_WINDOW": "1500ms", "RINGPROF_SINKS": f"dir:{tmp_path}"}).window == 1.5
    with pytest.raises(ConfigError, match="RINGPROF_WINDOW"):
        from_env({"RINGPROF_WINDOW": "100hz", "RINGPROF_SINKS": f"dir:{tmp_path}"})
