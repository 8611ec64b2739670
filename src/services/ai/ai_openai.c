/*
 * ai_openai.c - the `openai` provider: any OpenAI-compatible endpoint
 * (/chat/completions, streamed by SSE or not, and /embeddings) over libcurl.
 *
 * Each request runs its own curl multi loop so the gateway can enforce a
 * first-byte deadline and a stall deadline (the longest silence inside a
 * stream) with 50 ms resolution, on top of curl's connect and total
 * timeouts. Connections are kept alive in a pool of (multi, easy) pairs,
 * one per concurrent caller, so a busy gateway does not reconnect per call.
 *
 * Not here: retries, breaker, fallback, caching (ai.c does those), and any
 * interpretation of the reply beyond the wire format.
 */
#include "core/alloc.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/json.h"
#include "services/ai/ai_int.h"

#include <curl/curl.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define MAX_BODY_BYTES  (8u << 20) /* a whole non-streamed reply */
#define MAX_ERROR_BYTES 8192u      /* kept of an error body */
#define MAX_LINE_BYTES  (1u << 20) /* one SSE line */
#define EMBED_BATCH     64

struct handle {
    CURLM *multi;
    CURL *easy;
    struct handle *next;
};

struct openai {
    struct ai_openai_opts o; /* strings owned below */
    char *base_url, *api_key, *chat_model, *embed_model, *json_mode;
    struct curl_slist *headers; /* extra headers from config, plus Authorization */
    pthread_mutex_t mu;         /* guards idle */
    struct handle *idle;
};

/* Per-request state shared with curl's callbacks. */
struct xfer {
    const struct ai_call *call; /* NULL for embeddings */
    bool is_stream;
    int status;
    char content_type[128];
    int64_t retry_after_ms;
    int64_t last_byte_ns; /* 0 until the first byte */
    struct buf body;      /* non-stream reply, or an error body */
    struct buf line;      /* SSE: the current line */
    bool is_sse;          /* decided at the first body byte */
    bool is_done;         /* SSE: [DONE] or finish_reason seen */
    bool has_streamed;
    struct ai_reply *reply;
    enum ai_reason abort_reason; /* set when a callback stops the transfer */
    char abort_msg[160];
};

static struct handle *handle_get(struct openai *oa)
{
    pthread_mutex_lock(&oa->mu);
    struct handle *h = oa->idle;
    if (h)
        oa->idle = h->next;
    pthread_mutex_unlock(&oa->mu);
    if (h)
        return h;
    h = xcalloc(1, sizeof(*h));
    h->multi = curl_multi_init();
    h->easy = curl_easy_init();
    if (!h->multi || !h->easy)
        BUG("curl handle allocation failed");
    return h;
}

static void handle_put(struct openai *oa, struct handle *h)
{
    pthread_mutex_lock(&oa->mu);
    h->next = oa->idle;
    oa->idle = h;
    pthread_mutex_unlock(&oa->mu);
}

static void handle_free(struct handle *h)
{
    curl_easy_cleanup(h->easy);
    curl_multi_cleanup(h->multi);
    xfree(h);
}

static void touch(struct xfer *x)
{
    x->last_byte_ns = clock_mono_ns();
}

/* Retry-After: delay-seconds or an HTTP-date. */
static int64_t parse_retry_after(const char *v, size_t n)
{
    char tmp[64];
    if (n == 0 || n >= sizeof(tmp))
        return -1;
    memcpy(tmp, v, n);
    tmp[n] = '\0';
    long long secs;
    if (parse_int64(tmp, 0, 86400 * 7, &secs) == 0)
        return secs * 1000;
    time_t t = curl_getdate(tmp, NULL);
    if (t < 0)
        return -1;
    int64_t ms = (int64_t)t * 1000 - clock_now_ms();
    return ms < 0 ? 0 : ms;
}

