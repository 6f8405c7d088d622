"""Sink URLs and the directory sink (atomic files, retention, formats)."""

from __future__ import annotations

import os
import time

import pytest
from unwritable import no_dac_override, read_only_dir

from ringprof import sinks
from ringprof.exporters import pprof
from ringprof.model import Frame, ProfileData
from ringprof.sinks.directory import DirectorySink
from ringprof.sinks.pyroscope import PyroscopeSink


def window(index: int = 1, pid: int = 4242, start: float = 1_700_000_000.0, service: str = "svc") -> ProfileData:
    data = ProfileData({"mode": "cpu", "interval": 0.01, "service": service, "pid": pid,
                        "window_start": start, "window_end": start + 60, "window_index": index,
                        "start_time": start, "duration": 60.0, "tags": {"env": "prod"}})
    main = Frame("main", "/app/main.py", 1, 3)
    work = Frame("work", "/app/main.py", 10, 12)
    data.add_sample([main, work], thread=7, time_ns=1, weight=3, labels={"route": "/a"})
    data.add_sample([main], thread=7, time_ns=2, weight=1)
    return data


def test_parse_splits_on_sink_schemes_only():
    got = sinks.parse("dir:/tmp/a?format=collapsed&keep=5, pyroscope:http://127.0.0.1:4040?token=a,b,"
                      "dir:/tmp/b")
    assert [type(s).__name__ for s in got] == ["DirectorySink", "PyroscopeSink", "DirectorySink"]
    assert got[0].format == "collapsed" and got[0].keep == 5 and got[0].path == "/tmp/a"
    assert got[1].headers["Authorization"] == "Bearer a,b"  # commas inside a value stay
    assert got[2].path == "/tmp/b" and got[2].format == "pprof"


@pytest.mark.parametrize(("spec", "message"), [
    ("", "no sink"),
    ("s3://bucket", "unknown sink"),
    ("dir:", "missing its path"),
    ("dir:/x?format=gif", "unknown format"),
    ("dir:/x?keep=0", "keep must be at least 1"),
    ("dir:/x?keep=ten", "must be an integer"),
    ("dir:/x?max_age=soon", "not a duration"),
    ("dir:/x?colour=red", "unknown option colour"),
    ("dir:/x?keep=1&keep=2", "given twice"),
    ("pyroscope:ftp://h", "must be http"),
    ("pyroscope:http://h?retries=-1", "at least 0"),
    ("pyroscope:http://h?token=t&user=u", "not both"),
    ("pyroscope:http://h?ca=/nonexistent.pem", "does not exist"),
    ("pyroscope:http://h?token_file=/nonexistent", "cannot read token_file"),
    ("pyroscope:http://h?verify=maybe", "verify must be"),
])
def test_bad_sink_urls_are_one_line_errors(spec, message):
    with pytest.raises(ValueError, match=message) as info:
        sinks.parse(spec)
    assert "\n" not in str(info.value)


# The forms `ringprof -i` accepts (tests/test_config_durations.py), rates aside: a rate is a sampling
# interval, not a timeout or an age.
DURATION_FORMS = ["0.01", "10ms", "500us", "1s", " 2 s ", "5m", "2h", "7d", "1e-3", "10MS", "90", "250ms"]


@pytest.mark.parametrize("text", DURATION_FORMS)
def test_sink_durations_take_the_same_forms_as_the_interval_option(text: str, tmp_path) -> None:
    from urllib.parse import quote

    from ringprof import cli

    seconds = cli.interval_arg(text)
    value = quote(text)
    assert DirectorySink.from_url(f"{tmp_path}?max_age={value}").max_age == seconds
    assert PyroscopeSink.from_url(f"http://127.0.0.1:4040?timeout={value}&backoff={value}").timeout == seconds
    assert sinks.from_url(f"pyroscope:http://127.0.0.1:4040?backoff={value}").backoff == seconds
    otlp = sinks.from_url(f"otlp:http://127.0.0.1:4318?timeout={value}&backoff={value}")
    assert otlp.timeout == seconds and otlp.backoff == seconds


