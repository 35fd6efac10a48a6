"""The wire protocol of ``sleigh-searchd``: ZeroMQ frames carrying msgpack maps.

Sans-IO: bytes in, request values out; reply values in, bytes out. The
client speaks through a DEALER socket, the daemon through a ROUTER::

    client → daemon   +------------------+---------------------+
    (DEALER sends)    | request id       | body: msgpack map   |
                      | 1 to 16 bytes    | <= max_request      |
                      +------------------+---------------------+
    daemon sees       | peer identity | request id | body      |  (ROUTER adds the identity)
    daemon → client   | peer identity | request id | reply     |  (ROUTER routes by identity)
    client receives   | request id | reply: msgpack map          |

The request id is the client's own (a counter); the daemon echoes it, so a
client that gave up on a request (timeout) drops its late reply.

Requests (a map; unknown keys are refused, every key but ``op`` optional)::

    {"op": "search", "q": "lego castle", "prefix": false,
     "category": 12, "brands": [3, 7], "price": [1000, 5000],   # cents, [min, max], nil = open
     "age": 6, "in_stock": true, "sort": "relevance",            # or price_asc, price_desc,
     "age_to": 8,                                    # with age: ages overlapping 6 to 8
     "offset": 0, "limit": 20,                                   # popularity, newest, a rule
     "facets": ["category", "brand", "price_band", "age_band"]}  # [] or absent: none
    {"op": "suggest", "q": "leg", "limit": 8}                   # limit <= 100
    {"op": "update", "changes": [[id, price_cents or nil, in_stock or nil], ...]}
    {"op": "stats"}
    {"op": "ping"}

Replies (a map, ``ok`` first)::

    search   {"ok": true, "ids": [...], "total": n, "facets": {name: {value: count}} or nil,
              "suggestion": "lego castle" or nil, "took_us": n, "version": index version}
    suggest  {"ok": true, "completions": ["lego", "legos"], "took_us": n}
    update   {"ok": true, "applied": n, "version": index version}
    stats    {"ok": true, ...counters, see handlers.stats}
    ping     {"ok": true, "version": index version}
    error    {"ok": false, "error": code, "message": "what to do"}

Error codes: ``malformed`` (not two frames, not a msgpack map), ``too_large``
(body over ``max_request``), ``unknown_op``, ``unknown_field``, ``bad_type``,
``bad_value`` (a value out of range, an unknown sort or facet), ``too_many_terms``,
``query_too_long``, ``limit_too_large``, ``offset_too_large``, ``unavailable``
(stopping, or no index yet: try another replica) and ``internal``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import msgpack

from ...core_ext import tokenize
from ...core_ext.search.model import FACETS, SORTS, Query
from .errors import BadRequest

__all__ = [
    "MAX_REQUEST_ID",
    "Limits",
    "PingRequest",
    "Request",
    "SearchRequest",
    "StatsRequest",
    "SuggestRequest",
    "UpdateRequest",
    "decode_reply",
    "encode",
    "error_reply",
    "parse_request",
    "request_id_of",
]

MAX_REQUEST_ID: Final = 16
#: Most completions one suggest request may ask for (the index's own ceiling).
MAX_SUGGESTIONS: Final = 100
_OPS: Final = ("search", "suggest", "update", "stats", "ping")
_SEARCH_FIELDS: Final = frozenset(
    {"op", "q", "prefix", "category", "brands", "price", "age", "age_to", "in_stock", "sort"}
    | {"offset", "limit", "facets"}
)
_MAX_ID: Final = 2**63 - 1
_MAX_BRANDS: Final = 256
_MAX_CHANGES: Final = 100_000


@dataclass(frozen=True)
class Limits:
    """What a request may ask for (from the ``[search]`` section)."""

    max_terms: int = 32
    max_query_len: int = 256
    max_limit: int = 200
    max_offset: int = 10_000
    max_request: int = 65536
    sorts: frozenset[str] = frozenset(SORTS)


@dataclass(frozen=True)
class SearchRequest:
    query: Query
    facets: tuple[str, ...]


@dataclass(frozen=True)
class SuggestRequest:
    text: str
    limit: int


@dataclass(frozen=True)
class UpdateRequest:
    """Price and stock changes: ``(id, price_cents or None, in_stock or None)``."""

    changes: tuple[tuple[int, int | None, bool | None], ...]


@dataclass(frozen=True)
class StatsRequest:
    pass


@dataclass(frozen=True)
class PingRequest:
    pass


Request = SearchRequest | SuggestRequest | UpdateRequest | StatsRequest | PingRequest


def encode(reply: Mapping[str, Any]) -> bytes:
    """A reply (or request) map as msgpack."""
    return msgpack.packb(reply, use_bin_type=True)  # type: ignore[no-any-return]


def error_reply(code: str, message: str) -> dict[str, Any]:
    return {"ok": False, "error": code, "message": message}


def _decode_map(body: bytes, what: str) -> dict[str, Any]:
    try:
        value = msgpack.unpackb(body, raw=False, strict_map_key=False, use_list=True)
    except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as exc:
        raise BadRequest(f"the {what} is not msgpack: {exc}", "malformed") from None
    except TypeError as exc:  # a map whose key is an array or a map: "unhashable type"
        raise BadRequest(f"the {what} has a key that is not a string: {exc}", "malformed") from None
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise BadRequest(f"the {what} must be a msgpack map with string keys", "malformed")
    return value


def decode_reply(body: bytes) -> dict[str, Any]:
    """A reply body as a map (the client side).

    :raises BadRequest: with code ``malformed`` if it is not a msgpack map.
    """
    return _decode_map(body, "reply")


def _int(body: Mapping[str, Any], key: str, default: int, low: int, high: int) -> int:
    value = body.get(key, default)
    if type(value) is not int:
        raise BadRequest(f"{key} must be an integer, got {type(value).__name__}", "bad_type")
    if not low <= value <= high:
        raise BadRequest(f"{key} must be from {low} to {high}, got {value}", "bad_value")
    return value


def _opt_int(body: Mapping[str, Any], key: str, low: int = 0, high: int = _MAX_ID) -> int | None:
    if body.get(key) is None:
        return None
    return _int(body, key, 0, low, high)


def _bool(body: Mapping[str, Any], key: str, default: bool | None) -> bool | None:
    value = body.get(key, default)
    if value is not None and type(value) is not bool:
        raise BadRequest(f"{key} must be true or false, got {type(value).__name__}", "bad_type")
    return value


def _str(body: Mapping[str, Any], key: str, default: str) -> str:
    value = body.get(key, default)
    if not isinstance(value, str):
        raise BadRequest(f"{key} must be a string, got {type(value).__name__}", "bad_type")
    return value


def _list(body: Mapping[str, Any], key: str) -> list[Any]:
    value = body.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise BadRequest(f"{key} must be a list, got {type(value).__name__}", "bad_type")
    return value


def _text(body: Mapping[str, Any], limits: Limits) -> str:
    text = _str(body, "q", "")
    if len(text) > limits.max_query_len:
        raise BadRequest(
            f"the query is {len(text)} characters; the most is {limits.max_query_len}",
            "query_too_long",
        )
    words = len(tokenize(text))
    if words > limits.max_terms:
        raise BadRequest(
            f"the query has {words} words; the most is {limits.max_terms}", "too_many_terms"
        )
    return text


def _price(body: Mapping[str, Any]) -> tuple[int | None, int | None]:
    bounds = _list(body, "price")
    if not bounds:
        return None, None
    if len(bounds) != 2:
        raise BadRequest("price must be [min, max] in cents (nil: open)", "bad_value")
    low, high = (_opt_int({"price": b}, "price", 0, 2**31 - 1) for b in bounds)
    if low is not None and high is not None and low > high:
        raise BadRequest(f"price: min {low} is above max {high}", "bad_value")
    return low, high


def _age_to(body: Mapping[str, Any], age: int | None) -> int | None:
    age_to = _opt_int(body, "age_to", 0, 255)
    if age_to is not None and (age is None or age_to < age):
        raise BadRequest("age_to goes with age, and is not below it", "bad_value")
    return age_to


def _facets(body: Mapping[str, Any]) -> tuple[str, ...]:
    wanted = _list(body, "facets")
    for name in wanted:
        if name not in FACETS:
            raise BadRequest(f"facets: unknown facet {name!r}; known: {FACETS}", "bad_value")
    return tuple(dict.fromkeys(wanted))


def _brands(body: Mapping[str, Any]) -> tuple[int, ...]:
    brands = _list(body, "brands")
    if len(brands) > _MAX_BRANDS:
        raise BadRequest(f"brands: at most {_MAX_BRANDS}", "bad_value")
    return tuple(_int({"brands": b}, "brands", 0, 0, _MAX_ID) for b in brands)


def _search(body: Mapping[str, Any], limits: Limits) -> SearchRequest:
    _known(body, _SEARCH_FIELDS)
    sort = _str(body, "sort", "relevance")
    if sort not in limits.sorts:
        raise BadRequest(f"sort: unknown {sort!r}; known: {sorted(limits.sorts)}", "bad_value")
    limit = _int(body, "limit", 20, 0, _MAX_ID)
    if limit > limits.max_limit:
        raise BadRequest(f"limit {limit} is over the most, {limits.max_limit}", "limit_too_large")
    offset = _int(body, "offset", 0, 0, _MAX_ID)
    if offset > limits.max_offset:
        raise BadRequest(
            f"offset {offset} is over the most, {limits.max_offset}", "offset_too_large"
        )
    price_min, price_max = _price(body)
    age = _opt_int(body, "age", 0, 255)
    facets = _facets(body)
    query = Query(
        text=_text(body, limits),
        prefix=bool(_bool(body, "prefix", False)),
        category=_opt_int(body, "category"),
        brands=_brands(body),
        price_min=price_min,
        price_max=price_max,
        age=age,
        age_to=_age_to(body, age),
        in_stock=_bool(body, "in_stock", None),
        sort=sort,
        offset=offset,
        limit=limit,
        facets=bool(facets),
    )
    return SearchRequest(query, facets)


def _change(item: object) -> tuple[int, int | None, bool | None]:
    if not isinstance(item, list) or len(item) != 3:
        raise BadRequest("changes: each is [id, price_cents or nil, in_stock or nil]", "bad_type")
    pid = _int({"id": item[0]}, "id", 0, 0, _MAX_ID)
    price = _opt_int({"price_cents": item[1]}, "price_cents", 0, 2**31 - 1)
    stock = _bool({"in_stock": item[2]}, "in_stock", None)
    return pid, price, stock


def _update(body: Mapping[str, Any]) -> UpdateRequest:
    _known(body, {"op", "changes"})
    changes = _list(body, "changes")
    if len(changes) > _MAX_CHANGES:
        raise BadRequest(f"changes: at most {_MAX_CHANGES} in one request", "bad_value")
    return UpdateRequest(tuple(_change(item) for item in changes))


def _suggest(body: Mapping[str, Any], limits: Limits) -> SuggestRequest:
    _known(body, {"op", "q", "limit"})
    text = _text(body, limits)
    limit = _int(body, "limit", 8, 1, _MAX_ID)
    most = min(limits.max_limit, MAX_SUGGESTIONS)
    if limit > most:
        raise BadRequest(f"limit {limit} is over the most, {most}", "limit_too_large")
    return SuggestRequest(text, limit)


def _known(body: Mapping[str, Any], fields: frozenset[str] | set[str]) -> None:
    unknown = sorted(set(body) - fields)
    if unknown:
        raise BadRequest(
            f"unknown field(s) {unknown} for op {body.get('op')!r}; known: {sorted(fields)}",
            "unknown_field",
        )


def request_id_of(frames: Sequence[bytes]) -> bytes:
    """The request id to answer *frames* with (empty if there is none to echo)."""
    return frames[0] if frames and 0 < len(frames[0]) <= MAX_REQUEST_ID else b""


def parse_request(frames: Sequence[bytes], limits: Limits) -> Request:
    """The request in *frames* (the ROUTER's frames with the identity removed).

    :raises BadRequest: with the error reply's code; answer it with
        :func:`request_id_of` (empty when the request has no readable id).
    """
    if len(frames) != 2 or not request_id_of(frames):
        raise BadRequest(
            f"a request is two frames, [id of 1 to {MAX_REQUEST_ID} bytes, msgpack body]",
            "malformed",
        )
    if len(frames[1]) > limits.max_request:
        raise BadRequest(
            f"the request is {len(frames[1])} bytes; the most is {limits.max_request}",
            "too_large",
        )
    return _parse(_decode_map(frames[1], "request"), limits)


def _parse(body: Mapping[str, Any], limits: Limits) -> Request:
    op = body.get("op")
    if op == "search":
        return _search(body, limits)
    if op == "suggest":
        return _suggest(body, limits)
    if op == "update":
        return _update(body)
    if op in ("stats", "ping"):
        _known(body, {"op"})
        return StatsRequest() if op == "stats" else PingRequest()
    raise BadRequest(f"op must be one of {_OPS}, got {op!r}", "unknown_op")
