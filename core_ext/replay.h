/* Replay of sleigh-throttled's state log: the last live record of each key.
 *
 * Records are `record_size` bytes, little-endian, beginning with
 * i64 now | i64 tat | i64 strike | i64 blocked | u64 key hash (see
 * sleigh/daemons/throttle/logfile.py). A record is live while
 * max(tat, strike, blocked) > now.
 */
#ifndef SLEIGH_REPLAY_H
#define SLEIGH_REPLAY_H

#include <stdint.h>

/* Write into `out` (room for `count` entries) the index of the last live
 * record of every distinct key hash among the `count` records at `recs`, in
 * no particular order. Returns how many were written, or -1 when memory for
 * the hash table cannot be had. */
int64_t sleigh_replay_last_alive(const uint8_t *recs, int64_t count, int64_t record_size,
                                 int64_t now, int64_t *out);

#endif
