"""Hand-made BASE and NEW profiles with exact, known share changes (for diff tests).

    BASE (interval 10 ms, total weight 100)     NEW (interval 10 ms, total weight 500)
      main;a          50                          main;a          100
      main;b          30                          main;b           60
      main;b;c        20                          main;b;c        240
                                                  main;d          100

NEW's functions sit 7 lines lower than BASE's (the file was edited above them):
they must still pair up, since functions are matched by (name, file).

Shares (self / total), BASE -> NEW, change in points:
  a     50 / 50   -> 20 / 20     self -30, total -30
  b     30 / 50   -> 12 / 60     self -18, total +10
  c     20 / 20   -> 48 / 48     self +28, total +28
  d      0 /  0   -> 20 / 20     self +20, total +20   (new)
  main   0 / 100  ->  0 / 100    0, 0
"""

from __future__ import annotations

from ringprof.model import Frame, ProfileData

SHIFT = 7


def _frames(shift: int) -> dict[str, Frame]:
    return {
        "main": Frame("main", "app.py", 1 + shift, 2 + shift),
        "a": Frame("a", "app.py", 10 + shift, 11 + shift),
        "b": Frame("b", "app.py", 20 + shift, 22 + shift),
        "c": Frame("c", "lib/util.py", 5, 6),
        "d": Frame("d", "app.py", 40 + shift, 41 + shift),
    }


def base_model() -> ProfileData:
    f = _frames(0)
    data = ProfileData({"mode": "cpu", "interval": 0.01})
    data.add_sample([f["main"], f["a"]], thread=1, time_ns=0, weight=50)
    data.add_sample([f["main"], f["b"]], thread=1, time_ns=10, weight=30)
    data.add_sample([f["main"], f["b"], f["c"]], thread=1, time_ns=20, weight=20)
    return data


def new_model() -> ProfileData:
    f = _frames(SHIFT)
    data = ProfileData({"mode": "cpu", "interval": 0.01})
    data.add_sample([f["main"], f["a"]], thread=1, time_ns=0, weight=100)
    data.add_sample([f["main"], f["b"]], thread=1, time_ns=10, weight=60)
    data.add_sample([f["main"], f["b"], f["c"]], thread=1, time_ns=20, weight=240)
    data.add_sample([f["main"], f["d"]], thread=1, time_ns=30, weight=100)
    return data


#: name -> (base self, new self, base total, new total), as fractions.
EXPECTED_SHARES = {
    "a": (0.5, 0.2, 0.5, 0.2),
    "b": (0.3, 0.12, 0.5, 0.6),
    "c": (0.2, 0.48, 0.2, 0.48),
    "d": (0.0, 0.2, 0.0, 0.2),
    "main": (0.0, 0.0, 1.0, 1.0),
}
