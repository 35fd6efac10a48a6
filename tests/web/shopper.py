"""What the shared HTTP helpers of the web tests drive.

The helpers in ``test_cart``, ``test_checkout`` and ``test_account`` (add to
the cart, read it, check out, sign up and in) act as a shopper's browser
does: GET a page, POST its form. They take a :class:`Shopper`: aiohttp's
``TestClient`` on an app in this process is one, and so is the end-to-end
tests' browser on a shop run by ``sleigh up`` (``tests/e2e``).
"""

from __future__ import annotations

from typing import Protocol, Unpack

from aiohttp.client import _RequestContextManager, _RequestOptions
from aiohttp.typedefs import StrOrURL

__all__ = ["Shopper"]


class Shopper(Protocol):
    """An HTTP client bound to one shop (paths are relative to it), with a cookie jar."""

    @property
    def host(self) -> str:
        """The shop's host, as the browser's ``Origin`` names it."""
        ...

    @property
    def port(self) -> int | None:
        """The shop's port."""
        ...

    def get(self, path: StrOrURL, **kwargs: Unpack[_RequestOptions]) -> _RequestContextManager:
        """GET *path* on the shop."""
        ...

    def post(self, path: StrOrURL, **kwargs: Unpack[_RequestOptions]) -> _RequestContextManager:
        """POST to *path* on the shop."""
        ...
