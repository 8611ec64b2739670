/*
 * learn_jobs.c - the learning's scheduled work: familiarity decay (daily) and
 * the review digest mail (hourly). Both walk their rows in keyset batches,
 * each batch in its own short transaction, and are safe to run twice: the
 * decay only writes values that differ, the digest claims a user's
 * last_digest_at before mailing.
 */
#include "learn/learn.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "events/events.h"
#include "graph/graph.h"
#include "services/jobs/jobs.h"
#include "services/mail/mail.h"
#include "store/db.h"

#define DAY_MS       86400000LL
#define DECAY_BATCH  500
#define DIGEST_BATCH 200
#define KEY_MAX      64 /* ids are UUIDs (36 characters) */

/* ---- decay ---- */

/* A user's running totals across batches. */
struct decay_user {
    char id[KEY_MAX];
    int64_t cards;
    int64_t changed;
};

struct decay_batch {
    int64_t now;
    int batch;
    /* in: where the last committed batch stopped */
    char after_user[KEY_MAX];
    char after_node[KEY_MAX];
    struct decay_user carry;
    /* out (valid once the transaction committed) */
    char last_user[KEY_MAX];
    char last_node[KEY_MAX];
    struct decay_user next_carry;
    int rows;
    int64_t changed;
};

static int decay_summary(struct db_conn *c, const struct decay_user *u)
{
    if (!u->id[0] || u->changed == 0)
        return LOCI_OK;
    json_t *data =
        json_pack("{s:I, s:I}", "cards", (json_int_t)u->cards, "changed", (json_int_t)u->changed);
    int rc = events_append(c, u->id, "familiarity.decayed", data, NULL);
    json_decref(data);
    return rc;
}

static int decay_update(struct db_conn *c, const char *user_id, const char *node_id, double r)
{
    struct db_stmt *st = NULL;
    int rc = db_prepare(c, "UPDATE nodes SET familiarity = ? WHERE id = ? AND user_id = ?", &st);
    if (rc)
        return rc;
    db_bind_double(st, 1, r);
    db_bind_text(st, 2, node_id, (size_t)-1);
    db_bind_text(st, 3, user_id, (size_t)-1);
    return db_run(st, NULL);
}

/* One batch: rows after (after_user, after_node). Safe to rerun (db_tx
 * retries): everything it carries out is rebuilt from the inputs. */
