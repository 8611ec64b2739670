/*
 * arena.h - a bump allocator for request- and job-scoped memory (nginx pools).
 * Everything allocated from an arena dies with arena_release(); nothing is
 * freed piecemeal. An arena belongs to one thread at a time.
 */
#ifndef LOCI_CORE_ARENA_H
#define LOCI_CORE_ARENA_H

#include <stddef.h>

struct arena_block;

struct arena {
    struct arena_block *head; /* current block; older blocks chain behind */
    size_t block_size;        /* default size of new blocks */
    size_t total;             /* bytes handed out, for metrics and tests */
};

/* Set up an empty arena; the first block is allocated on first use. */
void arena_init(struct arena *a, size_t block_size);
/* Free every block. The arena may be reused after arena_init(). */
void arena_release(struct arena *a);
/* Aligned allocation of n bytes; never NULL (aborts on OOM). */
void *arena_alloc(struct arena *a, size_t n);
void *arena_calloc(struct arena *a, size_t n);
char *arena_strdup(struct arena *a, const char *s);
char *arena_strndup(struct arena *a, const char *s, size_t n);
char *arena_printf(struct arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
