"""One function per request type, run by the worker threads.

A handler gets the shared :class:`Context` and a parsed request, and
returns the reply map. Every exception becomes an error reply here
(:func:`answer`): a bad request never takes a worker down.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ...core_ext.search.errors import QueryError
from .errors import RequestError
from .index import Holder
from .protocol import (
    Limits,
    PingRequest,
    Request,
    SearchRequest,
    StatsRequest,
    SuggestRequest,
    UpdateRequest,
    error_reply,
    parse_request,
)
from .stats import Stats

log = logging.getLogger("sleigh.search.handlers")

__all__ = ["Context", "answer"]


@dataclass
class Context:
    """What every handler may use."""

    holder: Holder
    limits: Limits
    stats: Stats
    workers: int
    version: str
    address: str
    extra: dict[str, Any] = field(default_factory=dict)


def search(ctx: Context, request: SearchRequest) -> dict[str, Any]:
    with ctx.holder.lease() as index:
        result = index.search(request.query)
        version = index.info.version
    facets = None
    if result.facets is not None:
        facets = {name: result.facets.get(name, {}) for name in request.facets}
    return {
        "ok": True,
        "ids": result.ids,
        "total": result.total,
        "facets": facets,
        "suggestion": result.suggestion,
        "took_us": result.took_us,
        "version": version,
    }


def suggest(ctx: Context, request: SuggestRequest) -> dict[str, Any]:
    started = time.perf_counter_ns()
    with ctx.holder.lease() as index:
        completions = index.suggest(request.text, request.limit)
    took = (time.perf_counter_ns() - started) // 1000
    return {"ok": True, "completions": completions, "took_us": took}


def update(ctx: Context, request: UpdateRequest) -> dict[str, Any]:
    applied, version = ctx.holder.update(list(request.changes))
    return {"ok": True, "applied": applied, "version": version}


def ping(ctx: Context, request: PingRequest) -> dict[str, Any]:
    info = ctx.holder.info
    return {"ok": True, "version": None if info is None else info.version}


def stats(ctx: Context, request: StatsRequest) -> dict[str, Any]:
    out: dict[str, Any] = {"ok": True, **ctx.stats.snapshot()}
    holder = ctx.holder
    info = holder.info
    out["index"] = None
    if info is not None:
        out["index"] = {
            "version": info.version,
            "path": info.path,
            "products": info.products,
            "terms": info.terms,
            "size": info.size,
            "built_at": info.built_at,
            "age_s": round(time.time() - info.built_at, 1),
            "served_since": holder.opened_at,
        }
    out.update(
        {
            "pid": os.getpid(),
            "workers": ctx.workers,
            "daemon_version": ctx.version,
            "address": ctx.address,
            "swaps": holder.swaps,
            "refused_files": holder.refusals,
            "updates_applied": holder.updates_applied,
            "updates_replayed": holder.updates_replayed,
            **ctx.extra,
        }
    )
    return out


_TABLE: dict[type, Callable[[Context, Any], dict[str, Any]]] = {
    SearchRequest: search,
    SuggestRequest: suggest,
    UpdateRequest: update,
    StatsRequest: stats,
    PingRequest: ping,
}

OPS: dict[type, str] = {
    SearchRequest: "search",
    SuggestRequest: "suggest",
    UpdateRequest: "update",
    StatsRequest: "stats",
    PingRequest: "ping",
}


def dispatch(ctx: Context, request: Request) -> dict[str, Any]:
    """Run the handler of *request*; errors are the caller's."""
    return _TABLE[type(request)](ctx, request)


def answer(ctx: Context, frames: list[bytes]) -> tuple[str, dict[str, Any]]:
    """The op name and reply map for the request *frames* (identity removed)."""
    op = "invalid"
    try:
        request = parse_request(frames, ctx.limits)
        op = OPS[type(request)]
        return op, dispatch(ctx, request)
    except RequestError as exc:
        return op, error_reply(exc.code, str(exc))
    except QueryError as exc:
        return op, error_reply("bad_value", str(exc))
    except Exception:  # a bug must cost one reply, never the worker
        log.exception("request %s failed", op)
        return op, error_reply("internal", "the search daemon failed on this request; see its log")