@pytest.mark.parametrize("bad", ["", "-1", "0", "1w", "abc", "100hz", "nan"])
def test_bad_sink_durations_are_the_parser_s_one_line_errors(bad: str, tmp_path) -> None:
    from urllib.parse import quote

    for spec in (f"dir:{tmp_path}?max_age={quote(bad)}", f"pyroscope:http://h?timeout={quote(bad)}",
                 f"otlp:http://h?backoff={quote(bad)}"):
        with pytest.raises(ValueError) as info:
            sinks.parse(spec)
        assert "\n" not in str(info.value) and "sink" in str(info.value), spec


def test_sinks_have_no_duration_parser_of_their_own() -> None:
    from ringprof import config
    from ringprof.sinks import directory, http, otlp, pyroscope

    assert not hasattr(sinks, "parse_duration")
    for module in (directory, http, otlp, pyroscope):  # the network sinks parse their options in http
        assert getattr(module, "parse_duration", config.parse_duration) is config.parse_duration, module
    assert directory.parse_duration is http.parse_duration is config.parse_duration


def test_coerce_accepts_urls_objects_and_callables(tmp_path):
    got: list[ProfileData] = []
    sink = sinks.coerce(got.append)
    sink.export(window())
    assert len(got) == 1 and isinstance(sink, sinks.CallbackSink)
    d = DirectorySink(tmp_path)
    assert sinks.coerce(d) is d
    assert isinstance(sinks.coerce(f"dir:{tmp_path}"), DirectorySink)
    with pytest.raises(TypeError):
        sinks.coerce(3)


def test_directory_sink_writes_one_file_per_window_atomically(tmp_path):
    sink = sinks.from_url(f"dir:{tmp_path}/out")
    sink.export(window(1))
    sink.export(window(2, start=1_700_000_060.0))
    names = sorted(os.listdir(tmp_path / "out"))
    assert names == ["svc-20231114T221320Z-4242-000001.pprof", "svc-20231114T221420Z-4242-000002.pprof"]
    prof = pprof.decode((tmp_path / "out" / names[0]).read_bytes())
    assert sum(s["values"][0] for s in prof["samples"]) == 4
    labels = [s["labels"] for s in prof["samples"]]
    assert {"route": ["/a"]} in labels


def test_directory_sink_formats(tmp_path):
    native = DirectorySink(tmp_path, "native")
    native.export(window())
    (path,) = tmp_path.glob("*.ringprof")
    loaded = ProfileData.load(path)
    assert loaded.meta["pid"] == 4242 and loaded.meta["window_index"] == 1 and len(loaded) == 2
    DirectorySink(tmp_path, "collapsed", prefix="x").export(window())
    (folded,) = tmp_path.glob("x-*.collapsed")
    assert "main (/app/main.py:1);work (/app/main.py:10) 3" in folded.read_text()
    DirectorySink(tmp_path, "speedscope").export(window())
    assert list(tmp_path.glob("svc-*.speedscope.json"))


def test_directory_sink_retention_by_count_keeps_the_newest(tmp_path):
    (tmp_path / "notes.txt").write_text("not ours")
    (tmp_path / "svc-backup.pprof").write_text("not a window file")
    sink = DirectorySink(tmp_path, keep=3)
    for i in range(1, 7):
        sink.export(window(i, pid=100 + i % 2, start=1_700_000_000.0 + 60 * i))
    ours = sorted(p.name for p in tmp_path.glob("svc-*-*-*.pprof") if p.name != "svc-backup.pprof")
    assert [n.rsplit("-", 1)[1] for n in ours] == ["000004.pprof", "000005.pprof", "000006.pprof"]
    assert (tmp_path / "notes.txt").exists() and (tmp_path / "svc-backup.pprof").exists()
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_directory_sink_retention_by_count_stats_no_file(tmp_path, monkeypatch):
    """Counting needs names only: no stat per file per window (each one lets go of the GIL)."""
    stats = []
    real_scandir = os.scandir

    class Entry:
        def __init__(self, entry):
            self.name = entry.name
            self._entry = entry

        def stat(self):
            stats.append(self.name)
            return self._entry.stat()

    class Listing:
        def __init__(self, path):
            self._it = real_scandir(path)

        def __enter__(self):
            return (Entry(e) for e in self._it)

        def __exit__(self, *exc):
            self._it.close()

    monkeypatch.setattr(os, "scandir", Listing)
    sink = DirectorySink(tmp_path, keep=2)
    for i in range(1, 5):
        sink.export(window(i, start=1_700_000_000.0 + 60 * i))
    # os.listdir: pathlib lists directories with os.scandir (3.13+), patched here.
    assert sorted(n.rsplit("-", 1)[1] for n in os.listdir(tmp_path)) == ["000003.pprof", "000004.pprof"]
    assert stats == []
    DirectorySink(tmp_path, keep=2, max_age=3600).export(window(5, start=1_700_000_300.0))
    assert len(stats) == 3  # an age limit does need each window's mtime