static int tx_decay_batch(struct db_conn *c, void *arg)
{
    struct decay_batch *b = arg;
    struct fsrs_params p;
    fsrs_params_init(&p, FSRS_DEFAULT_RETENTION); /* R(t, S) does not depend on retention */
    b->next_carry = b->carry;
    b->rows = 0;
    b->changed = 0;
    snprintf(b->last_user, sizeof b->last_user, "%s", b->after_user);
    snprintf(b->last_node, sizeof b->last_node, "%s", b->after_node);

    struct db_stmt *st = NULL;
    struct graph_delta delta;
    graph_delta_init(&delta);
    int rc = db_prepare(c,
                        "SELECT c.user_id, c.node_id, c.state, c.stability, c.last_review, "
                        "n.familiarity FROM cards c JOIN nodes n ON n.id = c.node_id "
                        "WHERE (c.user_id, c.node_id) > (?, ?) "
                        "ORDER BY c.user_id, c.node_id LIMIT ?",
                        &st);
    if (rc)
        goto out;
    db_bind_text(st, 1, b->after_user, (size_t)-1);
    db_bind_text(st, 2, b->after_node, (size_t)-1);
    db_bind_int64(st, 3, b->batch);
    /* Collect first: the updates must not run while the select is open on
     * the same PostgreSQL connection's portal. */
    struct row {
        char user[KEY_MAX];
        char node[KEY_MAX];
        double r;
        bool is_changed;
    } *rows = xcalloc((size_t)b->batch, sizeof *rows);
    int n = 0;
    while (n < b->batch && (rc = db_step(st)) == LOCI_ROW) {
        struct fsrs_card k;
        fsrs_card_init(&k, 0);
        k.state = (enum fsrs_state)db_col_int64(st, 2);
        k.stability = db_col_double(st, 3);
        k.last_review = db_col_int64(st, 4);
        double r = fsrs_retrievability(&p, &k, b->now);
        snprintf(rows[n].user, KEY_MAX, "%s", db_col_text(st, 0, NULL));
        snprintf(rows[n].node, KEY_MAX, "%s", db_col_text(st, 1, NULL));
        rows[n].r = r;
        rows[n].is_changed = db_col_double(st, 5) != r;
        n++;
    }
    db_stmt_done(st);
    if (rc == LOCI_ROW)
        rc = LOCI_OK;
    for (int i = 0; rc == LOCI_OK && i < n; i++) {
        struct decay_user *u = &b->next_carry;
        if (strcmp(u->id, rows[i].user) != 0) {
            /* the previous user is complete: its delta and summary */
            if (u->id[0] && !graph_delta_is_empty(&delta))
                rc = graph_emit(c, u->id, &delta, "familiarity.decayed");
            graph_delta_release(&delta);
            graph_delta_init(&delta);
            if (rc == LOCI_OK)
                rc = decay_summary(c, u);
            memset(u, 0, sizeof *u);
            snprintf(u->id, sizeof u->id, "%s", rows[i].user);
        }
        u->cards++;
        if (rc == LOCI_OK && rows[i].is_changed) {
            rc = decay_update(c, rows[i].user, rows[i].node, rows[i].r);
            if (rc == LOCI_OK)
                rc = graph_delta_add_node(c, rows[i].user, rows[i].node, &delta);
            u->changed++;
            b->changed++;
        }
    }
    if (rc == LOCI_OK && n > 0) {
        if (!graph_delta_is_empty(&delta))
            rc = graph_emit(c, b->next_carry.id, &delta, "familiarity.decayed");
        snprintf(b->last_user, sizeof b->last_user, "%s", rows[n - 1].user);
        snprintf(b->last_node, sizeof b->last_node, "%s", rows[n - 1].node);
    }
    if (rc == LOCI_OK && n < b->batch) {
        /* the walk is over: the last user is complete */
        rc = decay_summary(c, &b->next_carry);
        memset(&b->next_carry, 0, sizeof b->next_carry);
    }
    b->rows = n;
    xfree(rows);
out:
    graph_delta_release(&delta);
    return rc;
}

int learn_decay_all(struct db *db, int64_t now, int batch, int64_t *out_changed)
{
    struct decay_batch b = {.now = now, .batch = batch > 0 ? batch : DECAY_BATCH};
    int64_t changed = 0;
    int rc;
    do {
        rc = db_tx(db, tx_decay_batch, &b);
        if (rc)
            break;
        changed += b.changed;
        memcpy(b.after_user, b.last_user, sizeof b.after_user);
        memcpy(b.after_node, b.last_node, sizeof b.after_node);
        b.carry = b.next_carry;
    } while (b.rows == b.batch);
    if (out_changed)
        *out_changed = changed;
    return rc;
}

static int decay_job(struct job *j, void *arg)
{
    (void)arg;
    int64_t changed = 0;
    int rc = learn_decay_all(job_db(j), clock_now_ms(), DECAY_BATCH, &changed);
    if (rc == LOCI_OK)
        log_line(job_log(j), LOG_INFO, "familiarity decayed",
                 (struct log_field[]){LF_INT("changed", changed)}, 1);
    return rc;
}

/* ---- digest ---- */

struct digest_user {
    char id[KEY_MAX];
    char email[320];
    double threshold;
    int64_t last_digest_at;
};

