"""A self-contained, offline, interactive flame graph in one HTML file.

The file carries everything it needs: the viewer's JavaScript and CSS are
inlined from ``html_assets/`` (shipped as package data) and the profile is
embedded as JSON in a ``<script type="application/json">`` block. It makes no
network request, so it can be mailed, attached to a ticket or opened from a CI
artifact years later. A Content-Security-Policy forbids every fetch and allows
only the viewer's own script (by hash), so even a bug that let a profile string
reach the DOM as markup could not run it or exfiltrate anything.

Encoding (``version`` 1), chosen so that 100,000 unique stacks stay small and
the viewer can rebuild any filtered tree in one linear pass:

* ``strings``: every name and path once, as JSON strings; everything else
  refers to them by index;
* integer columns are *packed*: unsigned LEB128 varints, base64-encoded (one
  or two bytes for most ids and deltas instead of a decimal number and a
  comma; base64 holds nothing the HTML parser cares about);
* ``files`` / ``funcs`` / ``frames``: a function is (name, file, first line); a
  frame is (function, sampled line). The viewer merges by *function* (one box
  per function and call path, like every flame graph) and keeps the lines for
  the tooltip and the source link;
* ``nodes``: the stacks as a trie over frames, stored as *chains*: node 0 is
  the root and each used stack that adds nodes contributes
  ``(attach[k], length[k])``, i.e. ``length[k]`` new nodes (taking the next
  ``frame`` entries) hanging below existing node ``attach[k]``, each the
  parent of the next. Nodes are numbered in that order (depth-first), so a
  parent always precedes its children (one reverse pass sums totals);
* ``samples``: records sorted by time bucket then thread, labels and node.
  Time is quantised to at most :data:`MAX_BUCKETS` buckets (never finer than
  the sampling interval) and samples sharing (bucket, thread, labels, node)
  are merged, summing ``weight`` (timer expirations) and ``count`` (sample
  rows; omitted when equal to ``weight``). Buckets are delta-encoded. This is
  what the timeline strip and the time-range filter work on.

* ``diff`` (only in diff mode, see :func:`render`'s ``diff_base``): the
  BASE profile as a trie over *functions* (name, file), the way the viewer
  merges boxes: ``parent`` (node 0 is the root, parents first), ``name``
  (string id), ``file`` (file id, interned with NEW's so equal files get equal
  ids), ``self`` and ``total`` weights, plus BASE's total weight. The viewer
  pairs each of NEW's boxes with BASE's node on the same function path and
  colours it by the change of its total share (red grew, blue shrank).

Everything is deterministic: the same model and options give the same bytes
(paths are made relative to ``meta["cwd"]`` when recorded, else to the current
directory, so the same process gives the same output).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import html as _html
import itertools
import json
import os
import re
from importlib import resources
from typing import Any

import numpy as np

from ringprof.model import ProfileData

__all__ = ["EXTENSIONS", "MAX_BUCKETS", "SOURCE_URL_SCHEMES", "render"]

EXTENSIONS: tuple[str, ...] = (".html",)

#: Upper bound on timeline resolution: finer buckets would not be visible in the
#: strip (one pixel column each at most) and would only make the file larger.
MAX_BUCKETS = 4000

#: Schemes a ``source_url`` template may use: web code hosts and editor / file
#: handlers. Anything else (``javascript:``, ``data:``...) is refused, both here
#: and again by the viewer on the final, substituted URL.
SOURCE_URL_SCHEMES: frozenset[str] = frozenset({
    "http", "https", "file", "vscode", "vscode-insiders", "vscodium", "cursor",
    "idea", "pycharm", "jetbrains", "subl", "txmt", "mvim",
})

_PLACEHOLDERS = frozenset({"path", "abspath", "line"})
_TEMPLATE_SLOTS = re.compile(r"\{\{(TITLE|CSP|CSS|JS|DATA)\}\}")

# In a <script> block the HTML parser only looks for "</script" (and "<!--"),
# but escaping all of <, > and & keeps the JSON inert in any HTML context; the
# line separators are escaped because some JS parsers reject them raw. All of
# them can only occur inside JSON strings, where \uXXXX means the same thing.
_JSON_ESCAPES = str.maketrans({
    "<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029",
})


def _check_source_url(template: str) -> str:
    """Validate a ``source_url`` template; the scheme must be literal and allowed.

    The scheme has to come before any placeholder: ``{path}`` alone could
    otherwise expand to ``javascript:...`` for a hostile file name.
    """
    m = re.match(r"([A-Za-z][A-Za-z0-9+.-]*):", template)
    if not m or m.group(1).lower() not in SOURCE_URL_SCHEMES:
        raise ValueError(
            f"source_url {template!r} must start with one of the schemes "
            f"{', '.join(sorted(SOURCE_URL_SCHEMES))} (e.g. 'https://...' or 'vscode://file/{{abspath}}:{{line}}')"
        )
    unknown = set(re.findall(r"\{([^{}]*)\}", template)) - _PLACEHOLDERS
    if unknown:
        raise ValueError(
            f"source_url {template!r} has unknown placeholder(s) {', '.join(sorted(unknown))}; "
            "known: {path}, {abspath}, {line}"
        )
    return template


def _short_path(rel: str, abspath: str, under_cwd: bool) -> str:
    """A readable file name for labels: project-relative, or from the package root.

    Files of installed packages and the standard library are shown from their
    top-level package (``requests/sessions.py``, ``json/decoder.py``): the
    interpreter prefix is noise, and it is what colours are hashed on.
    """
    if under_cwd:
        return rel
    parts = abspath.replace("\\", "/").split("/")
    for marker in ("site-packages", "dist-packages"):
        if marker in parts:
            i = len(parts) - 1 - parts[::-1].index(marker)
            return "/".join(parts[i + 1:])
    for i in range(len(parts) - 1, -1, -1):
        if re.fullmatch(r"python\d+(\.\d+)*t?", parts[i], flags=re.IGNORECASE) and i + 1 < len(parts):
            return "/".join(parts[i + 1:])
    return abspath


class _Tables:
    """Interning of strings, files, functions and frames for the payload."""

    def __init__(self, data: ProfileData, cwd: str) -> None:
        self.data = data
        self.cwd = os.path.normpath(cwd)
        self.strings: list[str] = []
        self._string_ids: dict[str, int] = {}
        self.file_short: list[int] = []
        self.file_path: list[int] = []
        self.file_abspath: list[int] = []
        self._file_ids: dict[str, int] = {}
        self.func_name: list[int] = []
        self.func_file: list[int] = []
        self.func_first: list[int] = []
        self._func_ids: dict[tuple[str, int, str], int] = {}  # Frame.function_key
        self.frame_func: list[int] = []
        self.frame_line: list[int] = []
        self._frame_ids: dict[int, int] = {}  # model frame id -> payload frame id
        self.string("")
        self.file("")  # file 0: synthetic frames, no source

    def string(self, s: str) -> int:
        sid = self._string_ids.get(s)
        if sid is None:
            sid = self._string_ids[s] = len(self.strings)
            self.strings.append(s)
        return sid

    def file(self, filename: str) -> int:
        fid = self._file_ids.get(filename)
        if fid is not None:
            return fid
        fid = self._file_ids[filename] = len(self.file_short)
        if not filename or filename.startswith("<"):
            # Synthetic frames and code without a file (<string>, <frozen ...>):
            # no path to link to.
            short, rel, absp = filename, "", ""
        else:
            absp = os.path.normpath(os.path.join(self.cwd, filename))
            try:
                under = os.path.commonpath([self.cwd, absp]) == self.cwd
            except ValueError:  # different drives on Windows
                under = False
            rel = os.path.relpath(absp, self.cwd) if under else absp
            rel, absp = rel.replace(os.sep, "/"), absp.replace(os.sep, "/")
            short = _short_path(rel, absp, under)
        self.file_short.append(self.string(short))
        self.file_path.append(self.string(rel))
        self.file_abspath.append(self.string(absp))
        return fid

    def frame(self, model_fid: int) -> int:
        pid = self._frame_ids.get(model_fid)
        if pid is not None:
            return pid
        f = self.data.frames[model_fid]
        key = f.function_key
        func = self._func_ids.get(key)
        if func is None:
            func = self._func_ids[key] = len(self.func_name)
            self.func_name.append(self.string(f.name))
            self.func_file.append(self.file(f.filename))
            self.func_first.append(max(int(f.firstlineno), 0))
        pid = self._frame_ids[model_fid] = len(self.frame_func)
        self.frame_func.append(func)
        self.frame_line.append(max(int(f.line), 0))
        return pid


def _pack(values: Any) -> str:
    """Non-negative integers as unsigned LEB128 varints, base64-encoded.

    Ids and deltas are mostly small: one or two bytes each instead of a decimal
    number and a comma, and base64 has nothing the HTML parser cares about. The
    viewer decodes with ``atob`` in one linear pass.
    """
    u = np.asarray(values, dtype=np.int64).reshape(-1)
    if not u.size:
        return ""
    if int(u.min()) < 0:
        raise ValueError("cannot pack negative integers")
    v = u.astype(np.uint64)
    nbytes = np.ones(v.shape, dtype=np.int64)
    for k in range(1, 10):
        nbytes += v >= np.uint64(1 << (7 * k))
    ends = np.cumsum(nbytes)
    starts = ends - nbytes
    out = np.zeros(int(ends[-1]), dtype=np.uint8)
    for k in range(int(nbytes.max())):
        m = nbytes > k
        byte = (v[m] >> np.uint64(7 * k)) & np.uint64(0x7F)
        more = (nbytes[m] > k + 1).astype(np.uint64) << np.uint64(7)
        out[starts[m] + k] = (byte | more).astype(np.uint8)
    return base64.b64encode(out.tobytes()).decode("ascii")


def _thread_name(data: ProfileData, tid: int) -> str:
    name = data.threads.get(tid)
    return name if name else f"thread {tid}"


def _diff_payload(base: ProfileData, tables: _Tables, names: tuple[str, str]) -> dict[str, Any]:
    """BASE as a function-level trie for the differential flame graph (see the module docstring).

    Built one depth at a time with numpy (a sort per level) instead of a dict
    walk per frame: 100,000 stacks of depth 25 take a fraction of a second.
    Nodes come out level by level, so a parent always precedes its children.
    """
    key_ids: dict[tuple[int, int], int] = {}
    key_name: list[int] = []
    key_file: list[int] = []
    frame_key = np.zeros(max(len(base.frames), 1), dtype=np.int64)
    for fid, f in enumerate(base.frames):
        key = (tables.string(f.name), tables.file(f.filename))
        k = key_ids.get(key)
        if k is None:
            k = key_ids[key] = len(key_name)
            key_name.append(key[0])
            key_file.append(key[1])
        frame_key[fid] = k
    nkeys = max(len(key_name), 1)
    stack_w = base.stack_weights()
    used = np.flatnonzero(stack_w > 0)
    w = stack_w[used].astype(np.float64)
    stacks = [base.stacks[sid] for sid in used.tolist()]
    lengths = np.fromiter((len(st) for st in stacks), dtype=np.int64, count=len(stacks))
    keys = frame_key[np.fromiter(itertools.chain.from_iterable(stacks), dtype=np.int64,
                                 count=int(lengths.sum()))]
    starts = np.cumsum(lengths) - lengths
    node = np.zeros(len(stacks), dtype=np.int64)  # each stack's node at the current depth (0: root)
    parents: list[np.ndarray] = []
    names_: list[np.ndarray] = []
    files_: list[np.ndarray] = []
    totals: list[np.ndarray] = []
    next_id = 1
    names_arr, files_arr = np.asarray(key_name, dtype=np.int64), np.asarray(key_file, dtype=np.int64)
    for depth in range(int(lengths.max()) if len(lengths) else 0):
        active = np.flatnonzero(lengths > depth)
        code = node[active] * nkeys + keys[starts[active] + depth]
        order = np.argsort(code, kind="stable")
        sorted_code = code[order]
        first = np.concatenate(([True], sorted_code[1:] != sorted_code[:-1]))
        group = np.cumsum(first) - 1
        node[active[order]] = next_id + group
        codes = sorted_code[first]
        parents.append(codes // nkeys)
        names_.append(names_arr[codes % nkeys])
        files_.append(files_arr[codes % nkeys])
        totals.append(np.bincount(group, weights=w[active[order]], minlength=len(codes)))
        next_id += len(codes)
    self_w = np.bincount(node, weights=w, minlength=next_id)

    def cat(parts: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    return {
        "base_name": names[0],
        "new_name": names[1],
        "base_mode": str(base.meta.get("mode", "cpu")),
        "base_interval_ns": max(base.interval_ns, 1),
        "base_weight": int(stack_w[used].sum()),
        "nodes": {"parent": _pack(cat(parents)), "name": _pack(cat(names_)), "file": _pack(cat(files_)),
                  "self": _pack(np.rint(self_w[1:])), "total": _pack(np.rint(cat(totals)))},
    }


def _payload(data: ProfileData, source_url: str | None, title: str,
             diff_base: ProfileData | None = None, diff_names: tuple[str, str] = ("BASE", "NEW")) -> dict[str, Any]:
    """The JSON document the viewer reads (see the module docstring)."""
    meta = data.meta
    cwd = meta.get("cwd") if isinstance(meta.get("cwd"), str) else os.getcwd()
    tables = _Tables(data, str(cwd))
    n = len(data)
    stack_col = data.stack

    # Trie over the stacks that have samples, built on model frame ids from the
    # stacks in lexicographic order: then the part a stack shares with all
    # earlier ones is exactly its common prefix with the previous one, so no
    # lookup table is needed, and its remaining frames form one new chain.
    # (Nodes come out in depth-first order; deterministic like the sort.)
    used = np.unique(stack_col).tolist() if n else []
    attach: list[int] = []
    chain_len: list[int] = []
    node_frame: list[int] = []
    stack_node = np.zeros(max(len(data.stacks), 1), dtype=np.int64)
    path: list[int] = []  # node ids along the previous stack
    prev: tuple[int, ...] = ()
    for sid in sorted(used, key=data.stacks.__getitem__):
        st = data.stacks[sid]
        common = min(len(st), len(prev))
        i = 0
        while i < common and st[i] == prev[i]:
            i += 1
        del path[i:]
        if i < len(st):
            base = len(node_frame) + 1
            attach.append(path[-1] if path else 0)
            chain_len.append(len(st) - i)
            node_frame.extend(st[i:])
            path.extend(range(base, base + len(st) - i))
        stack_node[sid] = path[-1] if path else 0
        prev = st
    # Payload frame ids in order of first use in the trie.
    model_fids = np.asarray(node_frame, dtype=np.int64)
    fmap = np.zeros(max(len(data.frames), 1), dtype=np.int64)
    if len(model_fids):
        uniq, first = np.unique(model_fids, return_index=True)
        for fid in uniq[np.argsort(first, kind="stable")].tolist():
            fmap[fid] = tables.frame(fid)
    payload_frames = fmap[model_fids]

    # Threads: busiest first (the selector's order), ties by id.
    thread_col = data.thread
    tids, thr_inv = (np.unique(thread_col, return_inverse=True) if n
                     else (np.zeros(0, np.int64), np.zeros(0, np.int64)))
    weight_col = data.weight
    thr_w = np.bincount(thr_inv, weights=weight_col, minlength=len(tids)) if n else np.zeros(0)
    order = sorted(range(len(tids)), key=lambda i: (-float(thr_w[i]), int(tids[i])))
    thr_rank = np.empty(len(tids), dtype=np.int64)
    thr_rank[order] = np.arange(len(tids))
    threads = {
        "id": [str(int(tids[i])) for i in order],  # strings: native ids can exceed 2**53
        "name": [tables.string(_thread_name(data, int(tids[i]))) for i in order],
    }

    # Label sets actually used, renumbered compactly in id order (so {} is first when used).
    label_col = data.labels
    lab_ids, lab_inv = (np.unique(label_col, return_inverse=True) if n
                        else (np.zeros(0, np.int64), np.zeros(0, np.int64)))
    label_sets: list[list[int]] = []
    for lid in lab_ids.tolist():
        flat: list[int] = []
        for k, v in sorted(data.label_sets[lid].items()):
            flat += [tables.string(k), tables.string(v)]
        label_sets.append(flat)

    interval_ns = max(data.interval_ns, 1)
    samples: dict[str, Any]
    if n:
        time_col = data.time_ns
        t0 = int(time_col.min())
        span = int(time_col.max()) - t0
        bucket_ns = max(interval_ns, -(-span // MAX_BUCKETS), 1)
        bucket = (time_col - t0) // bucket_ns
        nbuckets = int(bucket.max()) + 1
        node = stack_node[stack_col]
        thr = thr_rank[thr_inv]
        lab = np.asarray(lab_inv, dtype=np.int64)
        idx = np.lexsort((node, lab, thr, bucket))
        keys = np.stack([bucket[idx], thr[idx], lab[idx], node[idx]])
        starts = np.flatnonzero(np.concatenate(([True], np.any(keys[:, 1:] != keys[:, :-1], axis=0))))
        g_bucket, g_thr, g_lab, g_node = (k[starts] for k in keys)
        g_weight = np.add.reduceat(weight_col[idx], starts)
        g_count = np.diff(np.append(starts, n))
        samples = {
            "node": _pack(g_node),
            "thread": _pack(g_thr),
            "bucket_delta": _pack(np.diff(g_bucket, prepend=0)),
            "weight": _pack(g_weight),
            "count": None if np.array_equal(g_count, g_weight) else _pack(g_count),
            "labels": _pack(g_lab) if len(label_sets) > 1 or (label_sets and label_sets[0]) else None,
        }
    else:
        t0, bucket_ns, nbuckets = 0, interval_ns, 1
        samples = {"node": "", "thread": "", "bucket_delta": "", "weight": "", "count": None, "labels": None}

    # BASE's strings and files go into the shared tables before they are packed.
    diff = _diff_payload(diff_base, tables, diff_names) if diff_base is not None else None
    payload: dict[str, Any] = {
        "version": 1,
        "title": title,
        "meta": meta,
        "interval_ns": interval_ns,
        "t0_ns": t0,
        "bucket_ns": bucket_ns,
        "nbuckets": nbuckets,
        "source_url": source_url,
        "strings": tables.strings,
        "files": {"short": _pack(tables.file_short), "path": _pack(tables.file_path),
                  "abspath": _pack(tables.file_abspath)},
        "funcs": {"name": _pack(tables.func_name), "file": _pack(tables.func_file),
                  "first": _pack(tables.func_first)},
        "frames": {"func": _pack(tables.frame_func), "line": _pack(tables.frame_line)},
        "nodes": {"attach": _pack(attach), "length": _pack(chain_len), "frame": _pack(payload_frames)},
        "threads": threads,
        "label_sets": label_sets,
        "samples": samples,
    }
    if diff is not None:
        payload["diff"] = diff
    return payload


@functools.cache
def _asset(name: str) -> str:
    """An inlined viewer asset, read from package data once per process."""
    text = resources.files("ringprof.exporters").joinpath("html_assets", name).read_text("utf-8")
    if name != "template.html" and re.search(r"</(script|style)", text, flags=re.IGNORECASE):
        # Would end the inline element early; assets are ours, so this is a build bug.
        raise RuntimeError(f"html asset {name} contains a closing script/style tag")
    return text


def embed_json(obj: Any) -> str:
    """JSON that is safe to place verbatim inside an HTML ``<script>`` element."""
    # ensure_ascii: names may hold lone surrogates (undecodable file names), which
    # would not encode to UTF-8; as \\udcXX escapes they survive into JS strings.
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=True, allow_nan=False, default=str)
    return text.translate(_JSON_ESCAPES)


def _default_title(data: ProfileData) -> str:
    argv = data.meta.get("argv")
    if isinstance(argv, (list, tuple)) and argv:
        return "ringprof: " + " ".join([os.path.basename(str(argv[0])), *(str(a) for a in argv[1:])])
    return "ringprof profile"


def _json_safe_meta(meta: dict[str, Any]) -> dict[str, Any]:
    """Meta with non-finite floats replaced: JSON has no NaN and JSON.parse rejects it."""
    def fix(v: Any) -> Any:
        if isinstance(v, float) and not np.isfinite(v):
            return None
        if isinstance(v, dict):
            return {str(k): fix(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [fix(x) for x in v]
        return v
    return {str(k): fix(v) for k, v in meta.items()}


def render(data: ProfileData, *, source_url: str | None = None, title: str | None = None,
           diff_base: ProfileData | None = None, diff_names: tuple[str, str] = ("BASE", "NEW")) -> bytes:
    """Render ``data`` as one self-contained interactive HTML flame graph.

    ``source_url`` is an optional template for "open source" links with the
    placeholders ``{path}`` (relative to the working directory when the file is
    under it, else absolute), ``{abspath}`` and ``{line}``, e.g.
    ``https://github.com/ORG/REPO/blob/COMMIT/{path}#L{line}`` or
    ``vscode://file/{abspath}:{line}`` (a ``/`` written before ``{path}`` or
    ``{abspath}`` is not doubled by the path's own leading ``/``, except after
    ``//`` as in ``file://{abspath}``). Path segments are URL-encoded. Only web
    and editor/file schemes are accepted (:data:`SOURCE_URL_SCHEMES`); the
    viewer checks the final URL again. ``title`` defaults to the profiled
    command line.

    ``diff_base``: draw a *differential* flame graph: ``data`` (NEW) with each
    box coloured by the change of its share against ``diff_base`` (BASE); red
    grew, blue shrank, both shares on hover (see :mod:`ringprof.diff`).
    ``diff_names`` labels the two profiles in the page.
    """
    if source_url is not None:
        _check_source_url(source_url)
    page_title = title if title is not None else _default_title(data)
    payload = _payload(data, source_url, page_title, diff_base, diff_names)
    payload["meta"] = _json_safe_meta(payload["meta"])
    js = _asset("viewer.js")
    script_hash = base64.b64encode(hashlib.sha256(js.encode("utf-8")).digest()).decode("ascii")
    csp = (
        "default-src 'none'; "
        f"script-src 'sha256-{script_hash}'; "
        "style-src 'unsafe-inline'; img-src data:; "
        "base-uri 'none'; form-action 'none'"
    )
    slots = {
        "TITLE": _html.escape(page_title, quote=True),
        "CSP": csp,
        "CSS": _asset("viewer.css"),
        "JS": js,
        "DATA": embed_json(payload),
    }
    # One pass over the template: a value containing "{{JS}}" etc. is never re-expanded.
    page = _TEMPLATE_SLOTS.sub(lambda m: slots[m.group(1)], _asset("template.html"))
    return page.encode("utf-8")
