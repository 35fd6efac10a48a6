"""sleigh-throttled: request limits (GCRA) kept in compact, replayable logs."""