static size_t on_header(char *p, size_t size, size_t nitems, void *arg)
{
    struct xfer *x = arg;
    size_t n = size * nitems;
    touch(x);
    struct str s = {p, n};
    while (s.n && (s.p[s.n - 1] == '\n' || s.p[s.n - 1] == '\r'))
        s.n--;
    if (str_has_prefix(s, "HTTP/")) {
        /* A new response (after 100 Continue or a redirect): reset. */
        const char *sp = memchr(s.p, ' ', s.n);
        long long st = 0;
        if (sp && (size_t)(s.p + s.n - sp) >= 4)
            parse_int64_n(sp + 1, 3, 100, 599, &st);
        x->status = (int)st;
        x->content_type[0] = '\0';
        x->retry_after_ms = -1;
        return n;
    }
    const char *colon = memchr(s.p, ':', s.n);
    if (!colon)
        return n;
    struct str name = {s.p, (size_t)(colon - s.p)};
    struct str val = {colon + 1, (size_t)(s.p + s.n - colon - 1)};
    while (val.n && (*val.p == ' ' || *val.p == '\t')) {
        val.p++;
        val.n--;
    }
    if (str_case_eq_cstr(name, "content-type")) {
        size_t k = val.n < sizeof(x->content_type) - 1 ? val.n : sizeof(x->content_type) - 1;
        memcpy(x->content_type, val.p, k);
        x->content_type[k] = '\0';
    } else if (str_case_eq_cstr(name, "retry-after-ms")) {
        long long ms;
        if (parse_int64_n(val.p, val.n, 0, 86400LL * 7 * 1000, &ms) == 0)
            x->retry_after_ms = ms;
    } else if (str_case_eq_cstr(name, "retry-after") && x->retry_after_ms < 0) {
        x->retry_after_ms = parse_retry_after(val.p, val.n);
    }
    return n;
}

