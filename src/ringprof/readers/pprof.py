"""pprof ``Profile`` protobufs (what ``go tool pprof``, Pyroscope and the
directory sink read and write) into a model.

The wire format is decoded by :func:`ringprof.exporters.pprof.decode`, next to
the encoder; this module maps the decoded profile onto the model:

* **weight**: the ``samples/count`` value when the profile has one (ringprof's,
  Go's CPU profiles); otherwise a time-valued sample type (the default one if
  it is a time, else the first time type) divided by the sampling period.
  Profiles with no count and no time type (heap, allocations) are refused:
  ringprof models time;
* **interval**: ``period`` when ``period_type`` is a time, else the time value
  per count; **mode** ``wall`` when the period type is ``wall``, else ``cpu``;
  a ``cpu`` time sample type fills the measured-CPU column;
* **stacks**: locations leaf first become frames root first; a location's
  inlined lines each become a frame; a location without lines becomes a frame
  named by its address;
* **labels**: ``thread id`` (numeric) and ``thread name`` become the sample's
  thread, every other label goes into its label set (numeric ones as text).
  pprof keeps no time per sample, so all samples have time 0.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import ProfileFormatError

if TYPE_CHECKING:
    from ringprof.model import Frame, ProfileData

_TIME_UNITS = {"nanoseconds": 1, "ns": 1, "microseconds": 1_000, "us": 1_000, "milliseconds": 1_000_000,
               "ms": 1_000_000, "seconds": 1_000_000_000, "s": 1_000_000_000}


def _bad(what: str) -> ProfileFormatError:
    return ProfileFormatError(f"malformed pprof profile: {what}")


def _time_scale(unit: str) -> int | None:
    return _TIME_UNITS.get(unit.lower())


def from_bytes(body: bytes) -> ProfileData:
    """A model from an (unzipped) pprof ``Profile`` message."""
    from ringprof.exporters import pprof as wire

    try:
        doc = wire.decode(body)
    except UnicodeDecodeError:
        raise _bad("a string is not UTF-8") from None
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise ProfileFormatError(f"not a pprof profile ({exc})") from None
    return from_decoded(doc)


def _choose_values(doc: dict[str, Any]) -> tuple[int | None, int | None, int, int | None]:
    """(count index, time index, time scale to ns, cpu index) of the sample types."""
    types: list[dict[str, str]] = doc["sample_type"]
    if not types:
        raise ProfileFormatError("not a pprof profile (no sample types)")
    count_idx = next((i for i, t in enumerate(types) if t["unit"] == "count" and t["type"] == "samples"), None)
    if count_idx is None:
        count_idx = next((i for i, t in enumerate(types) if t["unit"] == "count"), None)
    time_idxs = [i for i, t in enumerate(types) if _time_scale(t["unit"])]
    default = next((i for i, t in enumerate(types) if t["type"] == doc["default_sample_type"]), None)
    time_idx = default if default in time_idxs else (time_idxs[0] if time_idxs else None)
    if count_idx is None and time_idx is None:
        kinds = ", ".join(f"{t['type']}/{t['unit']}" for t in types)
        raise ProfileFormatError(f"pprof profile of {kinds}: ringprof reads CPU and wall-time profiles")
    scale = (_time_scale(types[time_idx]["unit"]) or 1) if time_idx is not None else 1
    cpu_idx = next((i for i in time_idxs if types[i]["type"] == "cpu"), None)
    return count_idx, time_idx, scale, cpu_idx


def from_decoded(doc: dict[str, Any]) -> ProfileData:
    """A model from :func:`ringprof.exporters.pprof.decode`'s result."""
    from ringprof.model import Frame, ProfileData

    count_idx, time_idx, time_scale, cpu_idx = _choose_values(doc)
    types = doc["sample_type"]
    period_type = doc["period_type"]
    period_scale = _time_scale(period_type["unit"])
    period = int(doc["period"])
    samples = doc["samples"]
    interval_ns: float
    if period_scale and period > 0:
        interval_ns = period * period_scale
    elif count_idx is not None and time_idx is not None:
        counts = sum(s["values"][count_idx] for s in samples if len(s["values"]) == len(types))
        times = sum(s["values"][time_idx] for s in samples if len(s["values"]) == len(types))
        interval_ns = times * time_scale / counts if counts > 0 and times > 0 else 10_000_000
    else:
        interval_ns = 10_000_000
    wall = period_type["type"] == "wall" or (time_idx is not None and types[time_idx]["type"] == "wall")
    meta: dict[str, Any] = {"mode": "wall" if wall else "cpu", "interval": interval_ns / 1e9}
    if doc["time_nanos"] > 0:
        meta["start_time"] = doc["time_nanos"] / 1e9
    if doc["duration_nanos"] > 0:
        meta["duration"] = doc["duration_nanos"] / 1e9
    data = ProfileData(meta)

    functions: dict[int, dict[str, Any]] = {}
    for fn in doc["functions"]:
        functions[fn["id"]] = fn
    mappings = {m["id"]: m for m in doc["mappings"]}
    location_frames: dict[int, list[int]] = {}  # location id -> model frame ids, leaf (innermost) first
    for loc in doc["locations"]:
        frames: list[Frame] = []
        for line in loc["lines"]:
            fn = functions.get(line["function_id"])
            if fn is None:
                raise _bad(f"location {loc['id']} names function {line['function_id']}, which does not exist")
            name = fn["name"] or fn["system_name"] or "<unknown>"
            frames.append(Frame(name, fn["filename"], max(fn["start_line"], 0), max(line["line"], 0)))
        if not frames:
            mapping = mappings.get(loc["mapping_id"])
            frames.append(Frame(f"0x{loc['address']:x}", mapping["filename"] if mapping else "", 0, 0))
        location_frames[loc["id"]] = [data.intern_frame(f) for f in frames]

    stack_col: list[int] = []
    weight_col: list[int] = []
    cpu_col: list[int] = []
    thread_col: list[int] = []
    label_col: list[int] = []
    for i, sample in enumerate(samples):
        values = sample["values"]
        if len(values) != len(types):
            raise _bad(f"sample {i} has {len(values)} values for {len(types)} sample types")
        if any(v < 0 for v in values):
            raise ProfileFormatError(f"pprof sample {i} has negative values (a diff profile?): not readable")
        if count_idx is not None:
            weight = values[count_idx]
        else:
            assert time_idx is not None
            weight = round(values[time_idx] * time_scale / interval_ns)
        if weight <= 0:
            continue
        leaf_first: list[int] = []
        for lid in sample["location_ids"]:
            ids = location_frames.get(lid)
            if ids is None:
                raise _bad(f"sample {i} names location {lid}, which does not exist")
            leaf_first.extend(ids)
        thread = 0
        labels: dict[str, str] = {}
        for key, nums in sample["num_labels"].items():
            if key == "thread id":
                thread = nums[0]
            elif nums:
                labels[key] = ",".join(str(n) for n in nums)
        for key, texts in sample["labels"].items():
            if key == "thread name":
                if texts and texts[0]:
                    data.threads.setdefault(thread, texts[0])
            elif texts:
                labels[key] = ",".join(texts)
        stack_col.append(data.intern_stack(reversed(leaf_first)))
        weight_col.append(weight)
        cpu_col.append(values[cpu_idx] * (_time_scale(types[cpu_idx]["unit"]) or 1) if cpu_idx is not None else 0)
        thread_col.append(thread)
        label_col.append(data.intern_labels(labels) if labels else 0)
    if stack_col:
        try:
            data.add_samples(stack_col, thread_col, [0] * len(stack_col), weight_col, cpu_col,
                             labels=label_col)
        except OverflowError as exc:
            raise _bad(f"a value does not fit in 64 bits ({exc})") from None
    return data
