"""The cache's value codec: msgpack with extension types, and never pickle.

Plain msgpack covers ``None``, ``bool``, ``int`` (signed/unsigned 64-bit),
``float``, ``str``, ``bytes`` (``bytearray`` and ``memoryview`` encode as
bytes), ``list`` and ``dict`` (keys of any hashable decoded type, ``int``
included). A ``tuple`` is encoded as a msgpack array and **decodes as a
list**; dict keys therefore must not be tuples (a list cannot be a key, so
such a value would not decode). The other types travel as msgpack
extensions; the payload of each is fixed here:

====  ==============  ======================================================
code  Python type     payload
====  ==============  ======================================================
1     ``datetime``    ``<IIIq``: proleptic ordinal of the local date, seconds
                      into the local day, microseconds, UTC offset in
                      microseconds. Only aware datetimes are accepted; the
                      decoded value has a fixed-offset ``timezone`` with the
                      same offset (a ``ZoneInfo`` name is not kept).
2     ``date``        ``<I``: proleptic ordinal.
3     ``Decimal``     ASCII ``str(value)``: exact, NaN and infinities included.
4     ``set``         a msgpack array of the members.
5     ``frozenset``   a msgpack array of the members.
6     ``uuid.UUID``   the 16 bytes of ``UUID.bytes``.
7     ``timedelta``   ``<iiI``: days, seconds, microseconds.
-1    ``datetime``    msgpack's own Timestamp, written by other languages'
                      clients; decoded as an aware UTC datetime, never
                      written by :func:`encode`.
====  ==============  ======================================================

Members of a set are decoded with arrays as tuples, since a set can only
have held tuples (hashable) in the first place.

:func:`encode` raises :class:`TypeError` naming any other type (and for a
naive datetime), :class:`ValueError` for an integer outside 64 bits.
:func:`decode` raises :class:`CodecError`, and nothing else, for any input
that is not a value :func:`encode` could have written.
"""

from __future__ import annotations

import struct
import uuid
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Final

import msgpack

from .errors import CacheError

__all__ = ["CodecError", "decode", "encode"]

EXT_DATETIME: Final = 1
EXT_DATE: Final = 2
EXT_DECIMAL: Final = 3
EXT_SET: Final = 4
EXT_FROZENSET: Final = 5
EXT_UUID: Final = 6
EXT_TIMEDELTA: Final = 7

_DATETIME = struct.Struct("<IIIq")
_DATE = struct.Struct("<I")
_TIMEDELTA = struct.Struct("<iiI")
_MICROS_PER_SECOND = 1_000_000


class CodecError(CacheError, ValueError):
    """Bytes that are not a value this codec writes (corrupt, foreign or truncated)."""


def _encode_datetime(value: datetime) -> msgpack.ExtType:
    offset = value.utcoffset()
    if offset is None:
        raise TypeError("naive datetime cannot be cached: give it a tzinfo (e.g. timezone.utc)")
    seconds = value.hour * 3600 + value.minute * 60 + value.second
    payload = _DATETIME.pack(
        value.toordinal(), seconds, value.microsecond, offset // timedelta(microseconds=1)
    )
    return msgpack.ExtType(EXT_DATETIME, payload)


def _default(obj: object) -> msgpack.ExtType:
    """The packer's hook for every type msgpack does not know itself."""
    if isinstance(obj, datetime):
        return _encode_datetime(obj)
    if isinstance(obj, date):
        return msgpack.ExtType(EXT_DATE, _DATE.pack(obj.toordinal()))
    if isinstance(obj, Decimal):
        return msgpack.ExtType(EXT_DECIMAL, str(obj).encode("ascii"))
    if isinstance(obj, frozenset):
        return msgpack.ExtType(EXT_FROZENSET, _packb(list(obj)))
    if isinstance(obj, set):
        return msgpack.ExtType(EXT_SET, _packb(list(obj)))
    if isinstance(obj, uuid.UUID):
        return msgpack.ExtType(EXT_UUID, obj.bytes)
    if isinstance(obj, timedelta):
        return msgpack.ExtType(
            EXT_TIMEDELTA, _TIMEDELTA.pack(obj.days, obj.seconds, obj.microseconds)
        )
    if isinstance(obj, int):  # msgpack hands over the ints it cannot pack
        raise ValueError(f"cannot cache an integer outside 64 bits: {obj}")
    raise TypeError(
        f"cannot cache an object of type {type(obj).__module__}.{type(obj).__qualname__}"
    )


