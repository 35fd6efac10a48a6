"""Helpers for tests that run real ``sleigh-cached`` + ``sleigh-mcastd`` pairs."""

from __future__ import annotations

import hashlib
import os
import random
import time
from collections.abc import Callable
from pathlib import Path

import lmdb

from sleigh.daemons.replicator.stats import StatsUnavailable, fetch

SECRET = b"0123456789abcdef-test-cluster-secret"


def write_secret(path: Path, secret: bytes = SECRET, mode: int = 0o600) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(secret)
    os.chmod(path, mode)
    return path


def random_group() -> tuple[str, int]:
    """A group and port no other test run on this machine is likely to use."""
    rng = random.SystemRandom()
    group = f"239.{rng.randrange(100, 200)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
    return group, rng.randrange(20000, 60000)


def digest(env_path: Path) -> str:
    """SHA-256 of every live (key, value, expiry) in an LMDB cache environment."""
    h = hashlib.sha256()
    now = int(time.time() * 1000)
    env = lmdb.open(str(env_path), readonly=True, max_dbs=8, subdir=True)
    try:
        data = env.open_db(b"data", create=False)
        with env.begin(db=data) as txn:
            for key, raw in txn.cursor():
                expires = int.from_bytes(raw[:8], "little")
                if expires and expires <= now:
                    continue
                h.update(len(key).to_bytes(4, "big") + key + raw)
    finally:
        env.close()
    return h.hexdigest()


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.05)


def stats(path: Path) -> dict[str, object]:
    try:
        return fetch(path)
    except StatsUnavailable:
        return {}
