"""What a daemon does with its memory once it has started.

:func:`freeze_startup` runs just before a daemon says it is ready: what
exists then (modules, configuration, connections, a loaded index) lives as
long as the process, so it is moved out of the cyclic collector's sight
(:func:`gc.freeze`). Every full collection walked all of it again; in
``sleigh-mcastd`` at 10,000 objects/s that was 6% of the sending daemon's
CPU, and pauses of milliseconds in its stream. Frozen objects are still
freed by reference counting when they are dropped (a replaced index, a
closed connection); only a reference cycle among them would stay.
"""

from __future__ import annotations

import gc

__all__ = ["freeze_startup"]


def freeze_startup() -> None:
    """Collect what start-up left behind, then freeze every object that remains."""
    gc.collect()
    gc.freeze()