static bool ct_is(const char *ct, const char *want)
{
    size_t n = strlen(want);
    return strncasecmp(ct, want, n) == 0 && (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

static void emit(struct xfer *x, const char *p, size_t n)
{
    if (!n)
        return;
    if (x->call && x->call->on_token) {
        x->call->on_token(x->call->token_arg, p, n);
        x->has_streamed = true;
    }
}

static void read_usage(struct ai_reply *r, const json_t *usage)
{
    if (!json_is_object(usage))
        return;
    json_t *pt = json_object_get(usage, "prompt_tokens");
    json_t *ct = json_object_get(usage, "completion_tokens");
    if (json_is_integer(pt))
        r->prompt_tokens = json_integer_value(pt);
    if (json_is_integer(ct))
        r->completion_tokens = json_integer_value(ct);
}

/* One complete SSE line. Returns false to abort the transfer. */
static bool sse_line(struct xfer *x, const char *p, size_t n)
{
    if (n && p[n - 1] == '\r')
        n--;
    if (n == 0 || p[0] == ':' || x->is_done)
        return true; /* event separator, comment, or trailing data after [DONE] */
    struct str s = {p, n};
    if (!str_has_prefix(s, "data:"))
        return true; /* event:, id:, retry: carry nothing we use */
    s.p += 5;
    s.n -= 5;
    if (s.n && *s.p == ' ') {
        s.p++;
        s.n--;
    }
    if (str_eq_cstr(s, "[DONE]")) {
        x->is_done = true;
        return true;
    }
    json_t *chunk = json_loadb(s.p, s.n, 0, NULL);
    if (!json_is_object(chunk)) {
        json_decref(chunk);
        x->abort_reason = AI_R_BAD_RESPONSE;
        snprintf(x->abort_msg, sizeof(x->abort_msg), "malformed JSON in the event stream");
        return false;
    }
    json_t *err = json_object_get(chunk, "error");
    if (err) {
        json_t *m = json_object_get(err, "message");
        x->abort_reason = AI_R_SERVER_ERROR;
        snprintf(x->abort_msg, sizeof(x->abort_msg), "error in the event stream: %.100s",
                 json_is_string(m) ? json_string_value(m) : "unknown");
        json_decref(chunk);
        return false;
    }
    read_usage(x->reply, json_object_get(chunk, "usage"));
    json_t *choices = json_object_get(chunk, "choices");
    json_t *c0 = json_is_array(choices) ? json_array_get(choices, 0) : NULL;
    if (c0) {
        json_t *delta = json_object_get(c0, "delta");
        json_t *content = delta ? json_object_get(delta, "content") : NULL;
        if (json_is_string(content)) {
            const char *t = json_string_value(content);
            size_t tn = json_string_length(content);
            if (buf_append(&x->reply->text, t, tn)) {
                json_decref(chunk);
                x->abort_reason = AI_R_BAD_RESPONSE;
                snprintf(x->abort_msg, sizeof(x->abort_msg), "reply too long");
                return false;
            }
            emit(x, t, tn);
        }
    }
    json_decref(chunk);
    return true;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    struct xfer *x = arg;
    const char *p = data;
    size_t n = size * nmemb;
    touch(x);
    if (x->status < 200 || x->status > 299) {
        size_t room = MAX_ERROR_BYTES > x->body.len ? MAX_ERROR_BYTES - x->body.len : 0;
        buf_append(&x->body, p, n < room ? n : room);
        return n;
    }
    if (!x->is_sse && x->body.len == 0 && x->line.len == 0)
        x->is_sse = x->is_stream && ct_is(x->content_type, "text/event-stream");
    if (!x->is_sse) {
        if (buf_append(&x->body, p, n)) {
            x->abort_reason = AI_R_BAD_RESPONSE;
            snprintf(x->abort_msg, sizeof(x->abort_msg), "reply larger than %u bytes",
                     MAX_BODY_BYTES);
            return 0;
        }
        return n;
    }
    const char *end = p + n;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t k = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (buf_append(&x->line, p, k)) {
            x->abort_reason = AI_R_BAD_RESPONSE;
            snprintf(x->abort_msg, sizeof(x->abort_msg), "event stream line too long");
            return 0;
        }
        if (!nl)
            break;
        bool ok = sse_line(x, x->line.p ? x->line.p : "", x->line.len);
        buf_reset(&x->line);
        if (!ok)
            return 0;
        p = nl + 1;
    }
    return n;
}

static enum ai_reason reason_for_status(int status)
{
    if (status == 429)
        return AI_R_RATE_LIMITED;
    if (status >= 500)
        return AI_R_SERVER_ERROR;
    return AI_R_CLIENT_ERROR;
}

/* The "error.message" of an OpenAI error body, or the start of the body. */
static void error_text(struct xfer *x, char *out, size_t n)
{
    json_t *j = json_loadb(x->body.p ? x->body.p : "", x->body.len, 0, NULL);
    json_t *e = j ? json_object_get(j, "error") : NULL;
    json_t *m = json_is_object(e) ? json_object_get(e, "message") : e;
    if (json_is_string(m))
        snprintf(out, n, "%s", json_string_value(m));
    else
        snprintf(out, n, "%.*s", (int)(x->body.len > 120 ? 120 : x->body.len),
                 x->body.p ? x->body.p : "");
    json_decref(j);
    for (char *c = out; *c; c++)
        if ((unsigned char)*c < 0x20)
            *c = ' ';
}

/* POST body to base_url + path and run the transfer to its end under the
 * first-byte and stall deadlines. */
static int perform(struct openai *oa, const char *path, const char *body, size_t body_n,
                   struct xfer *x, struct ai_fail *f)
{
    char url[2200];
    snprintf(url, sizeof(url), "%s%s", oa->base_url, path);
    struct handle *h = handle_get(oa);
    CURL *e = h->easy;
    curl_easy_reset(e);
    struct curl_slist *hdrs = NULL;
    for (struct curl_slist *s = oa->headers; s; s = s->next)
        hdrs = curl_slist_append(hdrs, s->data);
    hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    hdrs = curl_slist_append(hdrs, x->is_stream ? "Accept: text/event-stream"
                                                : "Accept: application/json");
    hdrs = curl_slist_append(hdrs, "Expect:");
    if (!hdrs)
        BUG("curl_slist_append failed");
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_n);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)oa->o.connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)oa->o.timeout_ms);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(e, CURLOPT_USERAGENT, "loci");
    curl_multi_add_handle(h->multi, e);

    int64_t start = clock_mono_ns();
    int64_t fb_ns = (int64_t)oa->o.first_byte_timeout_ms * 1000000;
    int running = 1;
    bool is_timeout = false;
    while (running) {
        if (curl_multi_perform(h->multi, &running) != CURLM_OK)
            break;
        if (!running)
            break;
        int64_t now = clock_mono_ns();
        int64_t since = x->last_byte_ns ? x->last_byte_ns : start;
        if (now - since >= fb_ns) {
            is_timeout = true;
            break;
        }
        int64_t left_ms = (since + fb_ns - now) / 1000000 + 1;
        curl_multi_poll(h->multi, NULL, 0, (int)(left_ms < 50 ? left_ms : 50), NULL);
    }
    CURLcode cc = CURLE_OK;
    int msgs;
    CURLMsg *m;
    while ((m = curl_multi_info_read(h->multi, &msgs)))
        if (m->msg == CURLMSG_DONE)
            cc = m->data.result;
    curl_multi_remove_handle(h->multi, e);
    curl_slist_free_all(hdrs);
    int rc = LOCI_OK;
    if (is_timeout) {
        f->reason = AI_R_TIMEOUT;
        snprintf(f->msg, sizeof(f->msg), "%s after %d ms",
                 x->last_byte_ns ? "stream stalled: no data" : "no first byte",
                 oa->o.first_byte_timeout_ms);
        /* The connection is mid-reply: never reuse it. */
        handle_free(h);
        h = NULL;
        rc = LOCI_EIO;
    } else if (x->abort_reason != AI_R_NONE) {
        f->reason = x->abort_reason;
        snprintf(f->msg, sizeof(f->msg), "%s", x->abort_msg);
        rc = LOCI_EIO;
    } else if (cc != CURLE_OK) {
        f->reason = cc == CURLE_OPERATION_TIMEDOUT ? AI_R_TIMEOUT : AI_R_CONNECT;
        snprintf(f->msg, sizeof(f->msg), "%s", curl_easy_strerror(cc));
        rc = LOCI_EIO;
    } else if (x->status < 200 || x->status > 299) {
        f->reason = reason_for_status(x->status);
        f->status = x->status;
        f->retry_after_ms = x->retry_after_ms;
        char et[200];
        error_text(x, et, sizeof(et));
        snprintf(f->msg, sizeof(f->msg), "HTTP %d: %s", x->status, et);
        rc = LOCI_EIO;
    }
    if (h)
        handle_put(oa, h);
    f->has_streamed = x->has_streamed;
    return rc;
}

