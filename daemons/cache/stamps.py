"""Write stamps: how a direct reader knows a value it decoded is still current.

A direct reader (:mod:`.direct`) may keep the objects it decoded and hand the
same object out again, without a read transaction or a decode, for as long as
nothing has written its key since. ``sleigh-cached``, the only writer, keeps a
small shared file beside the environment, ``stamps``: ``SLOTS`` 64-bit counters,
mapped by every reader. Slot 0 is the epoch; every other slot counts the writes
to the keys that hash to it (CRC-32 of the key)::

    offset 0        8        16                 8 * SLOTS
           +--------+--------+-- ... --+--------+
           | epoch  | slot 1 |          | slot N |     little-endian uint64 each
           +--------+--------+-- ... --+--------+

The writer commits a transaction, then adds one to the slot of each key it
wrote (set, delete, expire) and to the epoch for a write that names no key
(a flush) and at every start. A reader reads the epoch and a key's slot
*before* it reads the key, and keeps both with the decoded object: while both
are unchanged, no write to the key has committed since its read (a write that
commits after the stamps were read changes one of them later). Two keys that
share a slot only cost each other a decode. Expiry is the reader's own check,
as for every direct read.

The same holds for what a caller builds out of several objects: a
:class:`Receipt` passed along with reads notes the stamps each object was
read under, and while none of them has changed (and none of the objects has
expired) the thing built from them is as current as a new read would make it
(:meth:`Kept.vouches`): checking costs a comparison per key, not a read.
"""

from __future__ import annotations

import mmap
import os
import struct
import zlib
from array import array
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from .ops import Delete, Expire, Op, Set

__all__ = ["FILENAME", "KEEP", "SLOTS", "Kept", "Receipt", "StampReader", "Stamps", "slot_of"]

T = TypeVar("T")

FILENAME = "stamps"
#: Counters in the file (a power of two); 512 KiB.
SLOTS = 1 << 16
_SIZE = 8 * SLOTS
#: Slots 1 .. SLOTS-1 count keys (``crc32(key) % KEYED + 1``); slot 0 is the epoch.
KEYED = SLOTS - 1
_WRAP = (1 << 64) - 1
#: Decoded objects a reader keeps (all are dropped when there would be more).
KEEP = 20_000
_HEADER = struct.Struct("<Q")  # an entry's expiry, ms since the epoch (see .store)


def slot_of(key: bytes) -> int:
    """The counter of *key*: one of 1 .. SLOTS-1."""
    return zlib.crc32(key) % KEYED + 1


class Stamps:
    """The writer's side: owns the file, counts every write after its commit."""

    def __init__(self, path: Path) -> None:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if os.fstat(fd).st_size != _SIZE:
                os.ftruncate(fd, 0)
                os.ftruncate(fd, _SIZE)
            self._map = mmap.mmap(fd, _SIZE)
        finally:
            os.close(fd)
        self._slots = memoryview(self._map).cast("Q")
        self.bump_epoch()  # what readers kept from before this start is not vouched for

    def count(self, ops: Sequence[Op]) -> None:
        """Count the committed *ops*."""
        keys: list[bytes] = []
        for op in ops:
            if isinstance(op, (Set, Expire)):
                keys.append(op.key)
            elif isinstance(op, Delete):
                keys.extend(op.keys)
            else:  # a flush: any key may have changed
                self.bump_epoch()
        self.touch(keys)

    def touch(self, keys: list[bytes]) -> None:
        """Count a committed write to each of *keys*."""
        slots = self._slots
        crc = zlib.crc32
        for key in keys:
            i = crc(key) % KEYED + 1
            slots[i] = (slots[i] + 1) & _WRAP

    def bump_epoch(self) -> None:
        """Count a write that may have changed any key (a flush, a start)."""
        self._slots[0] = (self._slots[0] + 1) & _WRAP

    def close(self) -> None:
        self._slots.release()
        self._map.close()


class StampReader:
    """A reader's read-only view of the stamps file (``None`` from :meth:`open` if
    there is no such file of the right size: then nothing is kept)."""

    def __init__(self, mapped: mmap.mmap) -> None:
        self._map = mapped
        #: the counters: ``slots[0]`` the epoch, ``slots[slot_of(key)]`` a key's
        self.slots = memoryview(mapped).cast("Q")

    @classmethod
    def open(cls, path: Path) -> StampReader | None:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return None
        try:
            if os.fstat(fd).st_size != _SIZE:
                return None
            return cls(mmap.mmap(fd, _SIZE, prot=mmap.PROT_READ))
        finally:
            os.close(fd)

    def close(self) -> None:
        self.slots.release()
        self._map.close()


