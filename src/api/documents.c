/*
 * documents.c - learners' documents over HTTP: the upload (multipart,
 * streamed straight into the blob store by MHD's post processor, never
 * held whole in memory), the ledger, the file itself, delete, reprocess,
 * cancel.
 *
 * The upload route is HTTP_R_STREAM_BODY: its size and type are checked
 * from the headers before a byte of body is read (413 at once for an
 * announced oversize body, 415 for anything but multipart/form-data), the
 * file part is written to the blob store as it arrives, and the handler
 * (on the offload pool: it fsyncs) decides the type by content and creates
 * the document. Ids that are malformed or someone else's are 404. The rules
 * live in src/docs; this file parses, calls, replies.
 */
#include "api/app.h"
#include "api/routes_int.h"
#include "core/alloc.h"
#include "core/err.h"
#include "docs/docs.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#define FORM_SLACK (64 * 1024) /* multipart framing and small fields around the file */
#define STATUS_MAX 16
#define CURSOR_MAX 64
#define MEDIA_MAX  64

static const char *caller(struct http_req *req)
{
    return api_principal(req)->user_id;
}

/* The :id of the path, or NULL when it cannot be a document id (a 404). */
static const char *doc_param(struct http_req *req)
{
    const char *id = http_param(req, "id");
    return id && ids_is_uuid(id, strlen(id)) ? id : NULL;
}

static struct docs *service(struct http_req *req)
{
    return ((struct app *)http_app(req))->docs;
}

/* The one error shape, with the documents module's code and message. */
static int refuse(struct http_req *req, int rc, const struct docs_error *why, const char *field)
{
    if (!why->code)
        return http_reply_error(req, rc, field, NULL);
    json_t *err = json_pack("{s:s, s:s, s:s}", "code", why->code, "message", why->message,
                            "request_id", http_request_id(req));
    if (field)
        json_object_set_new(err, "field", json_string(field));
    if (why->existing_id[0])
        json_object_set_new(err, "existing_id", json_string(why->existing_id));
    return http_reply_json(req, loci_err_http_status(rc), json_pack("{s:o}", "error", err));
}

/* ---- the upload ---- */

struct upload {
    struct docs_upload *u;
    struct http_form *form;
    struct docs_error why;
    int rc;
    bool has_file;       /* a file part began */
    uint64_t part_bytes; /* of the current file part */
    size_t other_bytes;  /* of fields other than `file` */
};

static void upload_release(void *p)
{
    struct upload *up = p;
    http_form_finish(up->form);
    docs_upload_free(up->u);
    xfree(up);
}

static int on_field(void *arg, const char *field, const char *filename, const char *content_type,
                    const char *data, uint64_t off, size_t n)
{
    struct upload *up = arg;
    if (!field || strcmp(field, "file") != 0) {
        up->other_bytes += n;
        if (up->other_bytes <= FORM_SLACK)
            return LOCI_OK; /* other fields are ignored */
        up->why.code = "payload_too_large";
        snprintf(up->why.message, sizeof(up->why.message),
                 "fields other than 'file' may hold at most %d bytes", FORM_SLACK);
        return up->rc = LOCI_ETOOBIG;
    }
    if (off == 0 && (!up->has_file || up->part_bytes > 0)) {
        /* a file part begins (MHD may announce one at offset 0 more than once) */
        if (up->has_file) {
            up->why.code = "too_many_files";
            snprintf(up->why.message, sizeof(up->why.message), "send one file per request");
            return up->rc = LOCI_EUNPROCESSABLE;
        }
        int rc = docs_upload_file(up->u, filename, content_type);
        if (rc)
            return up->rc = rc;
        up->has_file = true;
    }
    if (n == 0)
        return LOCI_OK;
    up->part_bytes += n;
    int rc = docs_upload_write(up->u, data, n, &up->why);
    return rc ? (up->rc = rc) : LOCI_OK;
}

static bool is_multipart(const char *ct)
{
    if (!ct)
        return false;
    while (*ct == ' ')
        ct++;
    return strncasecmp(ct, "multipart/form-data", 19) == 0;
}