/* Nodes of user whose retrievability at now is below threshold. */
static int count_below(struct db_conn *c, const char *user_id, double threshold, int64_t now,
                       int64_t *out)
{
    struct fsrs_params p;
    fsrs_params_init(&p, FSRS_DEFAULT_RETENTION);
    struct db_stmt *st = NULL;
    int rc = db_prepare(c,
                        "SELECT state, stability, last_review FROM cards "
                        "WHERE user_id = ? AND state <> 0",
                        &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, user_id, (size_t)-1);
    *out = 0;
    while ((rc = db_step(st)) == LOCI_ROW) {
        struct fsrs_card k;
        fsrs_card_init(&k, 0);
        k.state = (enum fsrs_state)db_col_int64(st, 0);
        k.stability = db_col_double(st, 1);
        k.last_review = db_col_int64(st, 2);
        if (fsrs_retrievability(&p, &k, now) < threshold)
            (*out)++;
    }
    db_stmt_done(st);
    return rc;
}

/* Move last_digest_at from `from` to `to`; *out_claimed false when another
 * pass moved it first. */
static int digest_claim(struct db_conn *c, const char *user_id, int64_t from, int64_t to,
                        bool *out_claimed)
{
    struct db_stmt *st = NULL;
    int rc = db_prepare(c,
                        "UPDATE learning_settings SET last_digest_at = ? "
                        "WHERE user_id = ? AND last_digest_at = ?",
                        &st);
    if (rc)
        return rc;
    db_bind_int64(st, 1, to);
    db_bind_text(st, 2, user_id, (size_t)-1);
    db_bind_int64(st, 3, from);
    int64_t n = 0;
    rc = db_run(st, &n);
    *out_claimed = n == 1;
    return rc;
}

static int digest_candidates(struct db_conn *c, const char *after, int64_t now,
                             struct digest_user *out, int max, int *out_n)
{
    struct db_stmt *st = NULL;
    int rc = db_prepare(c,
                        "SELECT s.user_id, u.email, s.threshold, s.last_digest_at "
                        "FROM learning_settings s JOIN users u ON u.id = s.user_id "
                        "WHERE s.review_mail = 1 AND s.last_digest_at <= ? "
                        "AND u.disabled_at IS NULL AND s.user_id > ? "
                        "ORDER BY s.user_id LIMIT ?",
                        &st);
    if (rc)
        return rc;
    db_bind_int64(st, 1, now - DAY_MS);
    db_bind_text(st, 2, after, (size_t)-1);
    db_bind_int64(st, 3, max);
    int n = 0;
    while (n < max && (rc = db_step(st)) == LOCI_ROW) {
        snprintf(out[n].id, sizeof out[n].id, "%s", db_col_text(st, 0, NULL));
        snprintf(out[n].email, sizeof out[n].email, "%s", db_col_text(st, 1, NULL));
        out[n].threshold = db_col_double(st, 2);
        out[n].last_digest_at = db_col_int64(st, 3);
        n++;
    }
    db_stmt_done(st);
    *out_n = n;
    return rc == LOCI_ROW ? LOCI_OK : rc;
}

struct digest_one {
    const struct digest_user *u;
    int64_t now;
    int64_t count;
    bool is_claimed;
    bool is_failed; /* the mail could not be sent */
};

static int tx_digest_claim(struct db_conn *c, void *arg)
{
    struct digest_one *d = arg;
    d->is_claimed = false;
    int rc = count_below(c, d->u->id, d->u->threshold, d->now, &d->count);
    if (rc == LOCI_OK && d->count > 0)
        rc = digest_claim(c, d->u->id, d->u->last_digest_at, d->now, &d->is_claimed);
    return rc;
}

static int tx_digest_release(struct db_conn *c, void *arg)
{
    struct digest_one *d = arg;
    bool claimed;
    return digest_claim(c, d->u->id, d->now, d->u->last_digest_at, &claimed);
}

static int tx_digest_sent(struct db_conn *c, void *arg)
{
    struct digest_one *d = arg;
    json_t *data =
        json_pack("{s:I, s:f}", "count", (json_int_t)d->count, "threshold", d->u->threshold);
    int rc = events_append(c, d->u->id, "review.digest_sent", data, NULL);
    json_decref(data);
    return rc;
}

