"""The storefront: models, controllers, Mako views, middleware (aiohttp + uvloop)."""
