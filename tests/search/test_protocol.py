"""``sleigh-searchd``'s request parser against anything a client could send."""

from __future__ import annotations

from typing import Any

import msgpack
from hypothesis import given, settings
from hypothesis import strategies as st

from sleigh.daemons.search.errors import RequestError
from sleigh.daemons.search.protocol import Limits, parse_request

FIELDS = ["op", "q", "category", "brands", "price", "age", "age_to", "in_stock", "sort"]
FIELDS += ["offset", "limit", "facets", "changes", "verbose", "qq"]
OPS = ["search", "suggest", "update", "stats", "ping", "drop"]

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=True)
    | st.text(max_size=40)
    | st.binary(max_size=40)
    | st.sampled_from(OPS)
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=12,
)
#: Map keys that are not strings: an array (a tuple packs as one), a number, bytes.
odd_keys = st.tuples(st.integers(0, 3)) | st.integers(-(2**63), 2**63) | st.binary(max_size=4)
bodies = (
    st.dictionaries(st.sampled_from(FIELDS), values, max_size=6)
    | st.dictionaries(st.sampled_from(FIELDS) | odd_keys, values, min_size=1, max_size=3)
).map(lambda body: msgpack.packb(body, use_bin_type=True))


@settings(max_examples=500, deadline=None)
@given(rid=st.binary(max_size=20), body=bodies | st.binary(max_size=200))
def test_any_request_parses_or_gets_a_request_error(rid: bytes, body: bytes) -> None:
    """Nothing but :class:`RequestError` comes out of any bytes or any msgpack map:
    anything else would cost the client an ``internal`` error and the log a traceback."""
    try:
        request: Any = parse_request([rid, body], Limits())
    except RequestError as exc:
        assert exc.code and str(exc)
    else:
        assert request is not None
