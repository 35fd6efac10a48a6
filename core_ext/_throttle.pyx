# cython: language_level=3
"""The throttle daemon's fast path in C; its contract and twin: ``sleigh.daemons.throttle.fastpath``.

:func:`run` answers the run of well-formed CHECK frames at the start of a
read exactly as ``fastpath.run_python`` does (same replies, same state
changes, same records to the table's sink, in the same order), one-key
frames as ``fastpath.answer_one`` does, frames of several keys as
``fastpath.answer_many`` (``Table.check``) does.
A frame it cannot judge (a new key that is not printable ``KIND:VALUE``, a
kind without a rule, an arithmetic overflow) ends the run, as in the twin.

When the table's sink is a :class:`~sleigh.daemons.throttle.logfile.LogWriter`'s
``append`` (the daemon's), the records are written into the writer's buffer
here, byte for byte what ``append`` writes: that call, eight integers boxed
and a ``struct.pack``, was a fifth of the daemon's CPU under load. Any other
sink is called as the twin calls it.
"""

import sys

from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE, PyByteArray_Resize
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.dict cimport PyDict_GetItem
from cpython.object cimport PyObject
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t
from libc.string cimport memcpy, memset

from sleigh.daemons.throttle.gcra import ALLOW, key_hash
from sleigh.daemons.throttle.logfile import RECORD, LogWriter

__all__ = ["run"]

cdef enum:
    HEAD_SIZE = 11
    CHECK = 1
    MAX_FRAME = 4096
    KEY_MAX = 48
    MAX_KEYS = 32
    REPLY_SIZE = 23
    NO_KEY = 255
    ALLOWED_AT = 9

cdef int64_t INT64_MAX = 0x7FFFFFFFFFFFFFFF
# A record as ``logfile.RECORD`` packs it (``<qqqqQIBBH48s``): now, tat, strike, blocked,
# key hash, cost, event, key length, 0, key (zero-padded). Written natively only where the
# host's byte order is the format's.
cdef Py_ssize_t RECORD_SIZE = RECORD.size
cdef bint DIRECT_RECORDS = sys.byteorder == "little" and RECORD.format == "<qqqqQIBBH48s"
cdef uint8_t EVENT_ALLOW = ALLOW


cdef int _record(bytearray records, uint8_t event, bytes key, uint64_t digest, int64_t now,
                 int64_t tat, int64_t strike, int64_t blocked, uint32_t cost) except -1:
    """Append one record to *records*, as ``LogWriter.append`` does."""
    cdef Py_ssize_t size = PyByteArray_GET_SIZE(records)
    cdef Py_ssize_t klen = len(key)
    if klen > 48:
        klen = 48
    PyByteArray_Resize(records, size + RECORD_SIZE)
    cdef char *p = PyByteArray_AS_STRING(records) + size
    memset(p, 0, RECORD_SIZE)
    memcpy(p, &now, 8)
    memcpy(p + 8, &tat, 8)
    memcpy(p + 16, &strike, 8)
    memcpy(p + 24, &blocked, 8)
    memcpy(p + 32, &digest, 8)
    memcpy(p + 40, &cost, 4)
    p[44] = <char>event
    p[45] = <char><uint8_t>len(key)
    memcpy(p + 48, PyBytes_AS_STRING(key), klen)
    return 0


cdef int _allowed(object sink, bytearray records, bytes name, list state, int64_t now,
                  uint32_t cost) except -1:
    """Record an admitted key's new state: into *records*, or through *sink*."""
    if records is not None:
        return _record(records, EVENT_ALLOW, name, state[3], now, state[0], state[1], state[2],
                       cost)
    if sink is not None:
        sink(ALLOW, name, state[3], now, state[0], state[1], state[2], cost)
    return 0


cdef inline uint32_t _u32(const uint8_t *p) noexcept:
    cdef uint32_t v
    memcpy(&v, p, 4)
    return v


