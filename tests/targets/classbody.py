"""Target: a module-level class body that burns CPU when the module is imported."""

import time


class Klass:
    deadline = time.thread_time() + 0.15
    acc = 0
    while time.thread_time() < deadline:
        for i in range(500):
            acc += i * i  # BODY
