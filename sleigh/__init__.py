"""sleigh: a toolkit for running a large online shop on commodity machines."""

__version__ = "0.1.0"
