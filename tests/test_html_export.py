"""Fast (no browser) checks of the HTML exporter: bytes, escaping, encoding.

The interactive behaviour is covered by ``test_html_viewer.py`` in a real
headless Chromium; these tests pin down what can be checked on the bytes:
determinism, self-containedness, that hostile strings cannot break out of the
embedded JSON, and that the compact encoding round-trips to the model.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import sys
from collections import Counter
from typing import Any

import pytest

from ringprof import exporters
from ringprof.exporters import html
from ringprof.model import Frame, ProfileData

# The model factory sits next to this file; importable whether or not tests/ is a package.
if os.path.dirname(os.path.abspath(__file__)) not in sys.path:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from html_models import (
    HOSTILE_PATH,
    MAIN_TID,
    XSS_FILE,
    XSS_LABEL,
    XSS_NAME,
    XSS_SCRIPT,
    big_model,
    realistic_model,
    simple_model,
    xss_model,
)

DATA_RE = re.compile(r'<script type="application/json" id="ringprof-data">(.*?)</script>', re.S)


def _page(data: ProfileData, **options: Any) -> str:
    return html.render(data, **options).decode("utf-8")


def _payload(page: str) -> dict[str, Any]:
    m = DATA_RE.search(page)
    assert m, "no embedded data block"
    out: dict[str, Any] = json.loads(m.group(1))
    return out


def _unpack(b64: str | None) -> list[int]:
    """Python twin of the viewer's ``unpack``: LEB128 varints in base64."""
    out: list[int] = []
    v = shift = 0
    for byte in base64.b64decode(b64 or ""):
        v |= (byte & 0x7F) << shift
        if byte < 0x80:
            out.append(v)
            v = shift = 0
        else:
            shift += 7
    return out


FrameKey = tuple[str, str, int, int]
SampleKey = tuple[str, tuple[FrameKey, ...], tuple[tuple[str, str], ...]]


def _decoded_samples(p: dict[str, Any]) -> Counter[SampleKey]:
    """(thread id, frames root first, labels) -> weight, rebuilt from the payload."""
    s = p["strings"]
    short = [s[i] for i in _unpack(p["files"]["short"])]
    fn_name = [s[i] for i in _unpack(p["funcs"]["name"])]
    fn_file = _unpack(p["funcs"]["file"])
    fn_first = _unpack(p["funcs"]["first"])
    fr_func = _unpack(p["frames"]["func"])
    fr_line = _unpack(p["frames"]["line"])
    parent = [-1]
    frame = [-1]
    nf = _unpack(p["nodes"]["frame"])
    for att, length in zip(_unpack(p["nodes"]["attach"]), _unpack(p["nodes"]["length"]), strict=True):
        par = att
        for _ in range(length):
            parent.append(par)
            frame.append(nf[len(frame) - 1])
            par = len(frame) - 1
    assert len(frame) == len(nf) + 1
    assert all(parent[i] < i for i in range(1, len(parent))), "parents must precede children"

    def frames_of(node: int) -> tuple[tuple[str, str, int, int], ...]:
        out = []
        while node > 0:
            fr = frame[node]
            fn = fr_func[fr]
            out.append((fn_name[fn], short[fn_file[fn]], fn_first[fn], fr_line[fr]))
            node = parent[node]
        return tuple(reversed(out))

    sm = p["samples"]
    nodes = _unpack(sm["node"])
    threads = _unpack(sm["thread"])
    weights = _unpack(sm["weight"])
    labels = _unpack(sm["labels"]) if sm["labels"] is not None else [0] * len(nodes)
    deltas = _unpack(sm["bucket_delta"])
    assert len(nodes) == len(threads) == len(weights) == len(labels) == len(deltas)
    assert all(d >= 0 for d in deltas)
    label_sets = [tuple((s[flat[i]], s[flat[i + 1]]) for i in range(0, len(flat), 2))
                  for flat in p["label_sets"]]
    out: Counter[Any] = Counter()
    for node, thr, w, lab in zip(nodes, threads, weights, labels, strict=True):
        out[(p["threads"]["id"][thr], frames_of(node), label_sets[lab])] += w
    return out


def _expected_samples(data: ProfileData, shorten: dict[str, str]) -> Counter[Any]:
    out: Counter[Any] = Counter()
    for sid, tid, w, lab in zip(data.stack.tolist(), data.thread.tolist(), data.weight.tolist(),
                                data.labels.tolist(), strict=True):
        frames = tuple((f.name, shorten.get(f.filename, f.filename), f.firstlineno, f.line)
                       for f in (data.frames[i] for i in data.stacks[sid]))
        out[(str(tid), frames, tuple(sorted(data.label_sets[lab].items())))] += w
    return out


