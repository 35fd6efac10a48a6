/* The last live record of each key in a throttle log: one pass, an open-addressing
 * table from key hash to record index (linear probing, doubled at half full). */
#include "replay.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    uint64_t hash;
    int64_t index; /* -1: empty slot */
} slot_t;

static int64_t read_i64(const uint8_t *p) {
    int64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static uint64_t read_u64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static slot_t *table_new(uint64_t capacity) {
    slot_t *t = malloc(capacity * sizeof(slot_t));
    if (t != NULL) {
        for (uint64_t i = 0; i < capacity; i++) {
            t[i].index = -1;
        }
    }
    return t;
}

/* Insert or overwrite; the table has a free slot. */
static void table_put(slot_t *t, uint64_t mask, uint64_t hash, int64_t index, uint64_t *used) {
    uint64_t i = (hash ^ (hash >> 29)) & mask;
    while (t[i].index >= 0 && t[i].hash != hash) {
        i = (i + 1) & mask;
    }
    if (t[i].index < 0) {
        (*used)++;
    }
    t[i].hash = hash;
    t[i].index = index;
}

static slot_t *table_grow(slot_t *t, uint64_t *capacity) {
    uint64_t bigger = *capacity * 2, used = 0;
    slot_t *n = table_new(bigger);
    if (n == NULL) {
        return NULL;
    }
    for (uint64_t i = 0; i < *capacity; i++) {
        if (t[i].index >= 0) {
            table_put(n, bigger - 1, t[i].hash, t[i].index, &used);
        }
    }
    free(t);
    *capacity = bigger;
    return n;
}

int64_t sleigh_replay_last_alive(const uint8_t *recs, int64_t count, int64_t record_size,
                                 int64_t now, int64_t *out) {
    uint64_t capacity = 1 << 16, used = 0;
    slot_t *t = table_new(capacity);
    if (t == NULL) {
        return -1;
    }
    for (int64_t r = 0; r < count; r++) {
        const uint8_t *rec = recs + r * record_size;
        int64_t until = read_i64(rec + 8);
        int64_t strike = read_i64(rec + 16), blocked = read_i64(rec + 24);
        if (strike > until) until = strike;
        if (blocked > until) until = blocked;
        if (until <= now) {
            continue;
        }
        if (2 * (used + 1) > capacity) {
            slot_t *n = table_grow(t, &capacity);
            if (n == NULL) {
                free(t);
                return -1;
            }
            t = n;
        }
        table_put(t, capacity - 1, read_u64(rec + 32), r, &used);
    }
    int64_t written = 0;
    for (uint64_t i = 0; i < capacity; i++) {
        if (t[i].index >= 0) {
            out[written++] = t[i].index;
        }
    }
    free(t);
    return written;
}
