"""``sleigh-mcastd``: the cache replicator daemon (exit codes: see ``launch``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..control.launch import daemon_main
from .config import ReplicatorConfig
from .service import serve


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    return daemon_main(
        "sleigh-mcastd",
        "Keep this host's cache in step with its peers' over signed IP multicast.",
        ReplicatorConfig,
        serve,
        argv,
        environ,
    )
