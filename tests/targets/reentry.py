"""Target: C code calling back into Python many times per millisecond (map,
sorted with a key, reduce, eval): every call enters a fresh evaluation loop."""

import functools
import time


def ident(x):
    return x  # IDENT


def add(a, b):
    return a + b


DATA = list(range(300))


def run(seconds):
    deadline = time.thread_time() + seconds
    rounds = 0
    while time.thread_time() < deadline:
        list(map(ident, DATA))
        sorted(DATA, key=ident)
        functools.reduce(add, DATA)
        if rounds % 10 == 0:
            eval("ident(1)")  # compiling dominates: not every round
        rounds += 1
