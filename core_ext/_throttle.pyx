# cython: language_level=3
"""The throttle daemon's fast path in C; its contract and twin: ``sleigh.daemons.throttle.fastpath``.

:func:`run` answers the run of well-formed CHECK frames at the start of a
read exactly as ``fastpath.run_python`` does (same replies, same state
changes, same records to the table's sink, in the same order), one-key
frames here, several-key frames through the *many* callable it is given.
A frame it cannot judge (a new key that is not printable ``KIND:VALUE``, a
kind without a rule, an arithmetic overflow) ends the run, as in the twin.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.dict cimport PyDict_GetItem
from cpython.object cimport PyObject
from libc.stdint cimport int64_t, uint8_t, uint32_t
from libc.string cimport memcpy

from sleigh.daemons.throttle.gcra import ALLOW, key_hash

__all__ = ["run"]

cdef enum:
    HEAD_SIZE = 11
    CHECK = 1
    MAX_FRAME = 4096
    KEY_MAX = 48
    REPLY_SIZE = 23
    NO_KEY = 255
    ALLOWED_AT = 9

cdef int64_t INT64_MAX = 0x7FFFFFFFFFFFFFFF


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


cdef object _answer_one(object table, dict states, dict limits, object sink, const uint8_t *key,
                        Py_ssize_t klen, uint32_t cost, uint32_t rid, int64_t now):
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
    if sink is not None:
        sink(ALLOW, name, state[3], now, new, state[1], state[2], cost)
    remaining = (tolerance - new + now) // interval
    return _reply(rid, 1, NO_KEY, <uint32_t>(remaining if remaining < 0xFFFFFFFF else 0xFFFFFFFF), 0)


def run(object table, bytes data, int64_t now, list out, object many):
    """Answer the CHECKs at the start of *data* into *out*.

    :param many: ``fastpath.answer_many``, for frames of several keys.
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
                table, states, limits, sink, buf + pos + 11, klen, _u32(buf + end - 4), rid, now
            )
        else:
            reply = many(table, data, pos, end, count, rid, now)
        if reply is None:
            break
        allowed += (<bytes>reply)[ALLOWED_AT]
        answered += 1
        out.append(reply)
        pos = end
    return pos, allowed, answered - allowed
