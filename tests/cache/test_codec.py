"""The cache codec: round trips of every supported type, refusals, and garbage in."""

from __future__ import annotations

import contextlib
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sleigh.daemons.cache import codec
from sleigh.daemons.cache.codec import CodecError, decode, encode
from sleigh.daemons.cache.errors import CacheError

_offsets = st.timedeltas(
    min_value=-timedelta(hours=23, minutes=59), max_value=timedelta(hours=23, minutes=59)
).map(timezone)
aware_datetimes = st.datetimes(timezones=_offsets)
hashable_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.text(max_size=20),
    st.binary(max_size=20),
    st.dates(),
    st.uuids(),
    st.decimals(allow_nan=False),
    st.timedeltas(),
    aware_datetimes,
)
scalars = st.one_of(hashable_scalars, st.floats(allow_nan=False))
hashables = st.recursive(
    hashable_scalars,
    lambda inner: st.frozensets(inner, max_size=4) | st.tuples(inner, inner),
    max_leaves=8,
)


def _normal(value: Any) -> Any:
    """What a value decodes as: tuples become lists (members of sets stay tuples)."""
    if isinstance(value, tuple | list):
        return [_normal(v) for v in value]
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items()}
    return value


values = st.recursive(
    scalars | st.sets(hashables, max_size=4) | st.frozensets(hashables, max_size=4),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(hashable_scalars.filter(lambda k: not isinstance(k, tuple)), inner)
    ),
    max_leaves=20,
)


@given(values)
def test_nested_values_round_trip(value: object) -> None:
    assert decode(encode(value)) == _normal(value)


@given(aware_datetimes)
def test_datetimes_keep_their_instant_and_offset(value: datetime) -> None:
    back = decode(encode(value))
    assert isinstance(back, datetime)
    assert back == value
    assert back.utcoffset() == value.utcoffset()
    assert back.replace(tzinfo=None) == value.replace(tzinfo=None)


def test_decimal_is_exact_and_keeps_its_exponent() -> None:
    for text in ["0.10", "-0", "1E+5", "Infinity", "-Infinity", "3.14159265358979323846264338"]:
        back = decode(encode(Decimal(text)))
        assert isinstance(back, Decimal)
        assert str(back) == text
    back = decode(encode(Decimal("NaN")))
    assert isinstance(back, Decimal)
    assert back.is_nan()


def test_type_is_kept_exactly() -> None:
    value = {
        1: date(2000, 12, 24),
        2: datetime(2000, 12, 24, 18, 30, tzinfo=UTC),
        3: {1, 2},
        4: frozenset({(1, "a")}),
        5: uuid.UUID(int=7),
        6: b"\x00\xff",
        7: "ü",
        8: (1, 2),
    }
    back = decode(encode(value))
    assert isinstance(back, dict)
    assert [type(back[k]).__name__ for k in range(1, 9)] == [
        "date",
        "datetime",
        "set",
        "frozenset",
        "UUID",
        "bytes",
        "str",
        "list",
    ]
    assert back[2].tzinfo is UTC
    assert back[4] == frozenset({(1, "a")})


def test_decodes_from_a_memoryview() -> None:
    data = b"\x00" * 8 + encode({"a": [1, 2]})
    assert decode(memoryview(data)[8:]) == {"a": [1, 2]}


def test_msgpack_timestamps_from_other_clients_decode_as_utc() -> None:
    stamp = msgpack.Timestamp(seconds=977_682_600, nanoseconds=0)
    back = decode(msgpack.packb(stamp))
    assert back == datetime(2000, 12, 24, 18, 30, tzinfo=UTC)


class _Thing:
    pass


@pytest.mark.parametrize(
    "value",
    [_Thing(), object(), complex(1, 2), [1, {"a": _Thing()}], range(3), 1.5j],
)
def test_unsupported_types_are_refused_by_name(value: object) -> None:
    with pytest.raises(TypeError, match=r"cannot cache an object of type"):
        encode(value)


def test_unsupported_type_names_the_type() -> None:
    with pytest.raises(TypeError, match="_Thing"):
        encode({"x": _Thing()})


def test_naive_datetime_is_refused() -> None:
    with pytest.raises(TypeError, match="naive datetime"):
        encode(datetime(2000, 12, 24, 18, 30))


def test_integers_beyond_64_bits_are_refused() -> None:
    with pytest.raises(ValueError, match="64 bits"):
        encode(2**64)


def test_codec_error_is_a_cache_error() -> None:
    assert issubclass(CodecError, CacheError)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xc1",  # never used in msgpack
        b"\x92\x01",  # array of 2, one element
        b"\x01\x02",  # extra data
        msgpack.packb(msgpack.ExtType(99, b"x")),  # unknown extension
        msgpack.packb(msgpack.ExtType(codec.EXT_DATE, b"\x00")),  # short payload
        msgpack.packb(msgpack.ExtType(codec.EXT_DATE, b"\x00\x00\x00\x00")),  # ordinal 0
        msgpack.packb(msgpack.ExtType(codec.EXT_DECIMAL, b"not a number")),
        msgpack.packb(msgpack.ExtType(codec.EXT_DECIMAL, b"\xff")),
        msgpack.packb(msgpack.ExtType(codec.EXT_UUID, b"short")),
        msgpack.packb(msgpack.ExtType(codec.EXT_SET, msgpack.packb(1))),
        msgpack.packb(msgpack.ExtType(codec.EXT_SET, msgpack.packb([{"a": 1}]))),
        msgpack.packb({(1, 2): 3}),  # an array as a map key
        b"\x91" * 100_000,  # nested too deeply
    ],
)
def test_bad_input_raises_codec_error(data: bytes) -> None:
    with pytest.raises(CodecError):
        decode(data)


@given(st.binary(max_size=200))
def test_garbage_raises_codec_error_or_decodes(data: bytes) -> None:
    with contextlib.suppress(CodecError):
        decode(data)


@given(values, st.data())
def test_corrupted_values_raise_only_codec_error(value: object, data: st.DataObject) -> None:
    raw = bytearray(encode(value))
    index = data.draw(st.integers(min_value=0, max_value=len(raw) - 1))
    raw[index] = data.draw(st.integers(min_value=0, max_value=255))
    cut = data.draw(st.integers(min_value=0, max_value=len(raw)))
    with contextlib.suppress(CodecError):
        decode(bytes(raw[:cut]))
