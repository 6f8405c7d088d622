"""The small subset of the protobuf wire format that ringprof's exporters need.

Written by hand on purpose: ringprof is imported into every profiled service,
and the ``protobuf`` runtime is a multi-megabyte dependency whose major
versions conflict with what services already pin.  pprof, OTLP profiles and
Pyroscope's push request need only varints, 64-bit fixed integers and
length-delimited fields (strings, bytes, sub-messages, packed repeated
scalars); this module writes and reads exactly those, with proto3 semantics
(zero scalars are omitted unless asked for).

Encoding: :class:`Message` builds one message.  Decoding: :func:`fields`
walks a message's fields; :func:`read_varint`, :func:`ints` and
:func:`signed` turn raw values into Python ints.  Tests check the encoder
against the real ``protobuf`` classes; the decoder is for tests and for
reading small responses (it never sees untrusted large input in production).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

__all__ = ["Message", "fields", "fixed64", "ints", "read_varint", "signed", "varint"]

_U64 = (1 << 64) - 1

WIRE_VARINT, WIRE_FIXED64, WIRE_LEN, WIRE_FIXED32 = 0, 1, 2, 5


#: The one-byte varints: field tags and most ids and counts of a profile are below 128.
_ONE_BYTE = tuple(bytes((i,)) for i in range(0x80))


def varint(value: int) -> bytes:
    """Base-128 varint; a negative int64 becomes its 10-byte two's complement, as protobuf does."""
    if 0 <= value < 0x80:
        return _ONE_BYTE[value]
    if 0 < value < 0x4000:
        return bytes(((value & 0x7F) | 0x80, value >> 7))
    value &= _U64
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def fixed64(value: int) -> bytes:
    return (value & _U64).to_bytes(8, "little")


class Message:
    """Builder for one protobuf message (proto3: zero scalars omitted)."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def varint(self, field: int, value: int, *, always: bool = False) -> Message:
        """int32/int64/uint32/uint64/bool/enum field."""
        if value or always:
            buf = self._buf
            buf += _ONE_BYTE[field << 3] if field < 16 else varint(field << 3)
            buf += _ONE_BYTE[value] if 0 <= value < 0x80 else varint(value)
        return self

    def fixed64(self, field: int, value: int) -> Message:
        """fixed64/sfixed64 field."""
        if value:
            self._buf += varint(field << 3 | WIRE_FIXED64)
            self._buf += fixed64(value)
        return self

    def delimited(self, field: int, value: bytes, *, always: bool = False) -> Message:
        """bytes field (or any length-delimited payload)."""
        if value or always:
            buf = self._buf
            buf += _ONE_BYTE[field << 3 | WIRE_LEN] if field < 16 else varint(field << 3 | WIRE_LEN)
            n = len(value)
            buf += _ONE_BYTE[n] if n < 0x80 else varint(n)
            buf += value
        return self

    def string(self, field: int, value: str, *, always: bool = False) -> Message:
        return self.delimited(field, value.encode("utf-8", "backslashreplace"), always=always)

    def message(self, field: int, value: Message) -> Message:
        """A sub-message; always written (an empty one still marks presence)."""
        return self.delimited(field, value.done(), always=True)

    def packed(self, field: int, values: Iterable[int]) -> Message:
        """Packed repeated varints (omitted when empty)."""
        return self.delimited(field, b"".join(varint(v) for v in values))

    def packed_fixed64(self, field: int, values: Iterable[int]) -> Message:
        """Packed repeated fixed64 (omitted when empty)."""
        return self.delimited(field, b"".join(fixed64(v) for v in values))

    def raw(self, encoded: bytes) -> Message:
        """Fields encoded elsewhere (tags included), appended as they are."""
        self._buf += encoded
        return self

    def done(self) -> bytes:
        return bytes(self._buf)

    def __len__(self) -> int:
        return len(self._buf)


# ---------------------------------------------------------------------- decoding
def read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    """(value, next position) of the varint at ``pos``."""
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise ValueError("varint too long")


def fields(buf: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """(field number, wire type, value) for each field of a message."""
    pos = 0
    while pos < len(buf):
        key, pos = read_varint(buf, pos)
        field, wire = key >> 3, key & 7
        value: int | bytes
        if wire == WIRE_VARINT:
            value, pos = read_varint(buf, pos)
        elif wire == WIRE_FIXED64:
            value, pos = int.from_bytes(buf[pos:pos + 8], "little"), pos + 8
        elif wire == WIRE_LEN:
            size, pos = read_varint(buf, pos)
            value, pos = buf[pos:pos + size], pos + size
        elif wire == WIRE_FIXED32:
            value, pos = int.from_bytes(buf[pos:pos + 4], "little"), pos + 4
        else:
            raise ValueError(f"unsupported wire type {wire} (field {field})")
        if pos > len(buf):
            raise ValueError("truncated message")
        yield field, wire, value


def signed(value: int) -> int:
    """A decoded 64-bit varint read as int64."""
    return value - (1 << 64) if value >> 63 else value


def ints(value: int | bytes, is_signed: bool = True) -> list[int]:
    """A repeated varint scalar's values: packed (one length-delimited run) or one varint."""
    if isinstance(value, int):
        raw = [value]
    else:
        raw, pos = [], 0
        while pos < len(value):
            v, pos = read_varint(value, pos)
            raw.append(v)
    return [signed(v) for v in raw] if is_signed else raw
