/*
 * static.c - serves the built web UI from cfg->web_dir: content types by
 * extension, immutable caching for hashed assets under /assets/, and the SPA
 * fallback to index.html for paths that are not files. No path from the
 * client reaches the file system unchecked: "..", hidden segments,
 * backslashes and control characters are refused.
 */
#include "api/app.h"
#include "core/err.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

static const char builtin_page[] =
    "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
    "<title>Loci</title></head><body>\n"
    "<h1>Loci is running</h1>\n"
    "<p>The web UI is not built yet (no <code>index.html</code> in the web directory).</p>\n"
    "<ul>\n"
    "<li><a href=\"/health\">/health</a> &mdash; liveness</li>\n"
    "<li><a href=\"/health/detailed\">/health/detailed</a> &mdash; database and schema</li>\n"
    "<li><a href=\"/api/v1/openapi.json\">/api/v1/openapi.json</a> &mdash; the API</li>\n"
    "<li><a href=\"/metrics\">/metrics</a> &mdash; Prometheus metrics</li>\n"
    "</ul>\n</body></html>\n";

static const struct {
    const char *ext;
    const char *type;
} types[] = {
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".mjs", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".json", "application/json"},
    {".map", "application/json"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".jpg", "image/jpeg"},
    {".jpeg", "image/jpeg"},
    {".gif", "image/gif"},
    {".webp", "image/webp"},
    {".ico", "image/x-icon"},
    {".woff", "font/woff"},
    {".woff2", "font/woff2"},
    {".txt", "text/plain; charset=utf-8"},
    {".webmanifest", "application/manifest+json"},
    {".wasm", "application/wasm"},
};

static const char *content_type(const char *path)
{
    const char *dot = strrchr(path, '.');
    const char *slash = strrchr(path, '/');
    if (dot && (!slash || dot > slash)) {
        for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
            if (strcasecmp(dot, types[i].ext) == 0)
                return types[i].type;
        }
    }
    return "application/octet-stream";
}

static bool safe_path(const char *p)
{
    if (p[0] != '/' || strlen(p) > 1024)
        return false;
    for (const char *c = p; *c; c++) {
        if ((unsigned char)*c < 0x20 || *c == '\\' || *c == 0x7f)
            return false;
        if (*c == '/' && c[1] == '.')
            return false; /* "..", "./" and hidden files alike */
        if (*c == '/' && c[1] == '/')
            return false;
    }
    return true;
}

static bool has_extension(const char *p)
{
    const char *slash = strrchr(p, '/');
    return strchr(slash ? slash : p, '.') != NULL;
}

/* Open dir/rel as a regular file; returns fd or -1. */
static int open_file(const char *dir, const char *rel, struct stat *st)
{
    char full[4096];
    int n = snprintf(full, sizeof(full), "%s%s", dir, rel);
    if (n < 0 || (size_t)n >= sizeof(full))
        return -1;
    int fd = open(full, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode)) {
        close(fd);
        return -1;
    }
    return fd;
}

static int serve_fd(struct http_req *req, int fd, const struct stat *st, const char *path,
                    const char *cache)
{
    http_set_header(req, "Cache-Control", cache);
    return http_reply_fd(req, 200, content_type(path), fd, (uint64_t)st->st_size);
}

int api_static_serve(struct http_req *req)
{
    const struct config *cfg = http_config(req);
    const char *path = http_path(req);
    if (!safe_path(path))
        return LOCI_ENOTFOUND;
    const char *dir = cfg->web_dir;
    struct stat st;
    if (strcmp(path, "/") != 0 && dir[0]) {
        int fd = open_file(dir, path, &st);
        if (fd >= 0) {
            bool hashed = strncmp(path, "/assets/", 8) == 0;
            return serve_fd(req, fd, &st, path,
                            hashed ? "public, max-age=31536000, immutable" : "no-cache");
        }
        /* A missing file with an extension is a real 404, not an app route. */
        if (has_extension(path))
            return LOCI_ENOTFOUND;
    }
    /* Server paths never fall back to the app. */
    if (http_path_under(path, "/api") || http_path_under(path, "/health") ||
        http_path_under(path, "/metrics") || http_path_under(path, "/ws"))
        return LOCI_ENOTFOUND;
    int fd = dir[0] ? open_file(dir, "/index.html", &st) : -1;
    if (fd >= 0)
        return serve_fd(req, fd, &st, "/index.html", "no-cache");
    if (strcmp(path, "/") == 0) {
        http_set_header(req, "Cache-Control", "no-cache");
        return http_reply_bytes(req, 200, "text/html; charset=utf-8", builtin_page,
                                sizeof(builtin_page) - 1, false);
    }
    return LOCI_ENOTFOUND;
}
