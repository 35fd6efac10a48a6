/* See mmsg.h. */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "mmsg.h"

int sleigh_recv_batch(int fd, uint8_t *buf, int slot, int max, int32_t *lens)
{
    struct mmsghdr msgs[SLEIGH_MMSG_MAX];
    struct iovec iov[SLEIGH_MMSG_MAX];
    int i, got;

    if (max < 1 || slot < 1)
        return -EINVAL;
    if (max > SLEIGH_MMSG_MAX)
        max = SLEIGH_MMSG_MAX;
    memset(msgs, 0, sizeof(struct mmsghdr) * (size_t)max);
    for (i = 0; i < max; i++) {
        iov[i].iov_base = buf + (size_t)i * (size_t)slot;
        iov[i].iov_len = (size_t)slot;
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    do {
        got = recvmmsg(fd, msgs, (unsigned int)max, MSG_WAITFORONE, NULL);
    } while (got < 0 && errno == EINTR);
    if (got < 0)
        return -errno;
    for (i = 0; i < got; i++)
        lens[i] = (int32_t)msgs[i].msg_len;
    return got;
}

int sleigh_send_batch(int fd, const uint8_t *buf, const int32_t *lens, int count)
{
    struct mmsghdr msgs[SLEIGH_MMSG_MAX];
    struct iovec iov[SLEIGH_MMSG_MAX];
    size_t at = 0;
    int i, sent;

    if (count < 0 || count > SLEIGH_MMSG_MAX)
        return -EINVAL;
    if (count == 0)
        return 0;
    memset(msgs, 0, sizeof(struct mmsghdr) * (size_t)count);
    for (i = 0; i < count; i++) {
        if (lens[i] < 0)
            return -EINVAL;
        iov[i].iov_base = (void *)(buf + at);
        iov[i].iov_len = (size_t)lens[i];
        at += (size_t)lens[i];
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    do {
        sent = sendmmsg(fd, msgs, (unsigned int)count, 0);
    } while (sent < 0 && errno == EINTR);
    return sent < 0 ? -errno : sent;
}