static void xfer_init(struct xfer *x, const struct ai_call *call, bool is_stream,
                      struct ai_reply *reply)
{
    memset(x, 0, sizeof(*x));
    x->call = call;
    x->is_stream = is_stream;
    x->retry_after_ms = -1;
    x->reply = reply;
    buf_init(&x->body, MAX_BODY_BYTES);
    buf_init(&x->line, MAX_LINE_BYTES);
}

static void xfer_release(struct xfer *x)
{
    buf_release(&x->body);
    buf_release(&x->line);
}

static json_t *chat_body(struct openai *oa, const struct ai_call *call)
{
    json_t *msgs = json_array();
    for (size_t i = 0; i < call->n_msgs; i++)
        json_array_append_new(msgs, json_pack("{s:s, s:s}", "role", call->msgs[i].role, "content",
                                              call->msgs[i].content));
    json_t *b = json_pack("{s:s, s:o, s:i, s:f}", "model", oa->chat_model, "messages", msgs,
                          "max_tokens", call->max_tokens, "temperature", call->temperature);
    if (!b)
        BUG("json_pack failed");
    if (call->on_token) {
        json_object_set_new(b, "stream", json_true());
        json_object_set_new(b, "stream_options", json_pack("{s:b}", "include_usage", 1));
    }
    if (call->schema && strcmp(oa->json_mode, "json_object") == 0) {
        json_object_set_new(b, "response_format", json_pack("{s:s}", "type", "json_object"));
    } else if (call->schema && strcmp(oa->json_mode, "json_schema") == 0) {
        json_t *schema = json_loads(call->schema, 0, NULL);
        if (!schema)
            BUG("an embedded JSON schema does not parse");
        json_object_set_new(b, "response_format",
                            json_pack("{s:s, s:{s:s, s:b, s:o}}", "type", "json_schema",
                                      "json_schema", "name", call->schema_name, "strict", 1,
                                      "schema", schema));
    }
    return b;
}

/* A non-streamed completion: choices[0].message.content and usage. */
static int parse_completion(struct xfer *x, struct ai_reply *out, struct ai_fail *f)
{
    json_t *j = json_loadb(x->body.p ? x->body.p : "", x->body.len, 0, NULL);
    json_t *choices = j ? json_object_get(j, "choices") : NULL;
    json_t *c0 = json_is_array(choices) ? json_array_get(choices, 0) : NULL;
    json_t *msg = c0 ? json_object_get(c0, "message") : NULL;
    json_t *content = msg ? json_object_get(msg, "content") : NULL;
    if (!json_is_string(content)) {
        json_decref(j);
        f->reason = AI_R_BAD_RESPONSE;
        snprintf(f->msg, sizeof(f->msg), "%s",
                 j ? "no choices[0].message.content in the reply" : "malformed JSON reply");
        return LOCI_EIO;
    }
    read_usage(out, json_object_get(j, "usage"));
    int rc = buf_append(&out->text, json_string_value(content), json_string_length(content));
    json_decref(j);
    if (rc) {
        f->reason = AI_R_BAD_RESPONSE;
        snprintf(f->msg, sizeof(f->msg), "reply too long");
        return LOCI_EIO;
    }
    return LOCI_OK;
}

