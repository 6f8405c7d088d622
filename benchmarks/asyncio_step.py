"""Cost of the asyncio task-step hook (:mod:`ringprof.asyncio_tasks`) per task step.

An event loop runs ``TASKS`` tasks that each do ``STEPS`` no-op steps
(``await asyncio.sleep(0)``: one ``Handle._run`` per step, nothing else).
Three variants run in the same process, interleaved round by round in a
rotating order so that drift of a loaded machine hits all alike:

* ``off``: the standard ``Handle._run`` (no hook);
* ``hook``: the step hook installed (``asyncio_tasks.enable()``), tasks with
  no labels of their own (each carries only ``task``/``task_id``);
* ``hook+labels``: the hook, each task inside a ``ringprof.labels()`` block
  across all its awaits.

``--work N`` makes every step also run ``N`` iterations of a small Python loop
(a step that does something: N=1000 is ~25-50 us here), to see the cost
relative to steps that do work.

The sampler is *not* running: this measures what the hook adds to every step,
not the signal cost (that is measured by ``benchmarks.micro``).  The clock is
the process CPU time of the whole loop run; ns per step = CPU time / steps.
Reported: the median over rounds of each variant, and of the per-round
difference to ``off`` (the hook's cost per step), with the spread
(min..max and interquartile range) of those differences.

``--loop uvloop`` runs the same on uvloop (where the hook is a ``call_soon`` on
``uvloop.Loop`` that wraps each task step).

    python -m benchmarks.asyncio_step [--rounds 15] [--tasks 100] [--steps 2000] [--work 0]
                                      [--loop asyncio|uvloop] [--json F]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from typing import Any

import ringprof
from ringprof import asyncio_tasks

VARIANTS = ("off", "hook", "hook+labels")


def _work(n: int) -> int:
    x = 0
    for i in range(n):
        x += i
    return x


async def _stepper(steps: int, work: int) -> None:
    for _ in range(steps):
        if work:
            _work(work)
        await asyncio.sleep(0)


async def _labelled_stepper(steps: int, work: int, i: int) -> None:
    with ringprof.labels(worker=i):
        for _ in range(steps):
            if work:
                _work(work)
            await asyncio.sleep(0)


async def _main(tasks: int, steps: int, work: int, labelled: bool) -> None:
    if labelled:
        await asyncio.gather(*(_labelled_stepper(steps, work, i) for i in range(tasks)))
    else:
        await asyncio.gather(*(_stepper(steps, work) for _ in range(tasks)))


def _new_loop(kind: str) -> asyncio.AbstractEventLoop:
    if kind == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def run_once(variant: str, tasks: int, steps: int, work: int = 0, loop_kind: str = "asyncio") -> float:
    """CPU ns per task step of one loop run under ``variant``."""
    if variant == "off":
        asyncio_tasks.disable()
    else:
        asyncio_tasks.enable()
    try:
        assert asyncio_tasks.installed() == (variant != "off")
        if loop_kind == "uvloop":
            import uvloop

            assert ("call_soon" in uvloop.Loop.__dict__) == (variant != "off")
        loop = _new_loop(loop_kind)
        try:
            t0 = time.process_time_ns()
            loop.run_until_complete(_main(tasks, steps, work, variant == "hook+labels"))
            t1 = time.process_time_ns()
        finally:
            loop.close()
    finally:
        asyncio_tasks.disable()
    return (t1 - t0) / (tasks * steps)


def _quartiles(xs: list[float]) -> tuple[float, float]:
    if len(xs) < 4:
        return min(xs), max(xs)
    q = statistics.quantiles(xs, n=4)
    return q[0], q[2]


def measure(rounds: int, tasks: int, steps: int, work: int = 0, loop_kind: str = "asyncio") -> dict[str, Any]:
    if loop_kind == "uvloop":
        import uvloop  # noqa: F401  (imported before the hook is enabled, as an application would)
    run_once("hook", tasks, max(steps // 10, 1), work, loop_kind)  # warm up (imports, interning)
    run_once("off", tasks, max(steps // 10, 1), work, loop_kind)
    per: dict[str, list[float]] = {v: [] for v in VARIANTS}
    for r in range(rounds):
        order = VARIANTS[r % 3:] + VARIANTS[:r % 3]
        for v in order:
            per[v].append(run_once(v, tasks, steps, work, loop_kind))
    out: dict[str, Any] = {"python": sys.version.split()[0], "rounds": rounds, "tasks": tasks, "steps": steps,
                           "work": work, "loop": loop_kind,
                           "ns_per_step": {v: statistics.median(xs) for v, xs in per.items()}, "added": {}}
    for v in VARIANTS[1:]:
        diffs = [a - b for a, b in zip(per[v], per["off"], strict=True)]
        q1, q3 = _quartiles(diffs)
        out["added"][v] = {"median": statistics.median(diffs), "min": min(diffs), "max": max(diffs),
                           "q1": q1, "q3": q3,
                           "pct": 100.0 * statistics.median(diffs) / statistics.median(per["off"])}
    return out


def render(res: dict[str, Any]) -> str:
    lines = [f"Python {res['python']}: {res['rounds']} interleaved rounds, {res['tasks']} tasks x "
             f"{res['steps']} steps each, work {res['work']}, {res['loop']} loop (process CPU time)",
             "| variant | ns per step (median) | added ns per step: median [IQR] (min..max) | added % |",
             "| --- | --- | --- | --- |",
             f"| off | {res['ns_per_step']['off']:.0f} | - | - |"]
    for v in VARIANTS[1:]:
        a = res["added"][v]
        lines.append(f"| {v} | {res['ns_per_step'][v]:.0f} | {a['median']:.0f} [{a['q1']:.0f}..{a['q3']:.0f}] "
                     f"({a['min']:.0f}..{a['max']:.0f}) | {a['pct']:.1f} % |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--tasks", type=int, default=100)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--work", type=int, default=0, help="loop iterations of work in every step (default 0)")
    ap.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    ap.add_argument("--json", help="also write the result as JSON here")
    args = ap.parse_args(argv)
    res = measure(args.rounds, args.tasks, args.steps, args.work, args.loop)
    print(render(res))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(res, fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