cdef bytes _reply(uint32_t rid, uint8_t allowed, uint8_t limiting, uint32_t remaining,
                  int64_t retry):
    """``u32 19 | u8 0 | u32 id | u8 allowed | u8 limiting | u32 remaining | u64 retry``."""
    cdef bytes out = PyBytes_FromStringAndSize(NULL, REPLY_SIZE)
    cdef char *p = PyBytes_AS_STRING(out)
    cdef uint32_t length = REPLY_SIZE - 4
    memcpy(p, &length, 4)
    p[4] = 0
    memcpy(p + 5, &rid, 4)
    p[9] = <char>allowed
    p[10] = <char>limiting
    memcpy(p + 11, &remaining, 4)
    memcpy(p + 15, &retry, 8)
    return out


cdef Py_ssize_t _new_key_colon(const uint8_t *key, Py_ssize_t size) noexcept:
    """Where the first ``:`` is in a printable key, or -1 if the key is not one."""
    cdef Py_ssize_t i, colon = -1
    if size == 0:
        return -1
    for i in range(size):
        if key[i] < 0x21 or key[i] > 0x7E:
            return -1
        if key[i] == 0x3A and colon < 0:
            colon = i
    return colon


cdef object _answer_one(object table, dict states, dict limits, object sink, bytearray records,
                        const uint8_t *key, Py_ssize_t klen, uint32_t cost, uint32_t rid,
                        int64_t now):
    """The reply to a one-key CHECK, or ``None`` to leave it to the general path."""
    cdef bytes name = PyBytes_FromStringAndSize(<const char *>key, klen)
    cdef PyObject *found = PyDict_GetItem(states, name)
    cdef Py_ssize_t colon
    cdef int64_t interval, tolerance, tat = 0, blocked = 0, base, new, wait, remaining
    cdef list state
    if found == NULL:
        colon = _new_key_colon(key, klen)
        if colon < 0:
            return None
    else:
        colon = 0
        while key[colon] != 0x3A:
            colon += 1
    cdef PyObject *limit = PyDict_GetItem(limits, PyBytes_FromStringAndSize(<const char *>key, colon))
    if limit == NULL:
        return None
    rule, interval, tolerance = <object>limit
    if interval <= 0:
        return None
    if found != NULL:
        state = <list>found
        tat = state[0]
        blocked = state[2]
    base = tat if tat > now else now
    if cost != 0 and interval > (INT64_MAX - base) // cost:
        return None  # beyond int64 nanoseconds: the general path's exact integers answer it
    new = base + cost * interval
    wait = blocked - now if blocked > now else new - tolerance - now
    if wait > 0:
        table.deny(name, rule, now)
        return _reply(rid, 0, 0, 0, wait)
    if found == NULL:
        state = [0, 0, 0, key_hash(name)]
        states[name] = state
    state[0] = new
    _allowed(sink, records, name, state, now, cost)
    remaining = (tolerance - new + now) // interval
    return _reply(rid, 1, NO_KEY, <uint32_t>(remaining if remaining < 0xFFFFFFFF else 0xFFFFFFFF), 0)


