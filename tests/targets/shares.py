"""Target: known CPU shares.  alpha/beta/gamma call the same busy function
5:3:2 times per round, interleaved, so they should get 50/30/20 % of the CPU.
Each wrapper's own CPU time is also measured with time.thread_time()."""

import time

UNIT = 2000  # iterations of one work() call


def work(n):
    acc = 0
    for i in range(n):
        acc += i * i % 13  # WORK
    return acc


def alpha(k):
    for _ in range(k):
        work(UNIT)


def beta(k):
    for _ in range(k):
        work(UNIT)


def gamma(k):
    for _ in range(k):
        work(UNIT)


def calibrate(target_s=0.004):
    """Pick UNIT so that one work() call costs about ``target_s`` of CPU."""
    global UNIT
    n = 1000
    while True:
        t0 = time.thread_time()
        work(n)
        dt = time.thread_time() - t0
        if dt > 0.02:
            break
        n *= 2
    UNIT = max(100, int(n * target_s / dt))
    return UNIT


def run(seconds):
    """Rounds of alpha(5), beta(3), gamma(2) until ``seconds`` of CPU are spent.

    Returns the measured CPU seconds per function."""
    spent = {"alpha": 0.0, "beta": 0.0, "gamma": 0.0}
    clock = time.thread_time
    deadline = clock() + seconds
    while clock() < deadline:
        t0 = clock()
        alpha(5)
        t1 = clock()
        beta(3)
        t2 = clock()
        gamma(2)
        t3 = clock()
        spent["alpha"] += t1 - t0
        spent["beta"] += t2 - t1
        spent["gamma"] += t3 - t2
    return spent
