/*
 * ids.c - UUIDv7: 48-bit millisecond timestamp, version 7, 12 bits of a
 * per-thread sequence that keeps ids monotonic within a millisecond, the
 * variant, and 62 random bits.
 */
#include "core/ids.h"

#include "core/alloc.h"
#include "core/clock.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

void ids_random(void *p, size_t n)
{
    unsigned char *c = p;
    while (n > 0) {
        ssize_t got = getrandom(c, n, 0);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            BUG("getrandom failed");
        }
        c += got;
        n -= (size_t)got;
    }
}

static const char hexd[] = "0123456789abcdef";

void ids_random_hex(char *out, size_t n_bytes)
{
    unsigned char tmp[64];
    size_t o = 0;
    while (n_bytes > 0) {
        size_t k = n_bytes < sizeof(tmp) ? n_bytes : sizeof(tmp);
        ids_random(tmp, k);
        for (size_t i = 0; i < k; i++) {
            out[o++] = hexd[tmp[i] >> 4];
            out[o++] = hexd[tmp[i] & 15];
        }
        n_bytes -= k;
    }
    out[o] = '\0';
}

/* Random bits for ids come from a per-thread pool refilled from the kernel,
 * so an id costs a syscall only every 16 ids (ids are on the request path). */
static _Thread_local unsigned char pool[256];
static _Thread_local size_t pool_left;

static void pooled_random(unsigned char *out, size_t n)
{
    if (pool_left < n) {
        ids_random(pool, sizeof(pool));
        pool_left = sizeof(pool);
    }
    memcpy(out, pool + sizeof(pool) - pool_left, n);
    pool_left -= n;
}

/* Per-thread state so that two ids from one thread in one ms still sort. */
static _Thread_local int64_t last_ms;
static _Thread_local uint16_t seq;

void ids_uuid7(char out[UUID_STR_LEN])
{
    unsigned char b[16];
    pooled_random(b, sizeof(b));
    int64_t ms = clock_now_ms();
    if (ms <= last_ms) {
        ms = last_ms;
        seq = (uint16_t)((seq + 1) & 0x0fff);
        if (seq == 0)
            ms = ++last_ms;
    } else {
        seq = (uint16_t)(((unsigned)b[6] << 8 | b[7]) & 0x07ff); /* random start, room to grow */
    }
    last_ms = ms;
    for (int i = 0; i < 6; i++)
        b[i] = (unsigned char)((uint64_t)ms >> (40 - 8 * i));
    b[6] = (unsigned char)(0x70 | ((seq >> 8) & 0x0f));
    b[7] = (unsigned char)(seq & 0xff);
    b[8] = (unsigned char)(0x80 | (b[8] & 0x3f));
    size_t o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hexd[b[i] >> 4];
        out[o++] = hexd[b[i] & 15];
    }
    out[o] = '\0';
}

bool ids_is_uuid(const char *s, size_t n)
{
    if (n != 36)
        return false;
    for (size_t i = 0; i < 36; i++) {
        char c = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                return false;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
            return false;
        }
    }
    return true;
}
