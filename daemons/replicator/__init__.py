"""sleigh-mcastd: keeps every host's cache in step over IP multicast."""
