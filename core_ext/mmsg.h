/* Batched UDP receive and send for sleigh-mcastd: recvmmsg(2) and sendmmsg(2).
 *
 * One call moves up to SLEIGH_MMSG_MAX datagrams between a socket and a flat
 * buffer of equal slots (receive) or of datagrams laid end to end (send), so
 * the daemon pays one system call and, from Python, one GIL hand-off per batch
 * instead of one per datagram. Both return a count, or a negative errno.
 */
#ifndef SLEIGH_MMSG_H
#define SLEIGH_MMSG_H

#include <stdint.h>

#define SLEIGH_MMSG_MAX 256

/* Receive up to `max` (at most SLEIGH_MMSG_MAX) datagrams from `fd` into
 * `buf`, datagram i at buf + i * slot, its length (at most `slot`: a longer
 * one is cut to `slot`) in lens[i]. Blocks until the first datagram when the
 * socket blocks, then takes only what is already queued. Returns how many
 * were received (0: the socket was shut down), or -errno; EINTR is retried. */
int sleigh_recv_batch(int fd, uint8_t *buf, int slot, int max, int32_t *lens);

/* Send `count` (at most SLEIGH_MMSG_MAX) datagrams, lens[i] bytes each, laid
 * end to end in `buf`, on the connected socket `fd`. Returns how many went
 * (fewer when the send buffer filled), or -errno when none did (-EAGAIN on a
 * full non-blocking socket); EINTR is retried. */
int sleigh_send_batch(int fd, const uint8_t *buf, const int32_t *lens, int count);

#endif