# ---------------------------------------------------------------------- contract

def test_extensions_and_registry() -> None:
    assert html.EXTENSIONS == (".html",)
    assert exporters.extensions("html") == html.EXTENSIONS
    assert exporters.format_from_path("out/flame.HTML") == "html"
    assert exporters.render(simple_model(), "html") == html.render(simple_model())


def test_deterministic() -> None:
    opts = {"source_url": "https://github.com/o/r/blob/c0ffee/{path}#L{line}", "title": "t"}
    a = html.render(simple_model(), **opts)
    assert a == html.render(simple_model(), **opts)
    assert a == html.render(simple_model().copy(), **opts)
    r = realistic_model()
    assert html.render(r) == html.render(r)


# ---------------------------------------------------------------------- self-contained

def test_self_contained() -> None:
    page = _page(realistic_model(), source_url="https://github.com/o/r/blob/c/{path}#L{line}")
    # No element pulls anything from a network location (data: URIs are inline).
    for m in re.finditer(r"""\b(?:src|href|action|poster|data)\s*=\s*["']?\s*([^"'\s>]*)""", page, re.I):
        assert not re.match(r"(?:https?:)?//", m.group(1), re.I), m.group(0)
    assert not re.search(r"<(?:iframe|img|object|embed|audio|video|source)\b", page, re.I)
    assert not re.search(r"<link\b(?![^>]*href=\"data:)", page, re.I)
    assert "@import" not in page
    assert not re.search(r"url\(\s*['\"]?(?:https?:)?//", page, re.I)
    assert "fetch(" not in page and "XMLHttpRequest" not in page and "WebSocket" not in page
    # Exactly two scripts: the JSON data block and the inline viewer.
    assert page.count("<script") == 2
    assert re.search(r"<script>", page)
    # The CSP allows only the inline viewer, by hash, and no fetches at all.
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', page)
    assert csp and "default-src 'none'" in csp.group(1)
    js = re.search(r"<script>(.*?)</script>", page, re.S)
    assert js
    digest = base64.b64encode(hashlib.sha256(js.group(1).encode()).digest()).decode()
    assert f"'sha256-{digest}'" in csp.group(1)


# ---------------------------------------------------------------------- escaping

def test_hostile_strings_cannot_break_out() -> None:
    d = xss_model()
    d.add_sample([Frame("sep\u2028\u2029</SCRIPT ><!--", "demo.py", 1, 2)], thread=MAIN_TID, time_ns=99)
    page = _page(d, title="</title><script>alert(9)</script>")
    # Only the two real closing tags; no raw payload anywhere in the document.
    assert len(re.findall(r"</script", page, re.I)) == 2
    hostile = (XSS_NAME, XSS_SCRIPT, XSS_FILE, XSS_LABEL, "<!--", "\u2028", "\u2029", "<img", "<svg onload")
    for payload in hostile:
        assert payload not in page, payload
    assert "<title>&lt;/title&gt;&lt;script&gt;alert(9)&lt;/script&gt;</title>" in page
    block = DATA_RE.search(page)
    assert block
    assert not set("<>&\u2028\u2029") & set(block.group(1))
    # ... yet the strings survive intact for the viewer to show as text.
    p = json.loads(block.group(1))
    for s in (XSS_NAME, XSS_SCRIPT, XSS_LABEL, "sep\u2028\u2029</SCRIPT ><!--"):
        assert s in p["strings"]
    assert XSS_FILE in p["strings"]
    assert p["title"] == "</title><script>alert(9)</script>"


def test_embed_json_escapes() -> None:
    text = html.embed_json({"a": "</script>&<!--\u2028\u2029", "b": "\udcff"})
    assert not set("<>&\u2028\u2029") & set(text)
    assert json.loads(text) == {"a": "</script>&<!--\u2028\u2029", "b": "\udcff"}


def test_default_title_and_meta() -> None:
    page = _page(simple_model())
    assert "<title>ringprof: demo.py --fast</title>" in page
    p = _payload(page)
    assert p["meta"]["mode"] == "cpu" and p["interval_ns"] == 10_000_000
    nan = simple_model()
    nan.meta["stats"] = {"rate": float("nan")}
    assert _payload(_page(nan))["meta"]["stats"] == {"rate": None}


# ---------------------------------------------------------------------- source links

@pytest.mark.parametrize("template", [
    "https://github.com/o/r/blob/abc/{path}#L{line}",
    "http://gitlab.local/o/r/-/blob/main/{path}#L{line}",
    "vscode://file/{abspath}:{line}",
    "file://{abspath}",
    "pycharm://open?file={abspath}&line={line}",
])
def test_source_url_accepted(template: str) -> None:
    assert _payload(_page(simple_model(), source_url=template))["source_url"] == template


