"""Target: one hot line.  Tests find line numbers by their marker comments."""

import time


def hot_function(n):
    acc = 0
    for i in range(n):
        acc += ((i * i + 3 * i) % 7 ^ (i >> 3)) | (i & 15) + (i * 5) // 3  # HOT
    return acc


def run(seconds):
    deadline = time.thread_time() + seconds
    while time.thread_time() < deadline:
        hot_function(5000)  # CALL
