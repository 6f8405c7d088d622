"""Hand-made :class:`ProfileData` models for the HTML exporter tests.

Built directly through the model's interning API (no sampler involved), so the
expected numbers in the tests can be read off the code below.
"""

from __future__ import annotations

import random

from ringprof.model import Frame, ProfileData

MAIN_TID = 1001
WORKER_TID = 2002
INTERVAL = 0.01  # seconds: one weight unit is 10 ms

XSS_NAME = "<img src=x onerror=alert(1)>"
XSS_SCRIPT = "</script><script>window.__xss=1;alert(2)</script>"
XSS_FILE = '"><svg onload=alert(3)>.py'
XSS_LABEL = "<b onmouseover=alert(4)>"
HOSTILE_PATH = "javascript:alert(5)//x.py"


def f(name: str, filename: str = "app.py", first: int = 1, line: int | None = None) -> Frame:
    return Frame(name, filename, first, first + 1 if line is None else line)


def simple_model() -> ProfileData:
    """Two threads, 100 weight units in total (1 s at 10 ms).

    MainThread (60): <module> > main > compute > inner      30
                     <module> > main > compute              10 (compute self)
                     <module> > main > io_wait              20
    worker     (40): run > handle > parse                   25 (label route=/a)
                     run > handle > compute                 15 (label route=/b)

    So ``compute`` totals 55 (55.0%), ``inner`` 30, ``parse`` 25; MainThread 60.
    Time: main samples at 0..59 ms*10, worker ones interleaved, so the first
    half of the timeline holds both threads.
    """
    d = ProfileData({"mode": "cpu", "interval": INTERVAL, "duration": 1.0, "start_time": 1_700_000_000.0,
                     "python": "3.11.7 (main)", "pid": 4242, "argv": ["demo.py", "--fast"], "cwd": "/proj"})
    d.threads = {MAIN_TID: "MainThread", WORKER_TID: "worker"}
    mod = f("<module>", "demo.py", 1, 40)
    main = f("main", "demo.py", 10, 12)
    compute = f("compute", "demo.py", 20, 22)
    inner = f("inner", "/usr/lib/python3.11/json/decoder.py", 30, 33)
    io_wait = f("io_wait", "demo.py", 50, 51)
    run = f("run", "/usr/lib/python3.11/threading.py", 60, 61)
    handle = f("handle", "server/handlers.py", 70, 71)
    parse = f("parse", "server/parse.py", 80, 85)
    t = 0

    def add(frames: list[Frame], n: int, tid: int, labels: dict[str, str] | None = None) -> None:
        nonlocal t
        for _ in range(n):
            d.add_sample(frames, thread=tid, time_ns=t * 10_000_000, labels=labels)
            t += 1

    add([mod, main, compute, inner], 30, MAIN_TID)
    add([run, handle, parse], 25, WORKER_TID, {"route": "/a"})
    add([mod, main, compute], 10, MAIN_TID)
    add([run, handle, compute], 15, WORKER_TID, {"route": "/b"})
    add([mod, main, io_wait], 20, MAIN_TID)
    return d


def xss_model() -> ProfileData:
    """Hostile strings in every place a profile string can reach the page."""
    d = ProfileData({"mode": "wall", "interval": INTERVAL, "argv": ["prog.py", XSS_SCRIPT, XSS_NAME],
                     "python": XSS_NAME})
    d.threads = {MAIN_TID: XSS_NAME}
    root = f("<module>", "demo.py", 1)
    evil = f(XSS_NAME, XSS_FILE, 3)
    script = f(XSS_SCRIPT, "demo.py", 9)
    path = f("pathy", HOSTILE_PATH, 12)
    for i in range(10):
        d.add_sample([root, evil], thread=MAIN_TID, time_ns=i, labels={XSS_LABEL: XSS_SCRIPT})
    for i in range(6):
        d.add_sample([root, script], thread=MAIN_TID, time_ns=10 + i)
    for i in range(4):
        d.add_sample([root, path], thread=MAIN_TID, time_ns=20 + i)
    return d