static int oa_chat(struct ai_provider *p, const struct ai_call *call, struct ai_reply *out,
                   struct ai_fail *f)
{
    struct openai *oa = p->impl;
    json_t *b = chat_body(oa, call);
    char *body = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    if (!body)
        BUG("json_dumps failed");
    struct xfer x;
    xfer_init(&x, call, call->on_token != NULL, out);
    int rc = perform(oa, "/chat/completions", body, strlen(body), &x, f);
    xfree(body);
    if (rc)
        goto out;
    bool is_json = ct_is(x.content_type, "application/json");
    if (x.is_sse) {
        /* Servers end a stream with [DONE]; some only with finish_reason and
         * a clean close. A close with neither is a lost connection. */
        if (!x.is_done && x.line.len == 0 && out->text.len == 0) {
            f->reason = AI_R_CONNECT;
            snprintf(f->msg, sizeof(f->msg), "event stream ended before any data");
            rc = LOCI_EIO;
        } else if (!x.is_done) {
            f->reason = AI_R_CONNECT;
            snprintf(f->msg, sizeof(f->msg), "event stream ended without [DONE]");
            rc = LOCI_EIO;
        }
    } else if (!is_json) {
        f->reason = AI_R_BAD_RESPONSE;
        snprintf(f->msg, sizeof(f->msg), "unexpected content type '%s'",
                 x.content_type[0] ? x.content_type : "none");
        rc = LOCI_EIO;
    } else {
        rc = parse_completion(&x, out, f);
        /* A server that ignores stream:true still answered: pass the text on. */
        if (!rc && call->on_token)
            emit(&x, out->text.p ? out->text.p : "", out->text.len);
    }
    f->has_streamed = x.has_streamed;
out:
    xfer_release(&x);
    return rc;
}

static int parse_embeddings(struct xfer *x, size_t n, size_t off, struct ai_vectors *out,
                            struct ai_fail *f)
{
    json_t *j = json_loadb(x->body.p ? x->body.p : "", x->body.len, 0, NULL);
    json_t *data = j ? json_object_get(j, "data") : NULL;
    int rc = LOCI_OK;
    if (!json_is_array(data) || json_array_size(data) != n) {
        snprintf(f->msg, sizeof(f->msg), "%s",
                 j ? "embeddings reply has the wrong count" : "malformed JSON reply");
        rc = LOCI_EIO;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *item = json_array_get(data, i);
        json_t *idx = json_object_get(item, "index");
        json_t *vec = json_object_get(item, "embedding");
        size_t at = json_is_integer(idx) ? (size_t)json_integer_value(idx) : i;
        if (!json_is_array(vec) || json_array_size(vec) == 0 || at >= n ||
            json_array_size(vec) > 65536) {
            snprintf(f->msg, sizeof(f->msg), "embeddings reply: bad item %zu", i);
            rc = LOCI_EIO;
            goto out;
        }
        int dims = (int)json_array_size(vec);
        if (!out->v) {
            out->dims = dims;
            out->v = xcalloc(out->n * (size_t)dims, sizeof(float));
        } else if (dims != out->dims) {
            snprintf(f->msg, sizeof(f->msg), "embeddings reply: mixed dimensions");
            rc = LOCI_EIO;
            goto out;
        }
        float *row = out->v + (off + at) * (size_t)dims;
        double norm = 0;
        for (int d = 0; d < dims; d++) {
            json_t *v = json_array_get(vec, (size_t)d);
            if (!json_is_number(v)) {
                snprintf(f->msg, sizeof(f->msg), "embeddings reply: non-number");
                rc = LOCI_EIO;
                goto out;
            }
            row[d] = (float)json_number_value(v);
            norm += (double)row[d] * row[d];
        }
        norm = sqrt(norm);
        if (norm > 0)
            for (int d = 0; d < dims; d++)
                row[d] = (float)(row[d] / norm);
    }
out:
    if (rc)
        f->reason = AI_R_BAD_RESPONSE;
    json_decref(j);
    return rc;
}

