"""Target: CPU-burning threads (started by the test after enable())."""

import threading
import time


def burner(seconds, ready, go, out, key):
    """Wait for ``go``, burn ``seconds`` of this thread's CPU, record what was spent."""
    out[key] = {"tid": threading.get_native_id()}
    ready.wait()
    go.wait()
    t0 = time.thread_time()
    deadline = t0 + seconds
    acc = 0
    while time.thread_time() < deadline:
        for i in range(300):
            acc += i * i  # BURN
    out[key]["cpu"] = time.thread_time() - t0
    return acc


def run(loads, settle=0.3):
    """Start one thread per entry of ``loads`` (CPU seconds), let the sampler
    see them (``settle`` s asleep), then let them all burn at once."""
    out = {}
    ready = threading.Barrier(len(loads) + 1)
    go = threading.Event()
    threads = [threading.Thread(target=burner, args=(s, ready, go, out, f"t{i}"), name=f"burner-{i}")
               for i, s in enumerate(loads)]
    for t in threads:
        t.start()
    ready.wait()
    time.sleep(settle)
    go.set()
    for t in threads:
        t.join()
    return out
