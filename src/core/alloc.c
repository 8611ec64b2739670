/*
 * alloc.c - aborting allocators. Out of memory in a server is not something
 * each caller can handle better than by stopping loudly.
 */
#include "core/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Noreturn void oom(size_t n, const char *file, int line)
{
    fprintf(stderr,
            "{\"level\":\"fatal\",\"msg\":\"out of memory allocating %zu bytes at %s:%d\"}\n", n,
            file, line);
    abort();
}

void *loci__xmalloc(size_t n, const char *file, int line)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom(n, file, line);
    return p;
}

void *loci__xcalloc(size_t nmemb, size_t size, const char *file, int line)
{
    void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);
    if (!p)
        oom(nmemb * size, file, line);
    return p;
}

void *loci__xrealloc(void *p, size_t n, const char *file, int line)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        oom(n, file, line);
    return q;
}

char *loci__xstrdup(const char *s, const char *file, int line)
{
    size_t n = strlen(s);
    char *p = loci__xmalloc(n + 1, file, line);
    memcpy(p, s, n + 1);
    return p;
}

char *loci__xstrndup(const char *s, size_t n, const char *file, int line)
{
    char *p = loci__xmalloc(n + 1, file, line);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void xfree(void *p)
{
    free(p);
}

_Noreturn void loci__bug(const char *msg, const char *file, int line)
{
    fprintf(stderr, "{\"level\":\"fatal\",\"msg\":\"BUG: %s at %s:%d\"}\n", msg, file, line);
    abort();
}
