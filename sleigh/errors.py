"""The root of every exception sleigh raises on purpose."""


class SleighError(Exception):
    """Base class of sleigh's own errors; each package derives its own root."""