int api_documents_upload_body(struct http_req *req, const char *p, size_t n)
{
    struct upload *up = http_body_state(req);
    if (p) {
        int rc = http_form_feed(up->form, p, n);
        if (rc == LOCI_OK)
            return LOCI_OK;
        if (up->rc)
            return refuse(req, up->rc, &up->why, "file");
        return http_reply_error(req, LOCI_EINVAL, "file", "the multipart body is malformed");
    }
    struct docs *d = service(req);
    if (!d)
        return http_reply_error(req, LOCI_EUNAVAILABLE, NULL, "documents are not available");
    if (!is_multipart(http_header(req, "Content-Type")))
        return http_reply_error(req, LOCI_EMEDIATYPE, NULL,
                                "send multipart/form-data with the file in a field named 'file'");
    const struct config *cfg = http_config(req);
    const char *cl = http_header(req, "Content-Length");
    long long len = 0;
    if (cl && parse_int64(cl, 0, (long long)1 << 62, &len) == LOCI_OK &&
        len > cfg->docs_max_bytes + FORM_SLACK) {
        struct docs_error why = {.code = "payload_too_large"};
        snprintf(why.message, sizeof(why.message), "the file is larger than %lld bytes",
                 cfg->docs_max_bytes);
        http_set_header(req, "Connection", "close");
        return refuse(req, LOCI_ETOOBIG, &why, "file");
    }
    up = xcalloc(1, sizeof(*up));
    http_set_body_state(req, up, upload_release);
    int rc = docs_upload_new(d, caller(req), &up->u);
    if (rc)
        return rc;
    up->form = http_form_new(req, on_field, up);
    if (!up->form)
        return http_reply_error(req, LOCI_EMEDIATYPE, NULL,
                                "the multipart/form-data body has no boundary");
    return LOCI_OK;
}

int api_documents_upload(struct http_req *req)
{
    struct upload *up = http_body_state(req);
    int rc = http_form_finish(up->form);
    up->form = NULL;
    if (rc)
        return http_reply_error(req, LOCI_EINVAL, "file", "the multipart body ended early");
    json_t *doc = NULL;
    struct docs_error why;
    rc = docs_upload_finish(up->u, &doc, &why);
    if (rc)
        return refuse(req, rc, &why,
                      why.code && strcmp(why.code, "duplicate") == 0 ? NULL : "file");
    char loc[96];
    snprintf(loc, sizeof(loc), "/api/v1/documents/%s",
             json_string_value(json_object_get(doc, "id")));
    http_set_header(req, "Location", loc);
    return http_reply_json(req, 202, doc);
}

/* ---- the ledger ---- */

int api_documents_list(struct http_req *req)
{
    int limit = 20;
    int rc = api_query_limit(req, 20, 100, &limit);
    if (rc || http_has_reply(req))
        return rc;
    const char *status = http_query(req, "status");
    const char *cursor = http_query(req, "cursor");
    if (status && (strlen(status) > STATUS_MAX || !status[0]))
        return http_reply_error(req, LOCI_EUNPROCESSABLE, "status",
                                "'status' must be queued, parsing, indexing, done, failed or "
                                "cancelled");
    if (cursor && (strlen(cursor) > CURSOR_MAX || !cursor[0]))
        return http_reply_error(req, LOCI_EUNPROCESSABLE, "cursor",
                                "'cursor' must be a next_cursor given before");
    struct db_conn *c = NULL;
    rc = db_acquire(((struct app *)http_app(req))->db, &c);
    if (rc)
        return rc;
    json_t *out = NULL;
    rc = docs_list(c, caller(req), status, cursor, limit, &out);
    db_release(c);
    if (rc == LOCI_EINVAL)
        return http_reply_error(req, LOCI_EUNPROCESSABLE, "status",
                                "'status' must be queued, parsing, indexing, done, failed or "
                                "cancelled");
    if (rc == LOCI_EUNPROCESSABLE)
        return http_reply_error(req, LOCI_EUNPROCESSABLE, "cursor",
                                "'cursor' must be a next_cursor given before");
    if (rc)
        return rc;
    return http_reply_json(req, 200, out);
}

