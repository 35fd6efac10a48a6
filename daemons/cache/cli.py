"""``sleigh-cached``: the host's object cache daemon (exit codes: see ``launch``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..control.launch import daemon_main
from .config import CacheConfig
from .service import serve


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    return daemon_main(
        "sleigh-cached",
        "Serve the host's object cache: LMDB behind a Unix socket, RESP2 subset.",
        CacheConfig,
        serve,
        argv,
        environ,
    )
