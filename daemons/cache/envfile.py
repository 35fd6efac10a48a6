"""Opening the cache's LMDB environment, and refusing one that is unsound.

The flags and what each ``cache.sync`` mode survives are described in
:mod:`~sleigh.daemons.cache.store`.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import lmdb

from .errors import StoreError

FORMAT = b"1"


def open_env(path: Path, map_size: int, sync: str, max_readers: int) -> lmdb.Environment:
    path.mkdir(parents=True, exist_ok=True)
    return lmdb.open(
        str(path),
        map_size=map_size,
        subdir=True,
        max_dbs=4,
        max_readers=max_readers,
        sync=sync != "none",
        metasync=sync == "full",
        writemap=sync == "none",
        readahead=False,
        meminit=False,
        lock=True,
        mode=0o640,
    )


def check_format(env: lmdb.Environment) -> None:
    meta = env.open_db(b"meta")
    with env.begin(db=meta) as txn:
        found = txn.get(b"format")
    if found is not None and found != FORMAT:
        env.close()
        raise StoreError(f"format {found!r}, expected {FORMAT!r}")


def boot_id() -> bytes:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_bytes().strip()
    except OSError:
        return b"unknown"


def check_crash(env: lmdb.Environment, sync: str) -> None:
    """Refuse a file the OS may have left unsound.

    Without ``sync=full`` LMDB's pages reach the disk in whatever order the
    OS writes them, so after an OS crash the file may be torn. An OS crash
    shows as a new boot id while the last run did not close cleanly.
    """
    if sync == "full":
        return
    meta = env.open_db(b"meta")
    with env.begin(db=meta) as txn:
        boot, clean = txn.get(b"boot_id"), txn.get(b"clean")
    if boot is not None and boot != boot_id() and clean != b"1":
        env.close()
        raise StoreError("the machine restarted while the cache was open (sync is not full)")


def move_aside(path: Path) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    target = path.with_name(f"{path.name}.broken-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.broken-{stamp}-{n}")
    if path.exists():
        shutil.move(str(path), str(target))
    return target
