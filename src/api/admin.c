/*
 * admin.c - administration (users, jobs) and a user's view of their jobs.
 */
#include "api/app.h"
#include "api/routes_int.h"
#include "core/err.h"
#include "services/jobs/jobs.h"

#include <stdio.h>
#include <string.h>

static const struct json_field user_fields[] = {
    {"role", JF_STRING, false, false, 4, 5},
    {"disabled", JF_BOOLEAN, false, false, 0, 0},
};
const struct json_schema api_admin_user_schema = {user_fields, 2, false};

int api_query_limit(struct http_req *req, int def, int max, int *out)
{
    const char *l = http_query(req, "limit");
    long long v = def;
    if (l && parse_int64(l, 1, max, &v))
        return http_reply_error(req, LOCI_EINVAL, "limit", "'limit' must be 1 to %d", max);
    *out = (int)v;
    return LOCI_OK;
}

int api_admin_users(struct http_req *req)
{
    struct app *app = http_app(req);
    int limit = 50;
    int rc = api_query_limit(req, 50, 200, &limit);
    if (rc || http_has_reply(req))
        return rc;
    const char *q = http_query(req, "q");
    const char *after = http_query(req, "after");
    if ((q && strlen(q) > AUTH_EMAIL_MAX) || (after && strlen(after) > AUTH_EMAIL_MAX))
        return http_reply_error(req, LOCI_EINVAL, q ? "q" : "after", "too long");
    struct db_conn *c = NULL;
    rc = db_acquire(app->db, &c);
    if (rc)
        return rc;
    json_t *items = NULL;
    bool more = false;
    rc = auth_users_list(c, q, after, limit, &items, &more);
    db_release(c);
    if (rc)
        return rc;
    json_t *last = json_array_get(items, json_array_size(items) - 1);
    json_t *o = json_pack("{s:o, s:o}", "items", items, "next",
                          more && last ? json_copy(json_object_get(last, "email")) : json_null());
    return http_reply_json(req, 200, o);
}

struct user_patch {
    const char *admin_id;
    const char *id;
    const char *role;
    json_t *disabled;
    struct auth_user u;
};

static int tx_user_patch(struct db_conn *c, void *arg)
{
    struct user_patch *p = arg;
    struct auth_user before;
    int rc = auth_user_by_id(c, p->id, &before);
    if (rc)
        return rc;
    if (p->role && strcmp(before.role, p->role) != 0) {
        rc = auth_user_set_role(c, p->id, p->role);
        if (rc == LOCI_OK)
            rc = api_event(c, p->id, "user.role_changed",
                           json_pack("{s:s, s:s, s:s}", "from", before.role, "to", p->role, "by",
                                     p->admin_id));
        if (rc)
            return rc;
    }
    if (p->disabled && json_is_true(p->disabled) != (before.disabled_at != 0)) {
        bool off = json_is_true(p->disabled);
        rc = auth_user_set_disabled(c, p->id, off);
        int64_t n = 0;
        if (rc == LOCI_OK && off)
            rc = auth_session_revoke_all(c, p->id, NULL, &n);
        if (rc == LOCI_OK)
            rc = api_event(
                c, p->id, off ? "user.disabled" : "user.enabled",
                json_pack("{s:s, s:I}", "by", p->admin_id, "sessions_revoked", (json_int_t)n));
        if (rc)
            return rc;
    }
    return auth_user_by_id(c, p->id, &p->u);
}

int api_admin_user_patch(struct http_req *req)
{
    json_t *body = http_json(req);
    struct user_patch p = {
        .admin_id = api_principal(req)->user_id,
        .id = http_param(req, "id"),
        .role = json_string_value(json_object_get(body, "role")),
        .disabled = json_object_get(body, "disabled"),
    };
    if (p.role && strcmp(p.role, "user") != 0 && strcmp(p.role, "admin") != 0)
        return http_reply_error(req, LOCI_EUNPROCESSABLE, "role",
                                "'role' must be \"user\" or \"admin\"");
    if (strcmp(p.id, p.admin_id) == 0 &&
        ((p.role && strcmp(p.role, "admin") != 0) || json_is_true(p.disabled)))
        return http_reply_error(req, LOCI_ECONFLICT, p.role ? "role" : "disabled",
                                "you cannot demote or disable yourself");
    int rc = api_tx(req, tx_user_patch, &p);
    if (rc)
        return rc;
    return http_reply_json(req, 200, auth_user_json(&p.u));
}

