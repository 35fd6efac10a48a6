"""``sleigh-web``: one storefront worker process (exit codes: see ``launch``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..daemons.control.launch import daemon_main
from .config import WebConfig
from .service import serve


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    return daemon_main(
        "sleigh-web",
        "Serve the storefront (one worker; run several on one socket).",
        WebConfig,
        serve,
        argv,
        environ,
    )
