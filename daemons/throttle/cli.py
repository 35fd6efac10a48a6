"""``sleigh-throttled``: request limits for the shop (exit codes: see ``launch``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..control.launch import daemon_main
from .config import ThrottleConfig
from .service import serve


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    return daemon_main(
        "sleigh-throttled",
        "Enforce request limits (GCRA) over a small binary protocol; state in a replayable log.",
        ThrottleConfig,
        serve,
        argv,
        environ,
    )
