"""Views: Mako templates that escape by default and know no application logic.

Every template receives ``request_id``, ``nav`` (the category tree for the
section navigation: the controller's ``tree`` if it passed one, else the
request's :data:`NAVIGATION`, else ``None``) and whatever the controller
passes; the data each template receives is listed at the top of the template.

A page that is the same for everyone (``public=True``) may be cached by
proxies for the shortest TTL of the data it shows (collected as models
load, see :mod:`.models.freshness`), capped by ``[web] page_max_age``.
Time is cut into windows of that length: ``Last-Modified`` is the start of
the current window and the page expires at its end, so every proxy and
browser agrees, and a conditional GET with ``If-Modified-Since`` inside
the window gets ``304 Not Modified`` without the page being rendered.
"""

from __future__ import annotations

import functools
import math
import re
import time
from collections.abc import Callable
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path
from typing import Any

from aiohttp import web
from mako.lookup import TemplateLookup
from mako.runtime import Context
from mako.util import FastEncodingBuffer

from .models.freshness import current
from .models.values import CategoryTree

TEMPLATES = Path(__file__).parent / "templates"
_SECTION = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")

#: The id of the request, set by the request-id middleware, shown on error pages.
REQUEST_ID = web.RequestKey("request_id", str)
#: The category tree of the navigation, set by :mod:`.navigation`'s middleware.
NAVIGATION = web.RequestKey("navigation", CategoryTree)


class Views:
    """Renders templates into responses, with the caching headers a page allows."""

    def __init__(
        self,
        directories: list[Path] | None = None,
        *,
        check_files: bool = False,
        page_max_age: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._directories = [Path(d) for d in (directories or [TEMPLATES])]
        self._check_files = check_files
        self.page_max_age = page_max_age
        self._clock = clock
        self.lookup = self._make_lookup(None)
        self._sections: dict[str, TemplateLookup] = {}

    def _make_lookup(self, section: str | None) -> TemplateLookup:
        directories = [str(d) for d in self._directories]
        if section is not None:
            directories = [str(d / "sections" / section) for d in self._directories] + directories
        return TemplateLookup(
            directories=directories,
            default_filters=["text"],
            imports=["from sleigh.webapp.escaping import text"],
            strict_undefined=True,
            input_encoding="utf-8",
            filesystem_checks=self._check_files,
        )

    def reload(self) -> None:
        """Forget every compiled template; the next render reads the files again."""
        self.lookup = self._make_lookup(None)
        self._sections.clear()

    def section_lookup(self, section: str | None) -> TemplateLookup:
        """The lookup of a section: its own directory first (``sections/<slug>/`` under
        each template directory), then the shop's templates."""
        if section is None or not _SECTION.fullmatch(section):
            return self.lookup
        if section not in self._sections:
            self._sections[section] = self._make_lookup(section)
        return self._sections[section]

    def render_text(self, name: str, *, section: str | None = None, **context: Any) -> str:
        """Render template *name* with *context* to a string, as *section* looks
        (what ``Template.render`` does, with the render's reference cycles cut after)."""
        template = self.section_lookup(section).get_template(name)
        buf = FastEncodingBuffer(encoding=template.output_encoding, errors=template.encoding_errors)
        data = {"section": section, **context}
        tied = _TiedContext(buf, **data)
        try:
            template.render_context(tied, **data)  # every page takes **pageargs
            return str(buf.getvalue())
        finally:
            tied.untie()

    def render(
        self,
        request: web.Request,
        name: str,
        *,
        status: int = 200,
        public: bool = False,
        section: str | None = None,
        **context: Any,
    ) -> web.Response:
        """Render *name* as an HTML response.

        :param public: the page is the same for everyone, so proxies may cache
            it (see the module docstring); else it is private.
        :param section: the slug of the shop section the page belongs to, whose
            templates override the shop's (``templates/sections/<slug>/``).
        """
        window = self.window() if public and status == 200 else None
        if window is not None and not_modified_since(request, window[0]):
            response = web.Response(status=304)
        else:
            context.setdefault("title", "sleigh")
            context.setdefault("nav", context.get("tree") or request.get(NAVIGATION))
            rid = request.get(REQUEST_ID, "")
            body = self.render_text(name, section=section, request_id=rid, **context)
            response = web.Response(text=body, status=status, content_type="text/html")
        if window is None:
            cache_headers(response, None)
        else:
            start, end = window
            # A window that ended while the page was rendered leaves it public for the
            # shortest lifetime, as a window ending within the second does.
            cache_headers(response, max(end - self._clock(), 1.0))
            response.headers["Last-Modified"] = http_date(int(start))
        return response

    def window(self) -> tuple[float, float] | None:
        """The current freshness window of a public page: (start, end); ``None``: private."""
        collected = current()
        ttl = min(self.page_max_age, collected.ttl if collected is not None else math.inf)
        if ttl < 1:
            return None
        span = int(ttl)
        start = float(int(self._clock()) // span * span)
        return start, start + span


class _TiedContext(Context):  # type: ignore[misc]
    """A Mako context that keeps a list of its copies.

    In a render every namespace holds a context and every context's data holds
    namespaces: each page left about 26 objects in reference cycles, freed only by
    the cyclic collector (measured under ``wrk``: a worker ran about 1,000 gen-0
    collections for 21,000 product pages, 15 µs of CPU a page; with the cycles
    cut, 25). :meth:`untie` empties the data of every copy when the page is done,
    so they are freed at once.
    """

    def __init__(self, buffer: FastEncodingBuffer, **data: Any) -> None:
        super().__init__(buffer, **data)
        self._copies: list[Context] = [self]

    def _copy(self) -> Context:
        copy = super()._copy()
        copy.__class__ = _TiedContext
        copy._copies = self._copies
        self._copies.append(copy)
        return copy

    def untie(self) -> None:
        for each in self._copies:
            each._data.clear()
        self.namespaces.clear()
        self._copies.clear()


def not_modified_since(request: web.Request, start: float) -> bool:
    """Whether the client's copy (``If-Modified-Since``) is from this window."""
    raw = request.headers.get("If-Modified-Since")
    if not raw or request.method not in ("GET", "HEAD"):
        return False
    try:
        since = parsedate_to_datetime(raw).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return False
    return since >= start


def cache_headers(response: web.StreamResponse, max_age: float | None) -> None:
    """Set ``Cache-Control`` and ``Expires`` for a page that may be cached *max_age* s."""
    if max_age is None or max_age <= 0:
        response.headers["Cache-Control"] = "private, no-store"
        return
    seconds = max(1, int(max_age))
    response.headers["Cache-Control"] = f"public, max-age={seconds}"
    response.headers["Expires"] = http_date(int(time.time()) + seconds)


@functools.lru_cache(maxsize=256)
def http_date(seconds: int) -> str:
    """*seconds* since the epoch as an HTTP date (a page's few distinct dates are
    formatted once each)."""
    return formatdate(seconds, usegmt=True)