def big_model(n_stacks: int = 100_000, seed: int = 7) -> ProfileData:
    """``n_stacks`` unique stacks from random walks over a synthetic call graph.

    About 3,000 functions in 150 files, depths 6..45, a few lines per function,
    so there is both heavy prefix sharing near the root and a long tail of
    distinct leaves, like a large real service. One sample per stack plus
    extra weight on a hot subset; two threads.
    """
    rng = random.Random(seed)
    d = ProfileData({"mode": "cpu", "interval": 0.001, "duration": 60.0})
    d.threads = {MAIN_TID: "MainThread", WORKER_TID: "pool-0"}
    n_funcs = 3000
    files = [f"/srv/app/pkg{i % 12}/mod{i}.py" for i in range(150)]
    callees = [[rng.randrange(n_funcs) for _ in range(rng.randint(2, 7))] for _ in range(n_funcs)]
    frame_ids: dict[tuple[int, int], int] = {}

    def frame(fn: int, k: int) -> int:
        key = (fn, k)
        fid = frame_ids.get(key)
        if fid is None:
            first = 10 + (fn % 400) * 7
            frame = Frame(f"func_{fn}", files[fn % len(files)], first, first + 1 + k)
            fid = frame_ids[key] = d.intern_frame(frame)
        return fid

    entries = [rng.randrange(n_funcs) for _ in range(6)]
    seen: set[tuple[int, ...]] = set()
    stacks: list[int] = []
    while len(stacks) < n_stacks:
        fn = entries[rng.randrange(len(entries))]
        depth = rng.randint(6, 45)
        path = []
        for _ in range(depth):
            path.append(frame(fn, rng.randrange(3)))
            fn = callees[fn][rng.randrange(len(callees[fn]))]
        key = tuple(path)
        if key in seen:
            continue
        seen.add(key)
        stacks.append(d.intern_stack(key))
    weights = [1 + (5 if i % 17 == 0 else 0) for i in range(n_stacks)]
    threads = [MAIN_TID if i % 3 else WORKER_TID for i in range(n_stacks)]
    times = [i * 600_000 for i in range(n_stacks)]
    d.add_samples(stacks, threads, times, weights)
    return d


