"""The catalog pages: home, category listings and product pages.

A category page is a listing of ``sleigh-searchd`` (no words, the category as
a filter) with the search page's facets, sorts and pages. When no search
daemon answers it is listed and counted from the database instead, and a
warning is logged: a category page never fails for want of search.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from ...daemons.search.client import BadRequest, SearchUnavailable
from ..keys import CATALOG, CONFIG, SEARCH, VIEWS
from ..models.catalog import ProductPage
from ..models.freshness import note
from ..models.search import BadFilter, Filters, SearchPage, listed, parse_filters, run
from ..models.values import Category

log = logging.getLogger("sleigh.web.catalog")

routes = web.RouteTableDef()


async def _browse(request: web.Request, node: Category, filters: Filters) -> SearchPage:
    """The category page's listing: from the search daemon, else from the database."""
    catalog, config = request.app[CATALOG], request.app[CONFIG]
    client = request.app.get(SEARCH)
    try:
        if client is None:
            raise SearchUnavailable("no search daemon is configured")
        page = await run(client, catalog, filters, config.page_size)
    except SearchUnavailable as exc:
        log.warning("category %s listed from the database: %s", node.path, exc)
        return await listed(catalog, node, filters, config.page_size)
    except BadRequest as exc:
        raise web.HTTPBadRequest(text=f"We could not list that page: {exc}") from None
    note(config.listing_ttl)  # the ids, totals and counts searchd gave: as fresh as a listing
    return page


@routes.get("/", name="home")
async def home(request: web.Request) -> web.Response:
    catalog = request.app[CATALOG]
    tree = await catalog.tree()
    sections = [(root, await catalog.popular(4, root)) for root in tree.roots]
    return request.app[VIEWS].render(
        request,
        "home.mako",
        title="sleigh \u2014 toys, books and video games",
        tree=tree,
        popular=await catalog.popular(8),
        sections=sections,
        public=True,
    )


@routes.get(r"/c/{path:[a-z0-9/-]+}", name="category")
async def category(request: web.Request) -> web.Response:
    tree = await request.app[CATALOG].tree()
    node = tree.by_path.get(request.match_info["path"].strip("/"))
    if node is None:
        raise web.HTTPNotFound(text="No such section")
    try:
        filters = parse_filters(request.query, request.query.getall("brand", []), node)
    except BadFilter as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    page = await _browse(request, node, filters)
    if filters.page > page.pages:
        raise web.HTTPNotFound(text="No such page")
    return request.app[VIEWS].render(
        request,
        "category.mako",
        section=(tree.ancestors(node) or [node])[0].slug,
        title=node.name,
        tree=tree,
        category=node,
        ancestors=tree.ancestors(node),
        asked=filters,
        page=page,
        sorts=filters.sorts,
        public=True,
    )


@routes.get(r"/p/{id:\d{1,12}}", name="product")
@routes.get(r"/p/{id:\d{1,12}}/{slug}", name="product_slug")
async def product(request: web.Request) -> web.Response:
    page = await request.app[CATALOG].product_page(int(request.match_info["id"]))
    if page is None:
        raise web.HTTPNotFound(text="No such product")
    return request.app[VIEWS].render(request, "product.mako", public=True, **product_view(page))


def product_view(page: ProductPage) -> dict[str, Any]:
    """What ``product.mako`` receives for *page*, with the section it belongs to."""
    category = page.tree.by_id[page.product.category_id]
    ancestors = page.tree.ancestors(category)
    return {
        "section": (ancestors or [category])[0].slug,
        "title": page.product.title,
        "tree": page.tree,
        "product": page.product,
        "category": category,
        "ancestors": [*ancestors, category],
        "related": page.related,
    }
