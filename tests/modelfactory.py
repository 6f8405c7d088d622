"""Hand-made ProfileData models with exact, known numbers, shared by exporter tests.

A plain module (not a conftest fixture) so tests import exactly what they use
and the expected numbers sit next to the model that produces them.

``make_model()``: two threads, ``interval`` 10 ms (10_000_000 ns), total weight 18.

    MainThread (tid 100)                          time_ns      weight  labels
      <module>;main;work(line 7)                  0            3
      <module>;main;work(line 8)                  30_000_000   2
      <module>;main;Helper.run                    50_000_000   1       endpoint=/a
      <module>;main;fib;fib;fib                   60_000_000   4       endpoint=/a
      <module>;main                               100_000_000  1
    worker (tid 200)
      idle                                        5_000_000    5
      <truncated>;work(line 7)                    55_000_000   2

Function stats (self, total): main (1, 11), <module> (0, 11), work (7, 7),
idle (5, 5), fib (4, 4; recursion counted once), <truncated> (0, 2),
Helper.run (1, 1).
"""

from __future__ import annotations

from ringprof.model import Frame, ProfileData

INTERVAL_NS = 10_000_000
MAIN_TID = 100
WORKER_TID = 200

MODULE = Frame("<module>", "app.py", 1, 30)
MAIN = Frame("main", "app.py", 10, 12)
WORK = Frame("work", "lib.py", 5, 7)
WORK_L8 = Frame("work", "lib.py", 5, 8)
HELPER = Frame("Helper.run", "lib.py", 20, 22)
FIB = Frame("fib", "lib.py", 40, 41)
IDLE = Frame("idle", "worker.py", 3, 4)
TRUNCATED = Frame("<truncated>", "", 0, 0)

META = {
    "mode": "cpu",
    "interval": 0.01,
    "timer": "thread-cputime",
    "max_depth": 128,
    "start_time": 1_700_000_000.5,
    "duration": 2.0,
    "python": "3.11.7",
    "pid": 4242,
    "argv": ["app.py", "--fast"],
    "stats": {"samples": 7, "dropped": 0},
}

#: (name, self weight, total weight), in ``function_stats()`` order.
EXPECTED_FUNCTIONS = [
    ("main", 1, 11),
    ("<module>", 0, 11),
    ("work", 7, 7),
    ("idle", 5, 5),
    ("fib", 4, 4),
    ("<truncated>", 0, 2),
    ("Helper.run", 1, 1),
]
TOTAL_WEIGHT = 18


def make_model(mode: str = "cpu") -> ProfileData:
    """The model described in the module docstring (``mode`` sets ``meta['mode']``)."""
    timer = "thread-monotonic" if mode == "wall" else "thread-cputime"
    data = ProfileData({**META, "mode": mode, "timer": timer})
    data.threads = {MAIN_TID: "MainThread", WORKER_TID: "worker"}
    ms = 1_000_000
    a = {"endpoint": "/a"}
    data.add_sample([MODULE, MAIN, WORK], MAIN_TID, 0, weight=3, cpu_ns=29 * ms)
    data.add_sample([IDLE], WORKER_TID, 5 * ms, weight=5, cpu_ns=1 * ms)
    data.add_sample([MODULE, MAIN, WORK_L8], MAIN_TID, 30 * ms, weight=2, cpu_ns=20 * ms)
    data.add_sample([MODULE, MAIN, HELPER], MAIN_TID, 50 * ms, weight=1, cpu_ns=10 * ms, labels=a)
    data.add_sample([TRUNCATED, WORK], WORKER_TID, 55 * ms, weight=2, cpu_ns=19 * ms)
    data.add_sample([MODULE, MAIN, FIB, FIB, FIB], MAIN_TID, 60 * ms, weight=4, cpu_ns=40 * ms, labels=a)
    data.add_sample([MODULE, MAIN], MAIN_TID, 100 * ms, weight=1, cpu_ns=9 * ms)
    return data


def make_weird_model() -> ProfileData:
    """Names with ``;``, spaces, newlines, non-ASCII and an undecodable (surrogate) file name."""
    data = ProfileData({"mode": "cpu", "interval": 0.001})
    odd = Frame("a;b c\nd", "we;ird dir/x.py", 3, 4)
    uni = Frame("naïve_λ", "ünï.py", 7, 9)
    surrogate = Frame("bad", "caf\udce9.py", 1, 2)
    data.add_sample([uni, odd], 1, 0, weight=2)
    data.add_sample([uni, surrogate], 1, 1000, weight=1)
    return data


def make_empty_model() -> ProfileData:
    return ProfileData({"mode": "cpu", "interval": 0.01})