def realistic_model(seed: int = 3) -> ProfileData:
    """A plausible web service profile for the README screenshot.

    A request handler thread pool doing routing, validation, ORM queries, JSON
    encoding and template rendering, plus a main thread in its event loop and
    a background metrics flusher, with a load spike in the middle.
    """
    rng = random.Random(seed)
    d = ProfileData({
        "mode": "cpu", "interval": 0.005, "duration": 30.0, "start_time": 1_718_000_000.0,
        "python": "3.11.7 (main, Dec  8 2023, 14:22:46) [GCC 12.2.0]", "pid": 31337,
        "argv": ["shopd/server.py", "--workers", "4"], "cwd": "/srv/shopd",
        "stats": {"samples": 0, "dropped": 0},
    })
    sp = "/srv/shopd/.venv/lib/python3.11/site-packages"
    std = "/usr/lib/python3.11"
    F = {
        "module": Frame("<module>", "shopd/server.py", 1, 88),
        "serve": Frame("serve_forever", f"{std}/socketserver.py", 215, 238),
        "select": Frame("select", f"{std}/selectors.py", 402, 416),
        "thread_run": Frame("Thread.run", f"{std}/threading.py", 975, 982),
        "worker": Frame("_worker", f"{std}/concurrent/futures/thread.py", 69, 83),
        "wsgi": Frame("WSGIApp.__call__", f"{sp}/flask/app.py", 1478, 1498),
        "dispatch": Frame("Flask.full_dispatch_request", f"{sp}/flask/app.py", 865, 880),
        "route": Frame("Router.dispatch", "shopd/routing.py", 41, 57),
        "checkout": Frame("checkout", "shopd/views/checkout.py", 12, 33),
        "cart": Frame("load_cart", "shopd/views/checkout.py", 60, 71),
        "price": Frame("compute_prices", "shopd/pricing.py", 18, 40),
        "discount": Frame("apply_discounts", "shopd/pricing.py", 77, 95),
        "tax": Frame("TaxTable.lookup", "shopd/tax.py", 22, 30),
        "validate": Frame("CheckoutSchema.validate", "shopd/schemas.py", 30, 44),
        "pyd": Frame("BaseModel.model_validate", f"{sp}/pydantic/main.py", 503, 509),
        "query": Frame("Query.all", f"{sp}/sqlalchemy/orm/query.py", 2673, 2690),
        "execute": Frame("Session.execute", f"{sp}/sqlalchemy/orm/session.py", 2262, 2300),
        "cursor": Frame("cursor.execute", f"{sp}/psycopg/cursor.py", 723, 732),
        "wait": Frame("wait_conn", f"{sp}/psycopg/waiting.py", 240, 266),
        "rows": Frame("ORMCompileState.orm_setup_cursor_result", f"{sp}/sqlalchemy/orm/context.py", 560, 590),
        "json": Frame("dumps", f"{std}/json/__init__.py", 183, 231),
        "encode": Frame("JSONEncoder.encode", f"{std}/json/encoder.py", 183, 200),
        "iterencode": Frame("JSONEncoder.iterencode", f"{std}/json/encoder.py", 205, 258),
        "default": Frame("ShopEncoder.default", "shopd/encoding.py", 9, 15),
        "render": Frame("render_template", f"{sp}/flask/templating.py", 135, 150),
        "jinja": Frame("Template.render", f"{sp}/jinja2/environment.py", 1291, 1301),
        "root_tpl": Frame("root", "templates/receipt.html", 1, 14),
        "search": Frame("search_products", "shopd/views/search.py", 20, 44),
        "tokenize": Frame("tokenize", "shopd/search/text.py", 8, 19),
        "re_sub": Frame("sub", f"{std}/re/__init__.py", 185, 186),
        "score": Frame("bm25_score", "shopd/search/rank.py", 31, 52),
        "sorted": Frame("sort_results", "shopd/search/rank.py", 70, 74),
        "log": Frame("Logger.info", f"{std}/logging/__init__.py", 1479, 1489),
        "emit": Frame("StreamHandler.emit", f"{std}/logging/__init__.py", 1098, 1113),
        "flush": Frame("MetricsFlusher.run", "shopd/metrics.py", 40, 58),
        "snapshot": Frame("Registry.snapshot", "shopd/metrics.py", 80, 92),
        "gzip": Frame("compress", f"{std}/gzip.py", 600, 612),
        "sleep": Frame("Event.wait", f"{std}/threading.py", 629, 655),
    }
    base = ["thread_run", "worker", "wsgi", "dispatch", "route"]
    req_paths: list[tuple[list[str], int, str]] = [
        ([*base, "checkout", "cart", "query", "execute", "cursor", "wait"], 34, "/api/checkout"),
        ([*base, "checkout", "cart", "query", "execute", "rows"], 12, "/api/checkout"),
        ([*base, "checkout", "price", "discount"], 16, "/api/checkout"),
        ([*base, "checkout", "price", "tax"], 9, "/api/checkout"),
        ([*base, "checkout", "price"], 5, "/api/checkout"),
        ([*base, "checkout", "validate", "pyd"], 11, "/api/checkout"),
        ([*base, "checkout", "render", "jinja", "root_tpl"], 10, "/api/checkout"),
        ([*base, "checkout", "json", "encode", "iterencode", "default"], 8, "/api/checkout"),
        ([*base, "checkout", "json", "encode", "iterencode"], 6, "/api/checkout"),
        ([*base, "search", "tokenize", "re_sub"], 14, "/api/search"),
        ([*base, "search", "score"], 26, "/api/search"),
        ([*base, "search", "sorted"], 7, "/api/search"),
        ([*base, "search", "query", "execute", "cursor", "wait"], 12, "/api/search"),
        ([*base, "search", "json", "encode", "iterencode"], 9, "/api/search"),
        ([*base, "search", "log", "emit"], 4, "/api/search"),
        ([*base, "checkout", "log", "emit"], 3, "/api/checkout"),
    ]
    main_paths = [(["module", "serve", "select"], 10), (["module", "serve"], 2)]
    flush_paths = [(["thread_run", "flush", "snapshot"], 3), (["thread_run", "flush", "gzip"], 2),
                   (["thread_run", "flush", "sleep"], 1)]
    workers = [3001, 3002, 3003, 3004]
    d.threads = {1: "MainThread", 2: "metrics-flusher"}
    d.threads.update({tid: f"ThreadPoolExecutor-0_{i}" for i, tid in enumerate(workers)})

    def pick(paths: list[tuple[list[str], int, str]]) -> tuple[list[str], str]:
        total = sum(w for _, w, _ in paths)
        r = rng.uniform(0, total)
        for p, w, label in paths:
            r -= w
            if r <= 0:
                return p, label
        return paths[-1][0], paths[-1][2]

    step_ns = 5_000_000
    n_steps = 6000  # 30 s at 5 ms
    for step in range(n_steps):
        t = step * step_ns
        load = 0.35 + 0.25 * (1 if 2400 < step < 3600 else 0) + 0.1 * ((step // 400) % 2)
        for tid in workers:
            if rng.random() < load:
                names, route = pick(req_paths)
                d.add_sample([F[n] for n in names], thread=tid, time_ns=t + tid, labels={"route": route})
        if rng.random() < 0.12:
            names2, _ = pick([(p, w, "") for p, w in main_paths])
            d.add_sample([F[n] for n in names2], thread=1, time_ns=t)
        if rng.random() < 0.05:
            names3, _ = pick([(p, w, "") for p, w in flush_paths])
            d.add_sample([F[n] for n in names3], thread=2, time_ns=t)
    d.meta["stats"]["samples"] = len(d)
    return d