int api_document_get(struct http_req *req)
{
    const char *id = doc_param(req);
    if (!id)
        return LOCI_ENOTFOUND;
    struct db_conn *c = NULL;
    int rc = db_acquire(((struct app *)http_app(req))->db, &c);
    if (rc)
        return rc;
    json_t *out = NULL;
    rc = docs_get(c, caller(req), id, &out);
    db_release(c);
    return rc ? rc : http_reply_json(req, 200, out);
}

/* Content-Disposition for a stored (already sanitised) name: an ASCII
 * fallback and the UTF-8 name percent-encoded (RFC 6266, RFC 8187). */
static void disposition(const char *name, char *out, size_t n)
{
    struct buf ascii, utf8;
    buf_init(&ascii, 4 * DOCS_FILENAME_MAX);
    buf_init(&utf8, 4 * DOCS_FILENAME_MAX);
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        bool is_plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                        (*p >= '0' && *p <= '9') || *p == '.' || *p == '-' || *p == '_';
        buf_append_char(&ascii, *p >= 0x20 && *p < 0x7f && *p != '"' && *p != '\\' && *p != '%'
                                    ? (char)*p
                                    : '_');
        if (is_plain)
            buf_append_char(&utf8, (char)*p);
        else
            buf_printf(&utf8, "%%%02X", *p);
    }
    snprintf(out, n, "attachment; filename=\"%s\"; filename*=UTF-8''%s", buf_cstr(&ascii),
             buf_cstr(&utf8));
    buf_release(&ascii);
    buf_release(&utf8);
}

int api_document_file(struct http_req *req)
{
    const char *id = doc_param(req);
    if (!id)
        return LOCI_ENOTFOUND;
    struct docs *d = service(req);
    if (!d)
        return LOCI_EUNAVAILABLE;
    int fd = -1;
    uint64_t size = 0;
    char media[MEDIA_MAX], name[DOCS_FILENAME_MAX + 1];
    int rc = docs_open_file(d, caller(req), id, &fd, &size, media, name);
    if (rc)
        return rc;
    char cd[4 * DOCS_FILENAME_MAX + 128];
    disposition(name, cd, sizeof(cd));
    http_set_header(req, "Content-Disposition", cd);
    http_set_header(req, "Cache-Control", "private, no-store");
    char ctype[MEDIA_MAX + 24];
    snprintf(ctype, sizeof(ctype), "%s%s", media,
             strncmp(media, "text/", 5) == 0 ? "; charset=utf-8" : "");
    return http_reply_fd(req, 200, ctype, fd, size); /* X-Content-Type-Options: nosniff on all */
}

int api_document_delete(struct http_req *req)
{
    const char *id = doc_param(req);
    if (!id)
        return LOCI_ENOTFOUND;
    struct docs *d = service(req);
    if (!d)
        return LOCI_EUNAVAILABLE;
    int rc = docs_delete(d, caller(req), id);
    return rc ? rc : http_reply_bytes(req, 204, NULL, "", 0, false);
}

int api_document_reprocess(struct http_req *req)
{
    const char *id = doc_param(req);
    if (!id)
        return LOCI_ENOTFOUND;
    struct docs *d = service(req);
    if (!d)
        return LOCI_EUNAVAILABLE;
    json_t *out = NULL;
    struct docs_error why;
    int rc = docs_reprocess(d, caller(req), id, &out, &why);
    if (rc)
        return rc == LOCI_ECONFLICT ? refuse(req, rc, &why, NULL) : rc;
    return http_reply_json(req, 202, out);
}

int api_document_cancel(struct http_req *req)
{
    const char *id = doc_param(req);
    if (!id)
        return LOCI_ENOTFOUND;
    struct docs *d = service(req);
    if (!d)
        return LOCI_EUNAVAILABLE;
    json_t *out = NULL;
    struct docs_error why;
    int rc = docs_cancel(d, caller(req), id, &out, &why);
    if (rc)
        return rc == LOCI_ECONFLICT ? refuse(req, rc, &why, NULL) : rc;
    return http_reply_json(req, 202, out);
}
