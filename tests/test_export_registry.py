"""The format registry: names, extensions, lazy loading, atomic writes, reading back."""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from modelfactory import make_model

from ringprof import exporters
from ringprof.model import ProfileData

REPO = Path(__file__).resolve().parents[1]

MY_FORMATS = ("collapsed", "speedscope", "pprof", "chrome")

EXPECTED_EXTENSIONS = {
    "native": (".ringprof",),
    "collapsed": (".collapsed", ".folded", ".txt"),
    "speedscope": (".speedscope.json",),
    "pprof": (".pprof", ".pb.gz"),
    "chrome": (".trace.json", ".chrome.json"),
    "pstats": (".prof", ".pstats"),
    "html": (".html",),
    "otlp": (".otlp.pb",),
    "otlp-json": (".otlp.json",),
}


def _stats(data: ProfileData) -> list[tuple[tuple[str, int, str], int, int]]:
    return [(s.key, s.self_weight, s.total_weight) for s in data.function_stats()]


def test_formats_and_extensions() -> None:
    assert set(exporters.FORMATS) == set(EXPECTED_EXTENSIONS)
    assert len(exporters.FORMATS) == len(set(exporters.FORMATS))
    for fmt, exts in EXPECTED_EXTENSIONS.items():
        assert exporters.extensions(fmt) == exts


@pytest.mark.parametrize("fmt", [f for f in EXPECTED_EXTENSIONS if f != "native"])
def test_module_extensions_agree_with_registry(fmt: str) -> None:
    name = f"ringprof.exporters.{fmt.replace('-', '_')}"
    if importlib.util.find_spec(name) is None:
        pytest.skip(f"{name} is not written yet (another engineer's module)")
    module = importlib.import_module(name)
    assert tuple(module.EXTENSIONS) == EXPECTED_EXTENSIONS[fmt]
    assert callable(module.render)


@pytest.mark.parametrize(("path", "fmt"), [
    ("out.collapsed", "collapsed"), ("out.folded", "collapsed"), ("dir.x/out.txt", "collapsed"),
    ("out.speedscope.json", "speedscope"), ("OUT.SPEEDSCOPE.JSON", "speedscope"),
    ("out.pprof", "pprof"), ("out.pb.gz", "pprof"),
    ("out.trace.json", "chrome"), ("out.chrome.json", "chrome"),
    ("out.prof", "pstats"), ("out.pstats", "pstats"), ("out.html", "html"),
    ("out.ringprof", "native"), (Path("a/b.pb.gz"), "pprof"),
])
def test_format_from_path(path: str, fmt: str) -> None:
    assert exporters.format_from_path(path) == fmt


@pytest.mark.parametrize("path", ["out.json", "out.gz", "out", "out.pb", "speedscope.json.bak"])
def test_format_from_path_unknown(path: str) -> None:
    with pytest.raises(ValueError, match=r"supported extensions: \.ringprof, \.collapsed") as info:
        exporters.format_from_path(path)
    assert "\n" not in str(info.value)
    assert ".speedscope.json" in str(info.value) and ".html" in str(info.value)


