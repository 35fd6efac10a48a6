"""Views: Mako templates that escape by default and know no application logic.

Every template receives ``request_id`` and whatever the controller passes;
the data each template receives is listed at the top of the template.
"""

from __future__ import annotations

import time
from email.utils import formatdate
from pathlib import Path
from typing import Any

from aiohttp import web
from mako.lookup import TemplateLookup

TEMPLATES = Path(__file__).parent / "templates"

#: The id of the request, set by the request-id middleware, shown on error pages.
REQUEST_ID = web.RequestKey("request_id", str)


class Views:
    """Renders templates into responses, with the caching headers a page allows."""

    def __init__(self, directories: list[Path] | None = None, *, check_files: bool = False) -> None:
        self._directories = [str(d) for d in (directories or [TEMPLATES])]
        self._check_files = check_files
        self.lookup = self._make_lookup()

    def _make_lookup(self) -> TemplateLookup:
        return TemplateLookup(
            directories=self._directories,
            default_filters=["str", "h"],
            strict_undefined=True,
            input_encoding="utf-8",
            filesystem_checks=self._check_files,
        )

    def reload(self) -> None:
        """Forget every compiled template; the next render reads the files again."""
        self.lookup = self._make_lookup()

    def render_text(self, name: str, **context: Any) -> str:
        """Render template *name* with *context* to a string."""
        return str(self.lookup.get_template(name).render(**context))

    def render(
        self,
        request: web.Request,
        name: str,
        *,
        status: int = 200,
        max_age: float | None = None,
        **context: Any,
    ) -> web.Response:
        """Render *name* as an HTML response.

        :param max_age: seconds a shared cache may keep the page (the
            shortest TTL of the data it shows); ``None`` marks the page private.
        """
        context.setdefault("title", "sleigh")
        body = self.render_text(name, request_id=request.get(REQUEST_ID, ""), **context)
        response = web.Response(text=body, status=status, content_type="text/html")
        cache_headers(response, max_age)
        return response


def cache_headers(response: web.StreamResponse, max_age: float | None) -> None:
    """Set ``Cache-Control`` and ``Expires`` for a page that may be cached *max_age* s."""
    if max_age is None or max_age <= 0:
        response.headers["Cache-Control"] = "private, no-store"
        return
    seconds = int(max_age)
    response.headers["Cache-Control"] = f"public, max-age={seconds}"
    response.headers["Expires"] = formatdate(time.time() + seconds, usegmt=True)
