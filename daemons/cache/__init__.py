"""sleigh-cached: the host's object cache, LMDB behind a Unix socket."""