static int oa_embed(struct ai_provider *p, const char *const *texts, const size_t *lens, size_t n,
                    struct ai_vectors *out, struct ai_fail *f)
{
    struct openai *oa = p->impl;
    out->n = n;
    int rc = LOCI_OK;
    for (size_t off = 0; off < n && !rc; off += EMBED_BATCH) {
        size_t k = n - off < EMBED_BATCH ? n - off : EMBED_BATCH;
        json_t *input = json_array();
        for (size_t i = 0; i < k; i++)
            json_array_append_new(input, json_stringn(texts[off + i], lens[off + i]));
        json_t *b = json_pack("{s:s, s:o, s:s}", "model", oa->embed_model, "input", input,
                              "encoding_format", "float");
        char *body = b ? json_dumps(b, JSON_COMPACT) : NULL;
        json_decref(b);
        if (!body) {
            /* json_stringn refuses invalid UTF-8 */
            f->reason = AI_R_CLIENT_ERROR;
            snprintf(f->msg, sizeof(f->msg), "text is not valid UTF-8");
            return LOCI_EINVAL;
        }
        struct xfer x;
        struct ai_reply unused = {0};
        xfer_init(&x, NULL, false, &unused);
        rc = perform(oa, "/embeddings", body, strlen(body), &x, f);
        xfree(body);
        if (!rc && !ct_is(x.content_type, "application/json")) {
            f->reason = AI_R_BAD_RESPONSE;
            snprintf(f->msg, sizeof(f->msg), "unexpected content type '%s'", x.content_type);
            rc = LOCI_EIO;
        }
        if (!rc)
            rc = parse_embeddings(&x, k, off, out, f);
        xfer_release(&x);
    }
    if (!rc)
        snprintf(out->embedder, sizeof(out->embedder), "openai:%s:%d", oa->embed_model, out->dims);
    return rc;
}

static void oa_destroy(struct ai_provider *p)
{
    struct openai *oa = p->impl;
    while (oa->idle) {
        struct handle *h = oa->idle;
        oa->idle = h->next;
        handle_free(h);
    }
    curl_slist_free_all(oa->headers);
    pthread_mutex_destroy(&oa->mu);
    xfree(oa->base_url);
    xfree(oa->api_key);
    xfree(oa->chat_model);
    xfree(oa->embed_model);
    xfree(oa->json_mode);
    xfree(oa);
}

/* "Name: value; Name2: value" into a header list. */
static int parse_headers(const char *spec, struct curl_slist **list, char *err, size_t err_n)
{
    const char *p = spec;
    while (*p) {
        const char *end = strchr(p, ';');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        while (n && (*p == ' ' || *p == '\t')) {
            p++;
            n--;
        }
        while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
            n--;
        if (n) {
            const char *colon = memchr(p, ':', n);
            bool ok = colon && colon > p;
            for (const char *c = p; ok && c < colon; c++)
                ok = (*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') ||
                     (*c >= '0' && *c <= '9') || *c == '-' || *c == '_';
            if (!ok) {
                snprintf(err, err_n,
                         "invalid value for ai_headers (LOCI_AI_HEADERS): expected 'Name: "
                         "value; Name2: value'");
                return LOCI_EINVAL;
            }
            char line[1024];
            snprintf(line, sizeof(line), "%.*s", (int)n, p);
            *list = curl_slist_append(*list, line);
            if (!*list)
                BUG("curl_slist_append failed");
        }
        p += n;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == ';')
            p++;
    }
    return LOCI_OK;
}

int ai__openai_new(const struct ai_openai_opts *o, struct ai_provider **out, char *err,
                   size_t err_n)
{
    struct openai *oa = xcalloc(1, sizeof(*oa));
    oa->o = *o;
    oa->base_url = xstrdup(o->base_url);
    oa->api_key = xstrdup(o->api_key);
    oa->chat_model = xstrdup(o->chat_model);
    oa->embed_model = xstrdup(o->embed_model);
    oa->json_mode = xstrdup(o->json_mode);
    pthread_mutex_init(&oa->mu, NULL);
    struct ai_provider *p = xcalloc(1, sizeof(*p));
    snprintf(p->name, sizeof(p->name), "openai");
    snprintf(p->model, sizeof(p->model), "%s", o->chat_model);
    p->chat = oa_chat;
    p->embed = o->embed_model[0] ? oa_embed : NULL;
    p->destroy = oa_destroy;
    p->impl = oa;
    int rc = parse_headers(o->headers, &oa->headers, err, err_n);
    if (!rc && o->api_key[0]) {
        size_t n = strlen(o->api_key) + 32;
        char *auth = xmalloc(n);
        snprintf(auth, n, "Authorization: Bearer %s", o->api_key);
        oa->headers = curl_slist_append(oa->headers, auth);
        xfree(auth);
        if (!oa->headers)
            BUG("curl_slist_append failed");
    }
    if (rc) {
        oa_destroy(p);
        xfree(p);
        return rc;
    }
    *out = p;
    return LOCI_OK;
}