@pytest.mark.parametrize("template", [
    "javascript:alert(1)//{path}",
    " javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "{path}",
    "//evil.example/{path}",
    "https://x/{pth}#L{line}",
])
def test_source_url_rejected(template: str) -> None:
    with pytest.raises(ValueError):
        html.render(simple_model(), source_url=template)


def test_paths_relative_to_cwd() -> None:
    p = _payload(_page(simple_model()))  # meta cwd = /proj
    s = p["strings"]
    rows = list(zip((s[i] for i in _unpack(p["files"]["short"])), (s[i] for i in _unpack(p["files"]["path"])),
                    (s[i] for i in _unpack(p["files"]["abspath"])), strict=True))
    assert ("server/parse.py", "server/parse.py", "/proj/server/parse.py") in rows
    stdlib = "/usr/lib/python3.11/json/decoder.py"
    assert ("json/decoder.py", stdlib, stdlib) in rows
    evil = _payload(_page(xss_model()))
    # A file name that looks like a URL is still just a path under the cwd.
    abspaths = [evil["strings"][i] for i in _unpack(evil["files"]["abspath"])]
    assert any(a.endswith(os.path.normpath(HOSTILE_PATH)) and a.startswith("/") for a in abspaths)


# ---------------------------------------------------------------------- encoding

def test_pack_roundtrip() -> None:
    values = [0, 1, 127, 128, 300, 16383, 16384, 2**31 - 1, 2**31, 2**53, 2**62 + 5]
    assert _unpack(html._pack(values)) == values
    assert html._pack([]) == ""
    with pytest.raises(ValueError):
        html._pack([-1])


@pytest.mark.parametrize("factory", [simple_model, xss_model, realistic_model, lambda: big_model(3000)])
def test_payload_roundtrips_to_model(factory: Any) -> None:
    data = factory()
    p = _payload(_page(data))
    got = _decoded_samples(p)
    # Model file names map to the payload's short names by the exporter's rule.
    tables = html._Tables(data, data.meta.get("cwd") or os.getcwd())
    shorten = {f.filename: tables.strings[tables.file_short[tables.file(f.filename)]] for f in data.frames}
    assert got == _expected_samples(data, shorten)
    assert sum(_unpack(p["samples"]["weight"])) == data.total_weight()


def test_samples_are_aggregated_and_time_sorted() -> None:
    d = simple_model()
    p = _payload(_page(d))
    sm = p["samples"]
    # 100 samples at 10 ms, bucket = interval: no two samples share a bucket.
    assert p["bucket_ns"] == 10_000_000 and p["nbuckets"] == 100
    assert len(_unpack(sm["node"])) == 100 and sm["count"] is None
    # Same stack within one bucket merges, and counts are kept apart from weights.
    e = ProfileData({"interval": 0.01})
    fr = Frame("f", "a.py", 1, 2)
    for w in (1, 2, 3):
        e.add_sample([fr], thread=7, time_ns=1000 + w, weight=w)
    q = _payload(_page(e))
    assert _unpack(q["samples"]["weight"]) == [6]
    assert _unpack(q["samples"]["count"]) == [3]
    assert q["samples"]["labels"] is None
    # Long profiles are capped at MAX_BUCKETS buckets.
    g = ProfileData({"interval": 0.001})
    g.add_sample([fr], time_ns=0)
    g.add_sample([fr], time_ns=3600 * 10**9)
    assert _payload(_page(g))["nbuckets"] <= html.MAX_BUCKETS + 1


def test_threads_busiest_first_with_string_ids() -> None:
    p = _payload(_page(simple_model()))
    assert p["threads"]["id"] == ["1001", "2002"]
    assert [p["strings"][i] for i in p["threads"]["name"]] == ["MainThread", "worker"]
    big = ProfileData({"interval": 0.01})
    big.add_sample([Frame("f", "a.py", 1, 2)], thread=2**62 + 1)
    assert _payload(_page(big))["threads"]["id"] == [str(2**62 + 1)]


def test_empty_profile() -> None:
    page = _page(ProfileData({"interval": 0.01}))
    p = _payload(page)
    assert p["samples"]["node"] == "" and p["nbuckets"] == 1
    assert "<title>ringprof profile</title>" in page


def test_large_profile_stays_compact() -> None:
    data = big_model(20_000)
    out = html.render(data)
    nodes = len(_unpack(_payload(out.decode())["nodes"]["frame"]))
    # A few bytes per trie node (frame id + chain bookkeeping), not tens.
    assert len(out) < 60_000 + 4 * nodes, (len(out), nodes)
