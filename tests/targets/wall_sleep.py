"""Target: a thread blocked in time.sleep, for wall-clock mode."""

import threading
import time


def sleeper(seconds, out):
    out["tid"] = threading.get_native_id()
    out["start_ns"] = time.monotonic_ns()
    time.sleep(seconds)  # SLEEP
    out["end_ns"] = time.monotonic_ns()


def run(seconds):
    out = {}
    t = threading.Thread(target=sleeper, args=(seconds, out), name="sleeper")
    t.start()
    t.join()
    return out
