"""Views.render_text: the text Mako's own ``Template.render`` gives, with no reference
cycle left behind for the collector (each page used to leave about 26 objects)."""

from __future__ import annotations

import gc
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from sleigh.webapp.controllers.catalog import product_view
from sleigh.webapp.db import schema
from sleigh.webapp.models.catalog import Catalog
from sleigh.webapp.views import Views


async def _pages(engine: AsyncEngine) -> list[dict[str, Any]]:
    p = schema.products.c
    async with engine.connect() as conn:
        ids = [row[0] for row in await conn.execute(sa.select(p.id).order_by(p.id).limit(12))]
    catalog = Catalog(engine)
    views = [product_view(page) for i in ids if (page := await catalog.product_page(i))]
    assert views
    return views


def _collect_all() -> None:
    """Collect until nothing is left: collecting an engine of an earlier test frees what
    its weak-keyed caches held, and that is only collected by the next collection."""
    while gc.collect():
        pass


async def test_a_page_is_what_mako_renders_and_leaves_no_cycle(demo_engine: AsyncEngine) -> None:
    views = Views()
    contexts = await _pages(demo_engine)
    sections = {c["section"] for c in contexts}
    for context in contexts:  # compile every template first
        views.render_text("product.mako", request_id="r", nav=context["tree"], **context)
    _collect_all()
    gc.disable()
    try:
        for context in contexts:
            text = views.render_text("product.mako", request_id="r", nav=context["tree"], **context)
            section = context.pop("section")
            mako = views.section_lookup(section).get_template("product.mako")
            expected = mako.render(section=section, request_id="r", nav=context["tree"], **context)
            assert text == expected and "</html>" in text
            context["section"] = section
        gc.collect()  # Mako's own renders above leave their cycles: collected here
        for context in contexts:
            views.render_text("product.mako", request_id="r", nav=context["tree"], **context)
        assert gc.collect() == 0
    finally:
        gc.enable()
    assert len(sections) >= 1


async def test_a_failing_render_leaves_no_cycle_either(demo_engine: AsyncEngine) -> None:
    views = Views()
    context = (await _pages(demo_engine))[0]
    views.render_text("product.mako", request_id="r", nav=context["tree"], **context)
    del context["product"]  # strict_undefined: the template fails half way
    _collect_all()
    gc.disable()
    try:
        for _ in range(3):
            try:
                views.render_text("product.mako", request_id="r", nav=context["tree"], **context)
            except NameError:
                pass
            else:
                raise AssertionError("the render should have failed")
        assert gc.collect() == 0
    finally:
        gc.enable()
