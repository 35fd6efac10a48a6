"""The workload of ``bench_cache.py`` and its client rows, each run in a fresh process.

Keys ``prod:N``, each a ~1 KB product record encoded with sleigh's msgpack codec,
one-hour TTL; GETs pick keys by Zipf popularity (s=1.1, fixed seed, pure-Python
sampler). ``bench_cache.py`` runs one process per row:

    python scripts/cache_workload.py SPEC_JSON

which prints the row's figures as one JSON line (see :func:`worker` for the spec).
"""

from __future__ import annotations

import contextlib
import json
import random
import signal
import sys
import time
from array import array
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lmdb
import redis

from sleigh.daemons.cache.client import CacheClient
from sleigh.daemons.cache.codec import decode, encode
from sleigh.daemons.cache.direct import DirectReader

TTL_S = 3600
SEED = 2000
ZIPF_S = 1.1
WRITE_RATE = 10_000
WRITE_TICK_S = 0.005
#: The fields of one cached product record, in the order they are stored.
FIELDS = (
    "id",
    "sku",
    "slug",
    "title",
    "price_cents",
    "image",
    "brand",
    "description",
    "brand_slug",
    "category_id",
    "age_min",
    "age_max",
)
VALUE_SHAPE = (
    "a whole product record as a list (field names not stored): [id, sku, slug, title"
    " (31-40 chars), price_cents, image, brand, description (880-943 chars), brand_slug,"
    " category_id, age_min, age_max], about 1 KB"
)
_BLURB = (
    "sturdy wooden train set with magnetic couplings and a bright painted finish for"
    " little engineers who love bridges tunnels and stations plus spare track pieces"
    " gift box batteries not included suitable from three years washable fabric"
)
_WORDS = _BLURB.split()
_TEXT = " ".join(random.Random(SEED).choices(_WORDS, k=4000))


def key(i: int) -> bytes:
    return b"prod:%d" % i


def part(i: int) -> list[object]:
    """The product part cached under :func:`key` ``(i)``; see ``VALUE_SHAPE``."""
    start = (i * 7919) % (len(_TEXT) - 1000)
    title = f"{_WORDS[i % len(_WORDS)].title()} toy model no. {i:07d}"[:40]
    fields = {
        "id": i,
        "sku": f"TOY{i:07d}",
        "slug": title.lower().replace(" ", "-").replace(".", ""),
        "title": title,
        "price_cents": i % 10_000 + 99,
        "image": f"toy-{i % 24:02d}",
        "brand": "Jolly Toys",
        "description": _TEXT[start : start + 880 + i % 64],
        "brand_slug": "jolly-toys",
        "category_id": i % 250,
        "age_min": i % 8,
        "age_max": 8 + i % 8,
    }
    return [fields[name] for name in FIELDS]


def zipf_ids(keys: int, count: int, seed: int) -> list[int]:
    """*count* key ids drawn with Zipf(s) popularity; ranks map to ids by a seeded shuffle."""
    rng = random.Random(seed)
    cum, total = [], 0.0
    for rank in range(1, keys + 1):
        total += rank**-ZIPF_S
        cum.append(total)
    ids = list(range(keys))
    rng.shuffle(ids)
    return [ids[r] for r in rng.choices(range(keys), cum_weights=cum, k=count)]