static int digest_send_one(struct db *db, struct digest_one *d, learn_send_fn send, void *send_arg,
                           const char *public_url, bool *out_sent)
{
    *out_sent = false;
    int rc = db_tx(db, tx_digest_claim, d);
    if (rc || !d->is_claimed || !send)
        return rc;
    char subject[128], body[1024], err[256];
    snprintf(subject, sizeof subject, "%lld %s to review in Loci", (long long)d->count,
             d->count == 1 ? "node" : "nodes");
    snprintf(body, sizeof body,
             "Hello,\n\n%lld of your nodes %s fallen below %.0f%% recall. A short review now "
             "keeps them:\n\n%s/review\n\nYou get this mail at most once a day; turn it off in "
             "your learning settings.\n\n-- Loci\n",
             (long long)d->count, d->count == 1 ? "has" : "have", d->u->threshold * 100,
             public_url ? public_url : "");
    if (send(send_arg, d->u->email, subject, body, err, sizeof err) != LOCI_OK) {
        d->is_failed = true;
        return db_tx(db, tx_digest_release, d); /* try again next hour */
    }
    *out_sent = true;
    return db_tx(db, tx_digest_sent, d);
}

int learn_digest_all(struct db *db, int64_t now, learn_send_fn send, void *send_arg,
                     const char *public_url, int *out_sent, int *out_failed)
{
    struct digest_user *batch = xcalloc(DIGEST_BATCH, sizeof *batch);
    char after[KEY_MAX] = "";
    int sent = 0, failed = 0, n = 0, rc = LOCI_OK;
    do {
        struct db_conn *c = NULL;
        rc = db_acquire(db, &c);
        if (rc)
            break;
        rc = digest_candidates(c, after, now, batch, DIGEST_BATCH, &n);
        db_release(c);
        if (rc)
            break;
        for (int i = 0; i < n; i++) {
            struct digest_one d = {.u = &batch[i], .now = now};
            bool is_sent = false;
            /* a mail that fails is counted; it must not starve the others */
            rc = digest_send_one(db, &d, send, send_arg, public_url, &is_sent);
            if (rc)
                break;
            sent += is_sent;
            failed += d.is_failed;
        }
        if (n > 0)
            snprintf(after, sizeof after, "%s", batch[n - 1].id);
    } while (rc == LOCI_OK && n == DIGEST_BATCH);
    xfree(batch);
    if (out_sent)
        *out_sent = sent;
    if (out_failed)
        *out_failed = failed;
    return rc;
}

static int smtp_send(void *arg, const char *to, const char *subject, const char *body, char *err,
                     size_t err_n)
{
    const struct config *cfg = arg;
    struct mail_opts mo = {cfg->smtp_url,         cfg->smtp_user, cfg->smtp_password,
                           cfg->smtp_require_tls, cfg->mail_from, 30};
    return mail_send(&mo, to, subject, body, err, err_n);
}

static int digest_job(struct job *j, void *arg)
{
    const struct config *cfg = arg;
    if (!cfg->smtp_url || !cfg->smtp_url[0])
        return LOCI_OK; /* mail is off */
    int sent = 0, failed = 0;
    int rc = learn_digest_all(job_db(j), clock_now_ms(), smtp_send, (void *)cfg, cfg->public_url,
                              &sent, &failed);
    if (rc == LOCI_OK)
        log_line(job_log(j), failed ? LOG_WARN : LOG_INFO, "review digest",
                 (struct log_field[]){LF_INT("sent", sent), LF_INT("failed", failed)}, 2);
    return rc; /* failed mails are tried again by the next hourly run */
}

int learn_register_jobs(struct jobs *js, const struct config *cfg, char *err, size_t err_n)
{
    jobs_register(js, "learn.decay_familiarity", decay_job, NULL);
    jobs_register(js, "learn.review_digest", digest_job, (void *)cfg);
    int rc = jobs_schedule(js, "decay_familiarity", "0 3 * * *", "learn.decay_familiarity", NULL,
                           err, err_n);
    if (rc == LOCI_OK)
        rc = jobs_schedule(js, "review_digest", "0 * * * *", "learn.review_digest", NULL, err,
                           err_n);
    return rc;
}
