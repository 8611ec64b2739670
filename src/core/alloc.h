/*
 * alloc.h - the one out-of-memory policy: allocation failure aborts with the
 * file and line. Nothing outside src/core calls malloc/free directly
 * (scripts/lint enforces it). Safe from any thread.
 */
#ifndef LOCI_CORE_ALLOC_H
#define LOCI_CORE_ALLOC_H

#include <stddef.h>

void *loci__xmalloc(size_t n, const char *file, int line);
void *loci__xcalloc(size_t nmemb, size_t size, const char *file, int line);
void *loci__xrealloc(void *p, size_t n, const char *file, int line);
char *loci__xstrdup(const char *s, const char *file, int line);
char *loci__xstrndup(const char *s, size_t n, const char *file, int line);

#define xmalloc(n)     loci__xmalloc((n), __FILE__, __LINE__)
#define xcalloc(m, n)  loci__xcalloc((m), (n), __FILE__, __LINE__)
#define xrealloc(p, n) loci__xrealloc((p), (n), __FILE__, __LINE__)
#define xstrdup(s)     loci__xstrdup((s), __FILE__, __LINE__)
#define xstrndup(s, n) loci__xstrndup((s), (n), __FILE__, __LINE__)

/* free() for everything allocated above; NULL-safe. */
void xfree(void *p);

/* Programmer errors: print file and line and abort. */
#define BUG(msg) loci__bug((msg), __FILE__, __LINE__)
#define ASSERT(cond)                                                                               \
    do {                                                                                           \
        if (!(cond))                                                                               \
            loci__bug("assertion failed: " #cond, __FILE__, __LINE__);                             \
    } while (0)

_Noreturn void loci__bug(const char *msg, const char *file, int line);

#endif
