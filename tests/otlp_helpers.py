"""Shared checks for tests that decode OTLP profiles with the real opentelemetry-proto classes.

Import only after ``pytest.importorskip("opentelemetry.proto...")``.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from opentelemetry.proto.profiles.v1development import profiles_pb2

import ringprof
from ringprof.model import ProfileData


def decode(raw: bytes) -> profiles_pb2.ProfilesData:
    msg = profiles_pb2.ProfilesData()
    msg.ParseFromString(raw)
    assert_no_unknown_fields(msg)
    return msg


def assert_no_unknown_fields(msg) -> None:
    """Nothing ringprof wrote is unknown to the real schema (checked in every sub-message)."""
    from google.protobuf.descriptor import FieldDescriptor
    from google.protobuf.unknown_fields import UnknownFieldSet

    assert len(UnknownFieldSet(msg)) == 0, type(msg).__name__
    for fd, value in msg.ListFields():
        if fd.type == FieldDescriptor.TYPE_MESSAGE:
            for item in (value if fd.is_repeated else [value]):
                assert_no_unknown_fields(item)


def check_indices(msg: profiles_pb2.ProfilesData) -> None:
    """Every index into the dictionary is in range, and every table starts with its zero value."""
    d = msg.dictionary
    assert d.string_table[0] == ""
    for table, zero in ((d.mapping_table, profiles_pb2.Mapping()), (d.location_table, profiles_pb2.Location()),
                        (d.function_table, profiles_pb2.Function()), (d.link_table, profiles_pb2.Link()),
                        (d.attribute_table, profiles_pb2.KeyValueAndUnit()), (d.stack_table, profiles_pb2.Stack())):
        assert len(table) >= 1 and table[0] == zero
    n_str = len(d.string_table)

    def attrs(indices) -> None:
        keys = []
        for i in indices:
            assert 0 < i < len(d.attribute_table)
            keys.append(d.attribute_table[i].key_strindex)
        assert len(keys) == len(set(keys))  # attribute keys are unique per reference list

    for kv in d.attribute_table[1:]:
        assert 0 < kv.key_strindex < n_str
    for fn in d.function_table[1:]:
        for idx in (fn.name_strindex, fn.system_name_strindex, fn.filename_strindex):
            assert 0 <= idx < n_str
    for loc in d.location_table[1:]:
        assert 0 <= loc.mapping_index < len(d.mapping_table)
        assert loc.lines
        for line in loc.lines:
            assert 0 < line.function_index < len(d.function_table)
        attrs(loc.attribute_indices)
    for stack in d.stack_table[1:]:
        assert stack.location_indices
        for i in stack.location_indices:
            assert 0 < i < len(d.location_table)
    for link in d.link_table[1:]:
        assert len(link.trace_id) == 16 and len(link.span_id) == 8
    for rp in msg.resource_profiles:
        for sp in rp.scope_profiles:
            for prof in sp.profiles:
                for vt in (prof.sample_type, prof.period_type):
                    assert 0 < vt.type_strindex < n_str and 0 < vt.unit_strindex < n_str
                attrs(prof.attribute_indices)
                for sample in prof.samples:
                    assert 0 < sample.stack_index < len(d.stack_table)
                    assert 0 <= sample.link_index < len(d.link_table)
                    attrs(sample.attribute_indices)
                    assert sample.values or sample.timestamps_unix_nano
                    # One value per sample type at most: receivers that convert to pprof (Pyroscope's
                    # OTLP ingester) reject a Sample with more values than sample types.
                    assert len(sample.values) <= 1
                    if sample.values and sample.timestamps_unix_nano:
                        assert len(sample.values) == len(sample.timestamps_unix_nano)
                    for ts in sample.timestamps_unix_nano:
                        assert prof.time_unix_nano <= ts < prof.time_unix_nano + prof.duration_nano


def string(msg, idx: int) -> str:
    return msg.dictionary.string_table[idx]


def profiles(msg) -> list:
    (rp,) = msg.resource_profiles
    (sp,) = rp.scope_profiles
    assert sp.scope.name == "ringprof" and sp.scope.version == ringprof.__version__
    return list(sp.profiles)


def stack_names(msg, sample) -> tuple[str, ...]:
    """Function names of a sample's stack, root first."""
    d = msg.dictionary
    names = []
    for li in d.stack_table[sample.stack_index].location_indices:
        (line,) = d.location_table[li].lines
        names.append(string(msg, d.function_table[line.function_index].name_strindex))
    return tuple(reversed(names))


def sample_attrs(msg, sample) -> dict[str, Any]:
    d = msg.dictionary
    out = {}
    for i in sample.attribute_indices:
        kv = d.attribute_table[i]
        value = kv.value
        out[string(msg, kv.key_strindex)] = value.int_value if value.HasField("int_value") else value.string_value
    return out


def resource(msg) -> dict[str, Any]:
    out = {}
    for kv in msg.resource_profiles[0].resource.attributes:
        field = kv.value.WhichOneof("value")
        out[kv.key] = getattr(kv.value, field)
    return out


def weight_by_stack(msg, prof) -> Counter:
    per: Counter = Counter()
    for sample in prof.samples:
        per[stack_names(msg, sample)] += len(sample.timestamps_unix_nano) or sum(sample.values)
    return per


def model_weight_by_stack(data: ProfileData) -> Counter:
    per: Counter = Counter()
    for frames, w in data.iter_stacks():
        per[tuple(f.name for f in frames)] += w
    return per
