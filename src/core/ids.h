/*
 * ids.h - identifiers: UUIDv7 (RFC 9562) as lowercase text, time-ordered so
 * that ids sort by creation; and random bytes from the kernel. Safe from any
 * thread.
 */
#ifndef LOCI_CORE_IDS_H
#define LOCI_CORE_IDS_H

#include <stdbool.h>
#include <stddef.h>

#define UUID_STR_LEN 37 /* 36 characters + NUL */

/* Write a new UUIDv7 into out (at least UUID_STR_LEN bytes). */
void ids_uuid7(char out[UUID_STR_LEN]);
/* True when s is a canonical lowercase or uppercase UUID text of length n. */
bool ids_is_uuid(const char *s, size_t n);
/* Fill p with n cryptographically random bytes; aborts if the kernel fails. */
void ids_random(void *p, size_t n);
/* Lowercase hex of n random bytes into out (2n+1 bytes). */
void ids_random_hex(char *out, size_t n_bytes);

#endif
