"""Target: code objects of every kind burning CPU, for qualified-name checks.

Each scenario burns about BURN seconds of CPU, either in spin() called from the
frame under test or in that frame itself (generator expression, class body)."""

import asyncio
import time

BURN = 0.15  # CPU seconds per scenario


def spin(seconds):
    """Burn ``seconds`` of this thread's CPU in this frame."""
    deadline = time.thread_time() + seconds
    acc = 0
    while time.thread_time() < deadline:
        for i in range(500):
            acc += i * i
    return acc


class Outer:
    def method(self):
        return spin(BURN)

    class Inner:
        @staticmethod
        def static():
            return spin(BURN)


def outer():
    def inner():
        return spin(BURN)

    return inner()


square = lambda: spin(BURN)  # noqa: E731


def make_lambda():
    return lambda: spin(BURN)


def generator(rounds):
    for _ in range(rounds):
        spin(BURN / rounds)
        yield 1


def use_genexpr():
    deadline = time.thread_time() + BURN
    total = 0
    while time.thread_time() < deadline:
        # The work happens inside the generator expression's own frame.
        total += sum(i * i % 7 for i in range(5000))
    return total


async def coroutine():
    for _ in range(3):
        spin(BURN / 3)
        await asyncio.sleep(0)


class Service:
    async def handle(self):
        spin(BURN)
        await asyncio.sleep(0)


def make_class():
    class Klass:  # a class body: its code object is named after the class
        deadline = time.thread_time() + BURN
        acc = 0
        while time.thread_time() < deadline:
            for i in range(500):
                acc += i * i
    return Klass


def run():
    Outer().method()
    Outer.Inner.static()
    outer()
    square()
    make_lambda()()
    for _ in generator(3):
        pass
    use_genexpr()

    async def main():
        await coroutine()
        await Service().handle()

    asyncio.run(main())
    make_class()