class Receipt:
    """The stamps a caller's reads were made under (see the module): one per object read,
    the epoch, and the earliest expiry. *complete* turns false when a read found nothing,
    or could not be vouched for (a daemon without stamps, a read over the socket)."""

    __slots__ = ("complete", "epoch", "expiry", "slots", "stamps")

    def __init__(self) -> None:
        self.epoch: int | None = None
        # (arrays: a kept receipt costs 16 bytes an object, not 72 as two lists of ints)
        self.slots = array("Q")
        self.stamps = array("Q")
        self.expiry = 0  # ns since the epoch; 0: none of the objects expires
        self.complete = True

    def under(self, epoch: int) -> None:
        """The reads that follow were made under *epoch*."""
        if self.epoch is None:
            self.epoch = epoch
        elif epoch != self.epoch:
            self.complete = False

    def add(self, slot: int, stamp: int, expiry: int) -> None:
        """An object read while its slot read *stamp*, expiring at *expiry* (0: never)."""
        self.slots.append(slot)
        self.stamps.append(stamp)
        if expiry and (not self.expiry or expiry < self.expiry):
            self.expiry = expiry

    def missing(self) -> None:
        """A read found nothing, or nothing that can be vouched for."""
        self.complete = False


class Kept:
    """A reader's decoded objects, each with the stamps read before it was read.

    :meth:`take` hands out those still vouched for and names the keys to read;
    :meth:`read` reads those in the caller's transaction and keeps what it found.
    """

    def __init__(self, stamps: StampReader) -> None:
        self.stamps = stamps
        #: key -> (epoch, key's stamp, expiry ns or 0, decoded object)
        self.objects: dict[bytes, tuple[int, int, int, Any]] = {}

    def take(
        self, keys: Sequence[bytes], now_ns: int, receipt: Receipt | None = None
    ) -> tuple[list[Any], list[tuple[int, bytes, int]], int]:
        """(an object or ``None`` per key, the keys to read as (index, key, stamp),
        the epoch): every stamp is read before its key is. *receipt* notes the objects
        handed out (:meth:`read` notes the others)."""
        slots, objects, crc = self.stamps.slots, self.objects, zlib.crc32
        epoch = slots[0]
        out: list[Any] = []
        unread: list[tuple[int, bytes, int]] = []
        if receipt is not None:
            receipt.under(epoch)
        for key in keys:
            slot = crc(key) % KEYED + 1
            seen = slots[slot]
            entry = objects.get(key)
            if (
                entry is not None
                and entry[1] == seen
                and entry[0] == epoch
                and (not entry[2] or entry[2] > now_ns)
            ):
                out.append(entry[3])
                if receipt is not None:
                    receipt.add(slot, seen, entry[2])
            else:
                unread.append((len(out), key, seen))
                out.append(None)
        return out, unread, epoch

    def read(
        self,
        get: Callable[[bytes], Any],
        unread: list[tuple[int, bytes, int]],
        out: list[Any],
        decode: Callable[[memoryview], Any],
        epoch: int,
        now_ns: int,
        receipt: Receipt | None = None,
    ) -> None:
        """Read *unread* with *get* (a transaction's) into *out*, keeping what is live;
        *receipt* notes what was found, or that something was not."""
        objects = self.objects
        if len(objects) + len(unread) > KEEP:
            objects.clear()
        unpack = _HEADER.unpack_from
        for at, key, seen in unread:
            buf = get(key)
            expiry = 0 if buf is None else unpack(buf)[0] * 1_000_000
            if buf is None or (expiry and expiry <= now_ns):
                if receipt is not None:
                    receipt.missing()
                continue
            obj = decode(buf[_HEADER.size :])
            out[at] = obj
            objects[key] = (epoch, seen, expiry, obj)
            if receipt is not None:
                receipt.add(slot_of(key), seen, expiry)

    def vouches(self, receipt: Receipt, now_ns: int) -> bool:
        """Whether every object *receipt* notes is still current: no write to its key
        since it was read, no flush, none expired (a complete receipt only)."""
        if not receipt.complete or receipt.epoch is None:
            return False
        slots = self.stamps.slots
        if slots[0] != receipt.epoch or (receipt.expiry and receipt.expiry <= now_ns):
            return False
        for slot, stamp in zip(receipt.slots, receipt.stamps, strict=True):
            if slots[slot] != stamp:
                return False
        return True
