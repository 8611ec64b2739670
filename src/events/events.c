/*
 * events.c - append and read. On PostgreSQL a sequence alone would hand out
 * offsets in draw order, not commit order (a transaction that drew 7 may
 * commit after one that drew 8, and a reader at 8 would then skip 7). So an
 * append first takes a transaction-scoped advisory lock: appends serialise
 * from that point to commit, and the sequence order equals commit order.
 */
#include "events/events.h"

#include "core/alloc.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/ids.h"

#include <string.h>

/* "loci-evt" as a 64-bit key for the advisory lock. */
#define EVENTS_LOCK_KEY 0x6c6f63692d657674LL

static bool valid_type(const char *t)
{
    size_t n = strlen(t);
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = t[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_'))
            return false;
    }
    return true;
}

int events_append(struct db_conn *c, const char *user_id, const char *type, const json_t *data,
                  int64_t *out_offset)
{
    if (!type || !valid_type(type) || (data && !json_is_object(data)))
        return LOCI_EINVAL;
    char *text = data ? json_dumps(data, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
    if (data && !text)
        return LOCI_ENOMEM;
    char id[UUID_STR_LEN];
    ids_uuid7(id);

    int rc = db_xact_lock(c, EVENTS_LOCK_KEY);
    if (rc)
        goto out;
    struct db_stmt *st = NULL;
    rc = db_prepare(c,
                    "INSERT INTO events (id, user_id, type, data, created_at) "
                    "VALUES (?, ?, ?, ?, ?) RETURNING \"offset\"",
                    &st);
    if (rc)
        goto out;
    db_bind_text(st, 1, id, (size_t)-1);
    db_bind_text(st, 2, user_id, (size_t)-1);
    db_bind_text(st, 3, type, (size_t)-1);
    db_bind_text(st, 4, text ? text : "{}", (size_t)-1);
    db_bind_int64(st, 5, clock_now_ms());
    rc = db_step(st);
    if (rc == LOCI_ROW) {
        if (out_offset)
            *out_offset = db_col_int64(st, 0);
        rc = LOCI_OK;
    } else if (rc == LOCI_OK) {
        rc = LOCI_EIO;
    }
    db_stmt_done(st);
out:
    xfree(text);
    return rc;
}

/* Feed the rows of st (offset, id, user_id, type, data, created_at) to fn. */
static int read_rows(struct db_stmt *st, events_fn fn, void *arg, int64_t *out_last)
{
    int rc;
    while ((rc = db_step(st)) == LOCI_ROW) {
        struct event_view ev;
        ev.offset = db_col_int64(st, 0);
        ev.id = db_col_text(st, 1, NULL);
        ev.user_id = db_col_is_null(st, 2) ? NULL : db_col_text(st, 2, NULL);
        ev.type = db_col_text(st, 3, NULL);
        ev.data = db_col_text(st, 4, &ev.data_len);
        ev.created_at = db_col_int64(st, 5);
        int frc = fn(&ev, arg);
        if (out_last)
            *out_last = ev.offset;
        if (frc) {
            rc = frc;
            break;
        }
    }
    db_stmt_done(st);
    return rc;
}

int events_read(struct db_conn *c, const char *user_id, int64_t after, int limit, events_fn fn,
                void *arg, int64_t *out_last)
{
    if (out_last)
        *out_last = after;
    if (!user_id || limit < 1 || limit > 1000 || after < 0)
        return LOCI_EINVAL;
    struct db_stmt *st = NULL;
    int rc = db_prepare(c,
                        "SELECT \"offset\", id, user_id, type, data, created_at FROM events "
                        "WHERE user_id = ? AND \"offset\" > ? ORDER BY \"offset\" LIMIT ?",
                        &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, user_id, (size_t)-1);
    db_bind_int64(st, 2, after);
    db_bind_int64(st, 3, limit);
    return read_rows(st, fn, arg, out_last);
}

int events_read_all(struct db_conn *c, int64_t after, int limit, events_fn fn, void *arg,
                    int64_t *out_last)
{
    if (out_last)
        *out_last = after;
    if (limit < 1 || limit > 1000 || after < 0)
        return LOCI_EINVAL;
    struct db_stmt *st = NULL;
    int rc = db_prepare(c,
                        "SELECT \"offset\", id, user_id, type, data, created_at FROM events "
                        "WHERE \"offset\" > ? ORDER BY \"offset\" LIMIT ?",
                        &st);
    if (rc)
        return rc;
    db_bind_int64(st, 1, after);
    db_bind_int64(st, 2, limit);
    return read_rows(st, fn, arg, out_last);
}

int events_head(struct db_conn *c, int64_t *out)
{
    struct db_stmt *st = NULL;
    int rc = db_prepare(c, "SELECT COALESCE(MAX(\"offset\"), 0) FROM events", &st);
    if (rc)
        return rc;
    rc = db_step(st);
    if (rc == LOCI_ROW) {
        *out = db_col_int64(st, 0);
        rc = LOCI_OK;
    } else if (rc == LOCI_OK) {
        rc = LOCI_EIO;
    }
    db_stmt_done(st);
    return rc;
}
