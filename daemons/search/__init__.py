"""sleigh-searchd: conditions in, sorted product ids out, from an inverted index."""
