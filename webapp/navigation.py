"""The section navigation every page shows, without each controller loading it.

A worker keeps the category tree it last loaded (through the object cache,
:meth:`~sleigh.webapp.models.catalog.Catalog.tree`) and loads it again at
most once per ``[web] tree_ttl``; the middleware hands it to the views
(:data:`~sleigh.webapp.views.NAVIGATION`), which give it to every template
as ``nav``. A request costs a clock read.

When the tree cannot be loaded (the database and the cache both down), the
last tree loaded stays in use, and a worker that never loaded one renders
its pages, error pages included, without the navigation; it tries again
after :attr:`Navigation.retry` seconds, so a dead database is not asked on
every request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from aiohttp import web
from aiohttp.typedefs import Handler

from .models.catalog import Catalog, CategoryTree
from .views import NAVIGATION

log = logging.getLogger("sleigh.web.navigation")


class Navigation:
    """The category tree of this worker's navigation, and the middleware that provides it.

    :param ttl: seconds a loaded tree is used before it is loaded again.
    :param retry: seconds before loading again after a failure.
    :param clock: monotonic seconds (a parameter, for tests).
    """

    def __init__(
        self,
        catalog: Catalog,
        ttl: float,
        *,
        retry: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.catalog = catalog
        self.ttl = ttl
        self.retry = retry
        self._clock = clock
        self.tree: CategoryTree | None = None
        self._due = -1e300
        self._first = asyncio.Lock()

    async def current(self) -> CategoryTree | None:
        """The tree to show: loaded again if due, else the one held (``None``: none yet)."""
        if self._clock() < self._due:
            return self.tree
        if self.tree is not None:
            await self._load()  # the others meanwhile show the tree held
            return self.tree
        async with self._first:  # the first load: every request waits for it
            if self._clock() >= self._due:
                await self._load()
        return self.tree

    async def _load(self) -> None:
        self._due = self._clock() + min(self.retry, self.ttl)
        try:
            tree = await self.catalog.tree()
        except Exception as exc:  # anything the database, the cache or their drivers raise
            log.warning(
                "cannot load the category tree for the navigation (%s: %s); %s, next try in %gs",
                type(exc).__name__,
                exc,
                "keeping the last one" if self.tree is not None else "pages show none",
                self.retry,
            )
            return
        self.tree = tree
        self._due = self._clock() + self.ttl

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Give the request the navigation's tree (if there is one) for the views."""
        tree = self.tree if self._clock() < self._due else await self.current()
        if tree is not None:
            request[NAVIGATION] = tree
        return await handler(request)