int api_job_get(struct http_req *req)
{
    struct app *app = http_app(req);
    struct db_conn *c = NULL;
    int rc = db_acquire(app->db, &c);
    if (rc)
        return rc;
    json_t *j = NULL;
    rc = jobs_get(c, http_param(req, "id"), api_principal(req)->user_id, false, &j);
    db_release(c);
    if (rc)
        return rc;
    return http_reply_json(req, 200, j);
}

int api_admin_jobs(struct http_req *req)
{
    struct app *app = http_app(req);
    int limit = 50;
    int rc = api_query_limit(req, 50, 500, &limit);
    if (rc || http_has_reply(req))
        return rc;
    const char *status = http_query(req, "status");
    if (status && !jobs_status_valid(status))
        return http_reply_error(req, LOCI_EINVAL, "status",
                                "'status' is one of queued, running, completed, dead, cancelled");
    const char *type = http_query(req, "type");
    const char *before = http_query(req, "before");
    if ((type && strlen(type) > 64) || (before && strlen(before) > 64))
        return http_reply_error(req, LOCI_EINVAL, type ? "type" : "before", "too long");
    struct db_conn *c = NULL;
    rc = db_acquire(app->db, &c);
    if (rc)
        return rc;
    json_t *items = NULL;
    rc = jobs_list(c, status, type, before, limit, &items);
    db_release(c);
    if (rc)
        return rc;
    size_t n = json_array_size(items);
    json_t *last = n == (size_t)limit ? json_array_get(items, n - 1) : NULL;
    return http_reply_json(req, 200,
                           json_pack("{s:o, s:o}", "items", items, "next",
                                     last ? json_copy(json_object_get(last, "id")) : json_null()));
}

struct job_op {
    const char *id;
    const char *admin;
    bool is_retry;
};

static int tx_job_op(struct db_conn *c, void *arg)
{
    struct job_op *o = arg;
    int rc = o->is_retry ? jobs_retry(c, o->id) : jobs_cancel(c, o->id);
    if (rc == LOCI_OK)
        rc = api_event(c, NULL, o->is_retry ? "job.retried" : "job.cancelled",
                       json_pack("{s:s, s:s}", "job_id", o->id, "by", o->admin));
    return rc;
}

static int job_op(struct http_req *req, bool is_retry)
{
    struct app *app = http_app(req);
    struct job_op o = {http_param(req, "id"), api_principal(req)->user_id, is_retry};
    int rc = api_tx(req, tx_job_op, &o);
    if (rc == LOCI_ECONFLICT)
        return http_reply_error(req, LOCI_ECONFLICT, NULL,
                                is_retry ? "only dead, cancelled or finished jobs can be retried"
                                         : "only queued or running jobs can be cancelled");
    if (rc)
        return rc;
    struct db_conn *c = NULL;
    rc = db_acquire(app->db, &c);
    if (rc)
        return rc;
    json_t *j = NULL;
    rc = jobs_get(c, o.id, NULL, true, &j);
    db_release(c);
    /* Wake the workers only after reading: the answer shows the job as the
     * request left it (queued), not as a worker may already have taken it. */
    if (is_retry)
        jobs_wake(app->jobs);
    if (rc)
        return rc;
    return http_reply_json(req, 200, j);
}

int api_admin_job_retry(struct http_req *req)
{
    return job_op(req, true);
}

int api_admin_job_cancel(struct http_req *req)
{
    return job_op(req, false);
}
