"""Placeholder product images: a small SVG drawn from the image key.

The demo catalog names images by key (``toy-07``); until real images are
uploaded, each key gets its own colours and shape, cacheable for a long time.
"""

from __future__ import annotations

import hashlib
from html import escape

from aiohttp import web

from ..views import cache_headers

routes = web.RouteTableDef()

_SHAPES = (
    '<circle cx="200" cy="170" r="90" fill="{fg}"/>',
    '<rect x="110" y="80" width="180" height="180" rx="24" fill="{fg}"/>',
    '<polygon points="200,60 310,260 90,260" fill="{fg}"/>',
    '<ellipse cx="200" cy="170" rx="120" ry="80" fill="{fg}"/>',
)
_WEEK = 7 * 86400


def placeholder_svg(key: str) -> str:
    """The SVG for image *key*: deterministic colours and shape, the key as a label."""
    digest = hashlib.blake2s(key.encode()).digest()
    hue = digest[0] * 360 // 256
    shape = _SHAPES[digest[1] % len(_SHAPES)].format(fg=f"hsl({(hue + 150) % 360},60%,45%)")
    label = escape(key.split("-")[0].replace("_", " ").title())
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 400 400" role="img"'
        f' aria-label="{label}">'
        f'<rect width="400" height="400" fill="hsl({hue},70%,88%)"/>{shape}'
        f'<text x="200" y="340" font-family="sans-serif" font-size="32" text-anchor="middle"'
        f' fill="hsl({hue},40%,25%)">{label}</text></svg>'
    )


@routes.get(r"/img/{key:[a-z0-9_-]{1,40}}.svg", name="image")
async def image(request: web.Request) -> web.Response:
    response = web.Response(
        text=placeholder_svg(request.match_info["key"]), content_type="image/svg+xml"
    )
    cache_headers(response, _WEEK)
    return response
