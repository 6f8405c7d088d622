"""Target for the CLI tests: reports what it sees, burns a little CPU, exits
with the code it is asked for.  Writes a marker file when it runs at all."""

import os
import sys
import time

marker = os.environ.get("RINGPROF_TEST_MARKER")
if marker:
    with open(marker, "a") as fh:
        fh.write("ran\n")


def busy(seconds):
    deadline = time.thread_time() + seconds
    acc = 0
    while time.thread_time() < deadline:
        for i in range(300):
            acc += i * i  # BUSY
    return acc


def main():
    print("argv:", sys.argv)
    print("name:", __name__)
    print("file:", __file__)
    print("path0:", sys.path[0])
    print("main:", sys.modules["__main__"].__dict__.get("busy") is busy)
    busy(float(os.environ.get("RINGPROF_TEST_BURN", "0.3")))
    print("done")
    sys.stdout.flush()
    sys.stderr.write("script stderr line\n")
    if os.environ.get("RINGPROF_TEST_RAISE"):
        raise ValueError("requested failure")
    return int(os.environ.get("RINGPROF_TEST_EXIT", "0"))


if __name__ == "__main__":
    sys.exit(main())