def test_directory_sink_retention_by_age(tmp_path):
    sink = DirectorySink(tmp_path, max_age=3600)
    sink.export(window(1))
    (old,) = tmp_path.iterdir()
    two_hours_ago = time.time() - 7200
    os.utime(old, (two_hours_ago, two_hours_ago))
    sink.export(window(2, start=1_700_000_060.0))
    names = [p.name for p in tmp_path.iterdir()]
    assert names == ["svc-20231114T221420Z-4242-000002.pprof"]


def test_directory_sink_failure_leaves_no_partial_file(tmp_path):
    target = tmp_path / "ro"
    target.mkdir()
    read_only_dir(target)
    try:
        with no_dac_override(), pytest.raises(OSError):  # read-only for root too (CI runs as root)
            DirectorySink(target).export(window())
        assert list(target.iterdir()) == []
    finally:
        target.chmod(0o700)


def test_pyroscope_sink_url_options(tmp_path):
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    sink = sinks.from_url("pyroscope:https://bob:p%40ss@pyro.example:4443/base?tenant=team-a&timeout=2"
                          "&retries=5&backoff=100ms&app=shop")
    assert isinstance(sink, PyroscopeSink)
    assert sink.endpoint == "https://pyro.example:4443/base/ingest"
    assert sink.headers["Authorization"] == "Basic Ym9iOnBAc3M="  # bob:p@ss
    assert sink.headers["X-Scope-OrgID"] == "team-a"
    assert (sink.timeout, sink.retries, sink.backoff) == (2.0, 5, 0.1)
    assert "bob" not in sink.name and "p%40ss" not in sink.name  # no credentials in log lines
    sink = sinks.from_url(f"pyroscope:http://127.0.0.1:4040?token_file={token}")
    assert sink.headers["Authorization"] == "Bearer s3cret"
    assert sink.app_name(window()) == "svc{env=prod}"


def test_directory_sink_render_failure_leaves_no_file(tmp_path, monkeypatch):
    import ringprof.exporters as exporters

    def broken(*args, **kwargs):
        raise RuntimeError("encoder bug")

    monkeypatch.setattr(exporters, "render", broken)
    with pytest.raises(RuntimeError):
        DirectorySink(tmp_path).export(window())
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("scheme", ["pyroscope", "otlp"])
def test_network_sinks_share_auth_tls_and_retry_options(scheme: str) -> None:
    from ringprof.sinks.http import HTTPSink

    sink = sinks.from_url(f"{scheme}:http://127.0.0.1:4040?token=t&tenant=team&timeout=2s&retries=1&backoff=50ms")
    assert isinstance(sink, HTTPSink)
    assert sink.headers["Authorization"] == "Bearer t" and sink.headers["X-Scope-OrgID"] == "team"
    assert (sink.timeout, sink.retries, sink.backoff) == (2.0, 1, 0.05)
    basic = sinks.from_url(f"{scheme}:http://alice:s%20cret@127.0.0.1:4040")
    assert basic.headers["Authorization"] == "Basic YWxpY2U6cyBjcmV0" and "alice" not in basic.endpoint
    for bad, message in ((f"{scheme}:http://u:p@127.0.0.1:4040?token=t", "not both"),
                         (f"{scheme}:ftp://127.0.0.1", "must be http"),
                         (f"{scheme}:http://127.0.0.1:4040?ca=/nonexistent.pem", "does not exist"),
                         (f"{scheme}:http://127.0.0.1:4040?verify=maybe", "verify must be"),
                         (f"{scheme}:http://127.0.0.1:4040?retries=-1", "at least 0")):
        with pytest.raises(ValueError, match=message) as info:
            sinks.from_url(bad)
        assert str(info.value).startswith(f"{scheme} sink"), info.value
