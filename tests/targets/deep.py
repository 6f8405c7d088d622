"""Target: recursion far deeper than the sampler's max_depth, burning CPU at the bottom."""

import time


def burn_leaf(seconds):
    deadline = time.thread_time() + seconds
    acc = 0
    while time.thread_time() < deadline:
        for i in range(2000):
            acc += i * i % 11  # LEAF
    return acc


def recurse(n, seconds):
    if n == 0:
        return burn_leaf(seconds)  # BOTTOM
    return recurse(n - 1, seconds)  # RECURSE


def shallow(seconds):
    return burn_leaf(seconds)  # SHALLOW
