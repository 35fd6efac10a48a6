"""``sleigh status``: every component, its state, address and headline figures."""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import aiohttp
import sqlalchemy as sa

from ...webapp.db import schema
from ...webapp.db.engine import create_engine, database_url, redacted
from ...webapp.db.migrate import current_revision, head_revision
from ..cache.client import CacheClient, CacheClientError
from . import replication_cmd, search_cmd, throttle_cmd
from .component import Component
from .front import run_dir
from .settings import Settings
from .up import state_file

TIMEOUT = 3.0


async def database_status(settings: Settings) -> Component:
    url = redacted(database_url(settings.database, settings.home))
    engine = create_engine(settings.database, settings.home)
    try:
        async with asyncio.timeout(TIMEOUT):
            revision = await current_revision(engine)
            details: dict[str, Any] = {"revision": revision, "head": head_revision()}
            if revision is None:
                return Component("database", "down", url, {**details, "error": "not created"})
            async with engine.connect() as conn:
                count = sa.select(sa.func.count()).select_from(schema.products)
                details["products"] = (await conn.execute(count)).scalar_one()
    except Exception as exc:  # any failure to reach it is what status reports
        return Component("database", "down", url, {"error": f"{type(exc).__name__}: {exc}"})
    finally:
        await engine.dispose()
    state = "up" if details["revision"] == details["head"] else "degraded"
    return Component("database", state, url, details)


def _running_state(home: Path) -> dict[str, Any] | None:
    try:
        state: dict[str, Any] = json.loads(state_file(home).read_text())
        os.kill(int(state["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return state


def _web_address(settings: Settings, running: dict[str, Any] | None) -> str:
    if running is not None:
        return str(running["web"]["address"])
    cfg = settings.web
    path = cfg.socket_path(settings.home)
    if path is not None:
        return f"unix:{path}"
    return f"http://{cfg.host}:{cfg.port}/"


async def web_status(settings: Settings) -> Component:
    running = _running_state(settings.home)
    address = _web_address(settings, running)
    details: dict[str, Any] = {}
    if running is not None:
        details["supervisor_pid"] = running["pid"]
        details["workers"] = running["web"]["workers"]
    state = await _health(address, details)
    return Component("web", state, address, details)


async def front_status(settings: Settings) -> Component | None:
    """nginx in front of ``sleigh up``'s workers (``None``: no front tier runs)."""
    running = _running_state(settings.home)
    front = None if running is None else running.get("front")
    if not front:
        return None
    pages = run_dir(settings.home) / "pages"
    details: dict[str, Any] = {"pid": front["pid"]}
    state = await _health(str(front["address"]), details)
    details["kept_pages"] = sum(1 for p in pages.rglob("*") if p.is_file()) if pages.is_dir() else 0
    return Component("front", state, str(front["address"]), details)


async def _health(address: str, details: dict[str, Any]) -> str:
    """The state of the web tier at *address* (``http://...`` or ``unix:/...``) by its
    ``/healthz``; what it said goes into *details*."""
    if address.startswith("unix:"):
        connector: aiohttp.BaseConnector = aiohttp.UnixConnector(path=address[5:])
        url = "http://localhost/healthz"
    else:
        connector, url = aiohttp.TCPConnector(), address.rstrip("/") + "/healthz"
    try:
        async with (
            aiohttp.ClientSession(
                connector=connector, timeout=aiohttp.ClientTimeout(total=TIMEOUT)
            ) as http,
            http.get(url) as response,
        ):
            body = await response.json()
            details["health"] = body.get("status")
            return "up" if response.status == 200 else "degraded"
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        details["error"] = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return "down"


def _cache_info(settings: Settings) -> dict[str, Any]:
    path = settings.cache.socket_path(settings.home)
    with CacheClient(path, None, direct=False, timeout=TIMEOUT) as client:
        return client.info()


async def cache_status(settings: Settings) -> Component:
    address = f"unix:{settings.cache.socket_path(settings.home)}"
    try:
        info = await asyncio.to_thread(_cache_info, settings)
    except CacheClientError as exc:
        return Component("cache", "down", address, {"error": str(exc)})
    hits = int(info["keyspace_hits"]) + int(info["sleigh_direct_hits"])
    misses = int(info["keyspace_misses"]) + int(info["sleigh_direct_misses"])
    keyspace = info.get("db0", {})
    details = {
        "pid": info["process_id"],
        "keys": keyspace.get("keys", 0) if isinstance(keyspace, dict) else 0,
        "hit_ratio": f"{hits / (hits + misses):.3f}" if hits + misses else "-",
        "map_used": info["lmdb_map_used_ratio"],
        "evicted": info["evicted_keys"],
        "clients": info["connected_clients"],
    }
    return Component("cache", "up", address, details)


async def collect(settings: Settings) -> list[Component]:
    """The status of every component, gathered concurrently (the front tier's only when
    ``sleigh up`` runs one)."""
    found = await asyncio.gather(
        database_status(settings),
        cache_status(settings),
        replication_cmd.status(settings),
        throttle_cmd.status(settings),
        search_cmd.status(settings),
        web_status(settings),
        front_status(settings),
    )
    return [c for c in found if c is not None]


def as_json(settings: Settings, components: list[Component]) -> str:
    return json.dumps(
        {
            "home": str(settings.home),
            "ok": all(c.ok for c in components),
            "components": {c.name: asdict(c) for c in components},
        },
        indent=2,
    )


def as_table(components: list[Component]) -> str:
    rows = [("COMPONENT", "STATE", "ADDRESS", "DETAILS")]
    for c in components:
        details = ", ".join(f"{k}={v}" for k, v in c.details.items())
        rows.append((c.name, c.state, c.address, details))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True))
        + "  "
        + row[3]
        for row in rows
    )
