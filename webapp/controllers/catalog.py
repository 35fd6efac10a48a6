"""The catalog pages: home, category listings and product pages."""

from __future__ import annotations

from aiohttp import web

from ..keys import CATALOG, CONFIG, VIEWS
from ..models.queries import SORTS

routes = web.RouteTableDef()


def _int_param(request: web.Request, name: str, default: int, maximum: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= maximum:
        raise web.HTTPBadRequest(text=f"{name} must be a whole number from 1 to {maximum}")
    return int(raw)


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
    catalog = request.app[CATALOG]
    tree = await catalog.tree()
    node = tree.by_path.get(request.match_info["path"].strip("/"))
    if node is None:
        raise web.HTTPNotFound(text="No such section")
    sort = request.query.get("sort", "popular")
    if sort not in SORTS:
        raise web.HTTPBadRequest(text=f"sort must be one of {', '.join(SORTS)}")
    size = request.app[CONFIG].page_size
    page = _int_param(request, "page", 1, 10_000)
    listing = await catalog.listing(node, sort=sort, page=page, size=size)
    if page > listing.pages:
        raise web.HTTPNotFound(text="No such page")
    return request.app[VIEWS].render(
        request,
        "category.mako",
        section=(tree.ancestors(node) or [node])[0].slug,
        title=node.name,
        tree=tree,
        category=node,
        ancestors=tree.ancestors(node),
        listing=listing,
        sort=sort,
        sorts={key: label for key, (label, _order) in SORTS.items()},
        public=True,
    )


@routes.get(r"/p/{id:\d{1,12}}", name="product")
@routes.get(r"/p/{id:\d{1,12}}/{slug}", name="product_slug")
async def product(request: web.Request) -> web.Response:
    page = await request.app[CATALOG].product_page(int(request.match_info["id"]))
    if page is None:
        raise web.HTTPNotFound(text="No such product")
    category = page.tree.by_id[page.product.category_id]
    ancestors = page.tree.ancestors(category)
    return request.app[VIEWS].render(
        request,
        "product.mako",
        section=(ancestors or [category])[0].slug,
        title=page.product.title,
        tree=page.tree,
        product=page.product,
        category=category,
        ancestors=[*ancestors, category],
        related=page.related,
        public=True,
    )
