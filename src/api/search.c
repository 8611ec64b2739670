/*
 * search.c - GET /api/v1/search: the signed-in user's passages by full
 * text, vectors or both (hybrid, the default), best first, with the
 * document, page or heading and a snippet whose matched words are in
 * <mark> (the rest HTML-escaped, ready to show).
 *
 * The route runs on the offload pool: a vector scan is CPU work, and the
 * query is embedded through the gateway.
 */
#include "api/app.h"
#include "api/routes_int.h"
#include "core/err.h"
#include "search/search.h"

#include <string.h>

#define DEF_LIMIT 10
#define MAX_LIMIT 50

static json_t *hit_json(const struct search_hit *h)
{
    return json_pack("{s:s, s:s, s:s, s:o, s:o, s:s, s:f, s:i}", "chunk_id", h->chunk_id,
                     "document_id", h->document_id, "filename", h->filename ? h->filename : "",
                     "page", h->page > 0 ? json_integer(h->page) : json_null(), "heading",
                     h->heading ? json_string(h->heading) : json_null(), "snippet",
                     h->snippet ? h->snippet : "", "score", h->score, "ord", h->ord);
}

int api_search(struct http_req *req)
{
    struct app *app = http_app(req);
    const struct auth_principal *who = api_principal(req);
    const char *q = http_query(req, "q");
    if (!q || !q[0])
        return http_reply_error(req, LOCI_EUNPROCESSABLE, "q",
                                "'q' is required: 1 to 500 characters");
    enum search_mode mode = SEARCH_HYBRID;
    const char *m = http_query(req, "mode");
    if (m && strcmp(m, "fts") == 0)
        mode = SEARCH_FTS;
    else if (m && strcmp(m, "vector") == 0)
        mode = SEARCH_VECTOR;
    else if (m && strcmp(m, "hybrid") != 0)
        return http_reply_error(req, LOCI_EUNPROCESSABLE, "mode",
                                "'mode' must be fts, vector or hybrid");
    int limit = DEF_LIMIT;
    int rc = api_query_limit(req, DEF_LIMIT, MAX_LIMIT, &limit);
    if (rc || http_has_reply(req))
        return rc;
    const char *doc = http_query(req, "document_id");
    if (doc && !doc[0])
        doc = NULL;
    if (!app->search)
        return LOCI_EUNAVAILABLE;
    struct search_results r = {0};
    rc = search_run(app->search, who->user_id, q, mode, doc, limit, &r);
    if (rc == LOCI_EUNPROCESSABLE)
        return http_reply_error(req, rc, "q",
                                "'q' must be 1 to 500 characters of UTF-8 text, not all blank");
    if (rc == LOCI_ENOTFOUND)
        return http_reply_error(req, rc, "document_id", "no such document");
    if (rc)
        return rc;
    json_t *hits = json_array();
    for (size_t i = 0; i < r.n; i++)
        json_array_append_new(hits, hit_json(&r.hits[i]));
    search_results_release(&r);
    return http_reply_json(req, 200, json_pack("{s:o}", "results", hits));
}