def _pct(ordered: list[int] | array[int], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000


def _summary(lat: array[int], ops: float, ns_op: float) -> dict[str, float]:
    ordered = sorted(lat)
    return {
        "ops": ops,
        "ns": ns_op,
        "p50": _pct(ordered, 0.5),
        "p99": _pct(ordered, 0.99),
        "p999": _pct(ordered, 0.999),
    }


def measure(get: Callable[[bytes], object], keys: list[bytes]) -> dict[str, float]:
    """A warm-up, a pass in 10 chunks (ops/s of the median chunk) and a pass timing each
    op (percentiles)."""
    for k in keys[: max(1000, len(keys) // 10)]:
        get(k)
    misses = sum(get(k) is None for k in keys[:1000])
    if misses:
        raise RuntimeError(f"{misses} of the first 1000 keys missed: the load did not land")
    clock, size, chunks = time.perf_counter_ns, len(keys) // 10, []
    for lo in range(0, size * 10, size):
        t0 = clock()
        for k in keys[lo : lo + size]:
            get(k)
        chunks.append(clock() - t0)
    per_op = sorted(chunks)[len(chunks) // 2] / size  # the median chunk: robust to preemption
    lat = array("q")
    append = lat.append
    for k in keys:
        t = clock()
        get(k)
        append(clock() - t)
    return _summary(lat, 1e9 / per_op, per_op)


def hold(get: Callable[[bytes], object], keys: list[bytes], seconds: float) -> dict[str, float]:
    """Time each op for *seconds*, cycling through *keys*."""
    for k in keys[:1000]:
        get(k)
    clock, lat, i, n = time.perf_counter_ns, array("q"), 0, len(keys)
    t_start = clock()
    end = t_start + int(seconds * 1e9)
    while True:
        t0 = clock()
        get(keys[i])
        t1 = clock()
        lat.append(t1 - t0)
        i = i + 1 if i + 1 < n else 0
        if t1 >= end:
            break
    return _summary(lat, len(lat) * 1e9 / (t1 - t_start), (t1 - t_start) / len(lat))


def _raw_get(env_path: str) -> Callable[[bytes], object]:
    env = lmdb.open(env_path, readonly=True, create=False, lock=True, max_dbs=4)
    data = env.open_db(b"data", create=False)

    def get(k: bytes) -> object:
        with env.begin(db=data) as txn:
            return txn.get(k)

    return get


def _writer(spec: dict[str, Any]) -> dict[str, float]:
    """Pace ``SET`` at ``rate``/s (pipelines of rate x tick) until SIGTERM."""
    stop: list[bool] = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    client = redis.Redis(unix_socket_path=spec["socket"], protocol=2)
    pool = [(key(i), encode(part(i))) for i in zipf_ids(spec["keys"], 2000, SEED + 1)]
    batch, px, sent = round(spec["rate"] * WRITE_TICK_S), TTL_S * 1000, 0
    print("go", flush=True)
    start = due = time.monotonic()
    while not stop:
        pipe = client.pipeline(transaction=False)
        for j in range(sent, sent + batch):
            k, v = pool[j % len(pool)]
            pipe.set(k, v, px=px)
        pipe.execute()
        sent += batch
        due += WRITE_TICK_S
        with contextlib.suppress(InterruptedError):
            time.sleep(max(0.0, due - time.monotonic()))
    client.close()
    return {"sent": sent, "rate": sent / (time.monotonic() - start)}


def worker(spec: dict[str, Any]) -> dict[str, float]:
    """One measurement in this (fresh) process; *spec* says which."""
    kind = spec["kind"]
    if kind == "writer":
        return _writer(spec)
    keys = [key(i) for i in zipf_ids(spec["keys"], spec["requests"], SEED)]
    if kind == "raw":
        return measure(_raw_get(spec["env"]), keys)
    if kind == "redispy":
        client = redis.Redis(unix_socket_path=spec["socket"], protocol=2)
        with contextlib.closing(client):
            return measure(client.get, keys)
    if kind in ("reader", "decode"):
        return _breakdown(kind, Path(spec["env"]), keys)
    with CacheClient(Path(spec["socket"]), Path(spec["env"])) as cache:
        if kind == "direct":
            return measure(cache.get, keys)
        return hold(cache.get, keys, spec["seconds"])


def _breakdown(kind: str, env: Path, keys: list[bytes]) -> dict[str, float]:
    """The direct read in parts: the reader with a trivial decode, or the decode alone."""
    reader = DirectReader(env)
    try:
        if kind == "reader":
            return measure(lambda k: reader.get_decoded(k, len), keys)
        payloads = {k: reader.get(k) or b"" for k in set(keys)}
    finally:
        reader.close()
    return measure(lambda k: decode(payloads[k]), keys)


if __name__ == "__main__":
    print(json.dumps(worker(json.loads(sys.argv[1]))), flush=True)
