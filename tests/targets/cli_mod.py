"""Target for ``ringprof -m cli_mod``: reports what it sees, exits with a code."""

import os
import sys
import time

marker = os.environ.get("RINGPROF_TEST_MARKER")
if marker:
    with open(marker, "a") as fh:
        fh.write("ran\n")


def spin(seconds):
    deadline = time.thread_time() + seconds
    acc = 0
    while time.thread_time() < deadline:
        for i in range(300):
            acc += i * i
    return acc


if __name__ == "__main__":
    print("argv:", sys.argv)
    print("name:", __name__, __spec__.name if __spec__ else None)
    print("file:", __file__)
    spin(0.2)
    sys.exit(int(os.environ.get("RINGPROF_TEST_EXIT", "0")))