cdef object _answer_many(object table, dict states, dict limits, object sink,
                         bytearray records, const uint8_t *buf, Py_ssize_t pos, Py_ssize_t end, int count,
                         uint32_t rid, int64_t now):
    """The reply to a CHECK of several keys (``Table.check``), or ``None`` for the general path."""
    cdef list keys = [], rules = []
    cdef int64_t costs[MAX_KEYS]
    cdef int64_t news[MAX_KEYS]
    cdef bint denied[MAX_KEYS]
    cdef int64_t interval, tolerance, tat, blocked, base, wait, retry = 0
    cdef int64_t remaining = 1 << 31, left
    cdef int i, limiting = -1, n_denied = 0
    cdef Py_ssize_t klen, colon
    cdef PyObject *found
    cdef PyObject *limit
    cdef uint32_t cost
    if count < 1 or count > MAX_KEYS:
        return None
    pos += 10
    for i in range(count):
        if pos >= end:
            return None
        klen = buf[pos]
        if klen > KEY_MAX or pos + 1 + klen + 4 > end:
            return None
        name = PyBytes_FromStringAndSize(<const char *>(buf + pos + 1), klen)
        found = PyDict_GetItem(states, name)
        colon = _new_key_colon(buf + pos + 1, klen)
        if colon < 0:
            return None
        limit = PyDict_GetItem(limits, PyBytes_FromStringAndSize(<const char *>(buf + pos + 1), colon))
        if limit == NULL:
            return None
        rule, interval, tolerance = <object>limit
        if interval <= 0:
            return None
        cost = _u32(buf + pos + 1 + klen)
        tat = blocked = 0
        if found != NULL:
            tat = (<list>found)[0]
            blocked = (<list>found)[2]
        base = tat if tat > now else now
        if cost != 0 and interval > (INT64_MAX - base) // cost:
            return None
        news[i] = base + cost * interval
        costs[i] = cost
        wait = blocked - now if blocked > now else news[i] - tolerance - now
        denied[i] = wait > 0
        if wait > 0:
            n_denied += 1
            if wait > retry:
                retry, limiting = wait, i
        else:
            left = (tolerance - news[i] + now) // interval
            if left < remaining:
                remaining = left
        keys.append(name)
        rules.append(rule)
        pos += 1 + klen + 4
    if pos != end:
        return None
    if n_denied:
        for i in range(count):
            if denied[i]:
                table.deny(keys[i], rules[i], now)
        return _reply(rid, 0, <uint8_t>limiting, 0, retry)
    for i in range(count):
        name = keys[i]
        found = PyDict_GetItem(states, name)
        if found == NULL:
            state = [0, 0, 0, key_hash(name)]
            states[name] = state
        else:
            state = <list>found
        state[0] = news[i]
        _allowed(sink, records, name, state, now, <uint32_t>costs[i])
    return _reply(rid, 1, NO_KEY, <uint32_t>(remaining if remaining < 0xFFFFFFFF else 0xFFFFFFFF), 0)


def run(object table, bytes data, int64_t now, list out):
    """Answer the CHECKs at the start of *data* into *out*.

    :returns: bytes consumed, decisions allowed, decisions denied.
    """
    cdef const uint8_t *buf = <const uint8_t *>PyBytes_AS_STRING(data)
    cdef Py_ssize_t pos = 0, size = len(data), end
    cdef uint32_t length, rid
    cdef uint8_t op, count, klen
    cdef Py_ssize_t allowed = 0, answered = 0
    cdef dict states = table.states
    cdef dict limits = table.limits
    sink = table.sink
    cdef bytearray records = None
    writer = getattr(sink, "__self__", None)
    if (
        DIRECT_RECORDS
        and type(writer) is LogWriter
        and getattr(sink, "__func__", None) is LogWriter.append
    ):
        records = writer.buffer
    while size - pos >= HEAD_SIZE:
        length = _u32(buf + pos)
        op = buf[pos + 4]
        rid = _u32(buf + pos + 5)
        count = buf[pos + 9]
        klen = buf[pos + 10]
        end = pos + 4 + <Py_ssize_t>length
        if op != CHECK or length > MAX_FRAME or end > size:
            break
        if count == 1 and length == 11 + <uint32_t>klen and klen <= KEY_MAX:
            reply = _answer_one(
                table, states, limits, sink, records, buf + pos + 11, klen, _u32(buf + end - 4),
                rid, now,
            )
        else:
            reply = _answer_many(
                table, states, limits, sink, records, buf, pos, end, count, rid, now
            )
        if reply is None:
            break
        allowed += (<bytes>reply)[ALLOWED_AT]
        answered += 1
        out.append(reply)
        pos = end
    return pos, allowed, answered - allowed