def test_registry_is_lazy() -> None:
    # A fresh interpreter: the registry itself must not import any exporter module
    # (whatever the rest of the package imports is measured out by `before`).
    code = ("import sys, ringprof; before = set(sys.modules); "
            "import ringprof.exporters as e; e.format_from_path('x.pb.gz'); "
            "print(sorted(m for m in set(sys.modules) - before if m.startswith('ringprof.exporters.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("fmt", (*MY_FORMATS, "native"))
def test_render_is_deterministic_bytes(fmt: str) -> None:
    a = exporters.render(make_model(), fmt)
    assert isinstance(a, bytes) and a
    assert exporters.render(make_model(), fmt) == a


def test_render_native_equals_save(tmp_path: Path) -> None:
    data = make_model()
    data.save(tmp_path / "p.ringprof")
    assert exporters.render(data, "native") == (tmp_path / "p.ringprof").read_bytes()
    with pytest.raises(ValueError, match="no options"):
        exporters.render(data, "native", lines=True)


def test_render_passes_options_and_rejects_unknown_format() -> None:
    data = make_model()
    assert exporters.render(data, "collapsed", value="ns") != exporters.render(data, "collapsed")
    with pytest.raises(ValueError, match="unknown format 'svg'"):
        exporters.render(data, "svg")
    with pytest.raises(TypeError):
        exporters.render(data, "collapsed", bogus=1)


@pytest.mark.parametrize("name", ["p.collapsed", "p.speedscope.json", "p.pb.gz", "p.trace.json",
                                  "p.ringprof"])
def test_write_renders_by_extension(tmp_path: Path, name: str) -> None:
    data = make_model()
    target = tmp_path / name
    exporters.write(data, target)
    assert target.read_bytes() == exporters.render(data, exporters.format_from_path(name))
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no temporary left


def test_write_explicit_format_overrides_extension(tmp_path: Path) -> None:
    exporters.write(make_model(), tmp_path / "anything.out", format="collapsed")
    assert (tmp_path / "anything.out").read_bytes() == exporters.render(make_model(), "collapsed")


def test_write_unknown_extension(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="supported extensions"):
        exporters.write(make_model(), tmp_path / "p.json")
    assert list(tmp_path.iterdir()) == []


def test_write_render_failure_leaves_existing_file(tmp_path: Path) -> None:
    target = tmp_path / "p.collapsed"
    target.write_bytes(b"old")
    with pytest.raises(ValueError, match="value must be"):
        exporters.write(make_model(), target, value="bogus")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["p.collapsed"]


def test_write_replace_failure_cleans_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "p.collapsed"
    target.write_bytes(b"old")

    def fail(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match=r"cannot write '.*p\.collapsed': No space left") as info:
        exporters.write(make_model(), target)
    assert info.value.errno == 28
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["p.collapsed"]


def test_write_into_missing_directory(tmp_path: Path) -> None:
    target = tmp_path / "missing" / "p.pprof"
    with pytest.raises(FileNotFoundError, match=r"cannot write .*missing"):
        exporters.write(make_model(), target)


def test_write_file_mode_follows_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        exporters.write(make_model(), tmp_path / "p.txt")
    finally:
        os.umask(old)
    assert (tmp_path / "p.txt").stat().st_mode & 0o777 == 0o644


def test_read_native_round_trip(tmp_path: Path) -> None:
    data = make_model()
    exporters.write(data, tmp_path / "p.ringprof")
    back = exporters.read(tmp_path / "p.ringprof")
    assert _stats(back) == _stats(data)
    assert back.threads == data.threads and back.meta == data.meta
    assert back.label_sets == data.label_sets
    assert (back.time_ns == data.time_ns).all()


def test_read_detects_the_format_by_content(tmp_path: Path) -> None:
    make_model().save(tmp_path / "p.bin")
    assert _stats(exporters.read(tmp_path / "p.bin")) == _stats(make_model())
    (tmp_path / "junk.bin").write_bytes(b"not a profile")
    with pytest.raises(ValueError, match=r"junk\.bin: not folded stacks: line 1"):
        exporters.read(tmp_path / "junk.bin")


def test_read_collapsed(tmp_path: Path) -> None:
    data = make_model()
    exporters.write(data, tmp_path / "p.folded")
    back = exporters.read(tmp_path / "p.folded")
    assert [(k[2], s, t) for k, s, t in _stats(back)] == [(k[2], s, t) for k, s, t in _stats(data)]
    (tmp_path / "bad.txt").write_text("a;b notanumber\n")
    with pytest.raises(ValueError, match=r"bad\.txt: not folded stacks: line 1"):
        exporters.read(tmp_path / "bad.txt")


@pytest.mark.parametrize("name", ["p.pb.gz", "p.speedscope.json"])
def test_read_pprof_and_speedscope(tmp_path: Path, name: str) -> None:
    exporters.write(make_model(), tmp_path / name)
    back = exporters.read(tmp_path / name)
    assert [(k[0], k[2], s, t) for k, s, t in _stats(back)] == [(k[0], k[2], s, t) for k, s, t in _stats(make_model())]


@pytest.mark.parametrize("name", ["p.trace.json", "p.prof", "p.html"])
def test_read_unreadable_format(tmp_path: Path, name: str) -> None:
    exporters.write(make_model(), tmp_path / name)
    with pytest.raises(ValueError, match=re.escape(str(tmp_path / name)) + ": "):
        exporters.read(tmp_path / name)
