"""A small CPU-bound program for trying ringprof: ``python -m ringprof tools/demo.py``.

It spends roughly half its time in parse(), a third in score() and the rest
in render(), so the report has a shape you can check by eye.
"""

import json


def parse(n: int) -> list[dict[str, int]]:
    return [json.loads(json.dumps({"id": i, "v": i * 7 % 13})) for i in range(n)]


def score(rows: list[dict[str, int]]) -> int:
    total = 0
    for r in rows:
        for k in range(40):
            total += (r["v"] * k) % 11
    return total


def render(rows: list[dict[str, int]]) -> str:
    return "".join(f"<li>{r['id']}:{r['v']}</li>" for r in rows for _ in range(3))


def main() -> None:
    for _ in range(12):
        rows = parse(6000)
        score(rows)
        render(rows)
    print("demo done")


if __name__ == "__main__":
    main()
