"""``sleigh-searchd``: the search daemon (exit codes: see ``launch``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..control.launch import daemon_main
from .config import SearchConfig
from .service import serve


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    return daemon_main(
        "sleigh-searchd",
        "Serve product search: conditions in, sorted product ids out (ZeroMQ, msgpack).",
        SearchConfig,
        serve,
        argv,
        environ,
    )
