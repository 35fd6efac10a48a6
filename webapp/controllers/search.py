"""The search page and the search box's completions, answered by ``sleigh-searchd``.

Both are public pages, cached by proxies as long as the listing TTL allows
(results) or the listing TTL (completions). When no search daemon answers,
the page is a friendly 503 (never cached) and the rest of the shop works on.
"""

from __future__ import annotations

import logging

from aiohttp import web

from ...daemons.search.client import AsyncSearchClient, BadRequest, SearchUnavailable
from ..keys import CATALOG, CONFIG, SEARCH, VIEWS
from ..models.freshness import note
from ..models.search import SORTS, BadFilter, Filters, parse_filters, run
from ..views import cache_headers

log = logging.getLogger("sleigh.web.search")

routes = web.RouteTableDef()

#: Seconds a shopper (or proxy) is told to wait before asking again, when search is down.
RETRY_AFTER = 30
SUGGESTIONS = 8
MAX_PREFIX = 100


def _client(request: web.Request) -> AsyncSearchClient | None:
    return request.app.get(SEARCH)


def _unavailable(request: web.Request, filters: Filters) -> web.Response:
    log.warning("search unavailable for %r", filters.q)
    response = request.app[VIEWS].render(
        request,
        "search_unavailable.mako",
        status=503,
        title="Search is unavailable",
        q=filters.q,
        tree=None,
    )
    response.headers["Retry-After"] = str(RETRY_AFTER)
    return response


@routes.get("/search", name="search")
async def search(request: web.Request) -> web.Response:
    try:
        filters = parse_filters(request.query, request.query.getall("brand", []))
    except BadFilter as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    catalog = request.app[CATALOG]
    config = request.app[CONFIG]
    client = _client(request)
    if client is None:
        return _unavailable(request, filters)
    try:
        page = None
        if not filters.empty:
            page = await run(client, catalog, filters, config.page_size)
    except SearchUnavailable:
        return _unavailable(request, filters)
    except BadRequest as exc:
        raise web.HTTPBadRequest(text=f"We could not run that search: {exc}") from None
    if page is not None and filters.page > page.pages:
        raise web.HTTPNotFound(text="No such page of results")
    note(config.listing_ttl)  # the ids and totals searchd gave: as fresh as a listing
    popular = []
    if page is None or page.total == 0:
        popular = await catalog.popular(8)
    return request.app[VIEWS].render(
        request,
        "search.mako",
        title=f"{filters.q} \u2014 search" if filters.q else "Search",
        tree=await catalog.tree(),
        q=filters.q,
        asked=filters,
        page=page,
        popular=popular,
        sorts=SORTS,
        public=True,
    )


@routes.get("/search/suggest", name="search_suggest")
async def suggest(request: web.Request) -> web.Response:
    q = request.query.get("q", "")
    if len(q) > MAX_PREFIX:
        raise web.HTTPBadRequest(text=f"q is at most {MAX_PREFIX} characters")
    client = _client(request)
    completions: list[str] = []
    try:
        if client is None:
            raise SearchUnavailable("no search client")
        if q.strip():
            completions = await client.suggest(q, SUGGESTIONS)
    except SearchUnavailable:
        response = web.json_response({"q": q, "completions": []}, status=503)
        response.headers["Retry-After"] = str(RETRY_AFTER)
        cache_headers(response, None)
        return response
    except BadRequest:
        completions = []
    response = web.json_response({"q": q, "completions": completions})
    cache_headers(response, request.app[CONFIG].listing_ttl)
    return response
