/*
 * sync.c - GET /api/v1/sync: the signed-in user's change log over plain
 * HTTP, for clients that were offline: the events after an offset, oldest
 * first, the same ones (and the same offsets) the WebSocket pushes.
 */
#include "api/app.h"
#include "api/routes_int.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"
#include "events/events.h"

#include <string.h>

#define DEF_LIMIT  100
#define MAX_LIMIT  500
#define MAX_OFFSET (1LL << 53)

struct page {
    struct buf out;
    int n;
    int limit;
    int64_t last;
};

static int add_event(const struct event_view *ev, void *arg)
{
    struct page *p = arg;
    if (p->n == p->limit) {
        p->n++; /* one more than asked: there is more */
        return 0;
    }
    if (p->n++ > 0)
        buf_append_char(&p->out, ',');
    buf_append_str(&p->out, "{\"type\":\"");
    buf_append_json_escaped(&p->out, ev->type, strlen(ev->type));
    buf_printf(&p->out, "\",\"offset\":%lld,\"data\":", (long long)ev->offset);
    if (ev->data_len)
        buf_append(&p->out, ev->data, ev->data_len); /* stored as a JSON object */
    else
        buf_append_str(&p->out, "{}");
    buf_printf(&p->out, ",\"created_at\":%lld}", (long long)ev->created_at);
    p->last = ev->offset;
    return 0;
}

int api_sync(struct http_req *req)
{
    struct app *app = http_app(req);
    const struct auth_principal *who = api_principal(req);
    long long offset = 0, limit = DEF_LIMIT;
    const char *o = http_query(req, "offset");
    if (o && parse_int64(o, 0, MAX_OFFSET, &offset) != LOCI_OK)
        return http_reply_error(req, LOCI_EUNPROCESSABLE, "offset",
                                "'offset' must be an event offset: an integer >= 0");
    const char *l = http_query(req, "limit");
    if (l && parse_int64(l, 1, MAX_LIMIT, &limit) != LOCI_OK)
        return http_reply_error(req, LOCI_EUNPROCESSABLE, "limit", "'limit' must be 1 to %d",
                                MAX_LIMIT);
    struct page p = {.limit = (int)limit, .last = offset};
    buf_init(&p.out, (size_t)1 << 30);
    buf_append_str(&p.out, "{\"events\":[");
    struct db_conn *c = NULL;
    int rc = db_acquire(app->db, &c);
    if (rc == LOCI_OK) {
        int64_t seen = 0;
        rc = events_read(c, who->user_id, offset, (int)limit + 1, add_event, &p, &seen);
        db_release(c);
    }
    if (rc) {
        buf_release(&p.out);
        return rc;
    }
    buf_printf(&p.out, "],\"next_offset\":%lld,\"has_more\":%s}\n", (long long)p.last,
               p.n > p.limit ? "true" : "false");
    size_t n = 0;
    char *body = buf_detach(&p.out, &n);
    rc = http_reply_bytes(req, 200, "application/json", body, n, true);
    xfree(body);
    return rc;
}