def _packb(obj: object) -> bytes:
    try:
        return msgpack.packb(obj, use_bin_type=True, default=_default, datetime=False)  # type: ignore[no-any-return]
    except OverflowError as exc:
        raise ValueError(f"cannot cache an integer outside 64 bits ({exc})") from None


def encode(obj: object) -> bytes:
    """Serialise *obj* for the cache.

    :param obj: a value built from the types listed in the module docstring.
    :raises TypeError: for an unsupported type (named) or a naive datetime.
    :raises ValueError: for an integer that does not fit in 64 bits.
    """
    return _packb(obj)


#: UTC offset (microseconds) -> midnight of 0001-01-01 in that fixed-offset zone.
_DAY_ONE: dict[int, datetime] = {}
_DAY_ONE_MAX = 1024


def _decode_datetime(data: bytes) -> datetime:
    ordinal, seconds, micros, offset = _DATETIME.unpack(data)
    base = _DAY_ONE.get(offset)
    if base is None:
        base = datetime(1, 1, 1, tzinfo=timezone(timedelta(microseconds=offset)))
        if len(_DAY_ONE) < _DAY_ONE_MAX:
            _DAY_ONE[offset] = base
    if not (ordinal > 0 and seconds < 86_400 and micros < _MICROS_PER_SECOND):
        raise CodecError("datetime payload out of range")
    # Adding a timedelta to an aware datetime keeps its tzinfo and does no conversion.
    return base + timedelta(ordinal - 1, seconds, micros)


def _decode_members(data: bytes) -> list[object]:
    members = msgpack.unpackb(
        data, raw=False, use_list=False, strict_map_key=False, ext_hook=_ext_hook, timestamp=3
    )
    if not isinstance(members, tuple):
        raise CodecError("a set's payload is not an array")
    return list(members)


def _ext_hook(code: int, data: bytes) -> object:
    """Rebuild one extension value; unknown codes and bad payloads raise :class:`CodecError`."""
    if code == EXT_DATETIME:
        return _decode_datetime(data)
    if code == EXT_DATE:
        return date.fromordinal(_DATE.unpack(data)[0])
    if code == EXT_DECIMAL:
        return Decimal(data.decode("ascii"))
    if code == EXT_SET:
        return set(_decode_members(data))
    if code == EXT_FROZENSET:
        return frozenset(_decode_members(data))
    if code == EXT_UUID:
        return uuid.UUID(bytes=data)
    if code == EXT_TIMEDELTA:
        days, seconds, micros = _TIMEDELTA.unpack(data)
        return timedelta(days=days, seconds=seconds, microseconds=micros)
    raise CodecError(f"unknown msgpack extension type {code}")


def decode(data: bytes | memoryview) -> object:
    """Rebuild a value written by :func:`encode`.

    :param data: the payload, a zero-copy buffer allowed.
    :raises CodecError: if *data* is not one complete value this codec writes.
    """
    try:
        return msgpack.unpackb(
            data, raw=False, strict_map_key=False, ext_hook=_ext_hook, timestamp=3
        )
    except CodecError:
        raise
    except (
        ValueError,
        TypeError,
        OverflowError,
        struct.error,
        InvalidOperation,
        msgpack.UnpackException,
    ) as exc:
        # msgpack's own errors (ExtraData, FormatError, StackError, ...) are ValueErrors;
        # unhashable keys are TypeErrors; bad ext payloads raise struct.error/ValueError.
        raise CodecError(f"not a cached value: {exc}") from exc
    except RecursionError as exc:
        raise CodecError("not a cached value: nested too deeply") from exc
