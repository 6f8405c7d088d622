"""Hand-made ProfileData for the pstats / cProfile-compatibility tests.

Each factory documents the stacks it records so the expected numbers in the
tests can be checked by hand. Times are ``weight * INTERVAL``.
"""

from __future__ import annotations

from ringprof.model import FLAG_TRUNCATED, Frame, ProfileData

INTERVAL = 0.01  # seconds per unit of weight

MAIN = Frame("main", "/app/main.py", 1, 3)
A_L11 = Frame("a", "/app/mod.py", 10, 11)
A_L12 = Frame("a", "/app/mod.py", 10, 12)  # same function as A_L11, other line
B_L21 = Frame("b", "/app/mod.py", 20, 21)
B_L22 = Frame("b", "/app/mod.py", 20, 22)
TRUNC = Frame("<truncated>", "", 0, 0)

KEY_MAIN = ("/app/main.py", 1, "main")
KEY_A = ("/app/mod.py", 10, "a")
KEY_B = ("/app/mod.py", 20, "b")
KEY_TRUNC = ("~", 0, "<truncated>")


def recursive_model(interval: float = INTERVAL) -> ProfileData:
    """Mutual recursion a -> b -> a -> b under main, plus edge cases.

    Samples (root first)::

        main;a;b;a;b   weight 1   \\ two rows of one stack: weight 3 in all
        main;a;b;a;b   weight 2   /  (frames of a and b at different lines)
        main;a         weight 3
        <truncated>;b  weight 1   (FLAG_TRUNCATED: the root side was cut)
        (empty stack)  weight 5   (no Python frames: contributes nothing)
    """
    data = ProfileData({"mode": "cpu", "interval": interval})
    data.add_sample([MAIN, A_L11, B_L21, A_L12, B_L22], time_ns=1, weight=1)
    data.add_sample([MAIN, A_L11, B_L21, A_L12, B_L22], time_ns=2, weight=2)
    data.add_sample([MAIN, A_L11], time_ns=3, weight=3)
    data.add_sample([TRUNC, B_L21], time_ns=4, weight=1, flags=FLAG_TRUNCATED)
    data.add_sample([], time_ns=5, weight=5)
    return data


# Functions of sort_model: each sort key orders them differently.
SORT_FUNCS = {
    "R": Frame("run_all", "/p/e.py", 50, 51),
    "A": Frame("alpha", "/p/d.py", 40, 41),
    "B": Frame("bravo", "/p/c.py", 30, 31),
    "C": Frame("charlie", "/p/b.py", 20, 21),
    "D": Frame("delta", "/p/a.py", 10, 11),
}


def sort_model(interval: float = INTERVAL) -> ProfileData:
    """Five functions whose cumulative/self time, counts, names and files all rank differently.

    Samples::

        R;A         weight 5
        R;B         weight 3
        R;B;C       weight 4
        R           weight 2
        R;D*8       weight 1   (delta recursing 8 deep)

    giving (nc, cc, tt/interval, ct/interval): R (15, 15, 2, 15), A (5, 5, 5, 5),
    B (7, 7, 3, 7), C (4, 4, 4, 4), D (8, 1, 1, 1).
    """
    f = SORT_FUNCS
    data = ProfileData({"mode": "cpu", "interval": interval})
    data.add_sample([f["R"], f["A"]], weight=5)
    data.add_sample([f["R"], f["B"]], weight=3)
    data.add_sample([f["R"], f["B"], f["C"]], weight=4)
    data.add_sample([f["R"]], weight=2)
    data.add_sample([f["R"]] + [f["D"]] * 8, weight=1)
    return data


#: Expected order of function names per pstats sort key for :func:`sort_model`.
SORT_ORDERS = {
    "cumulative": ["run_all", "bravo", "alpha", "charlie", "delta"],
    "tottime": ["alpha", "charlie", "bravo", "run_all", "delta"],
    "time": ["alpha", "charlie", "bravo", "run_all", "delta"],
    "ncalls": ["run_all", "delta", "bravo", "alpha", "charlie"],
    "calls": ["run_all", "delta", "bravo", "alpha", "charlie"],
    "pcalls": ["run_all", "bravo", "alpha", "charlie", "delta"],
    "name": ["alpha", "bravo", "charlie", "delta", "run_all"],
    "filename": ["delta", "charlie", "bravo", "alpha", "run_all"],
}


def empty_model() -> ProfileData:
    """A profile that recorded nothing (e.g. a call shorter than one interval)."""
    return ProfileData({"mode": "cpu", "interval": INTERVAL})
