/*
 * routes_int.h - private to src/api: the handlers and body schemas the route
 * table names, and helpers shared by handler files.
 */
#ifndef LOCI_API_ROUTES_INT_H
#define LOCI_API_ROUTES_INT_H

#include "api/http.h"
#include "auth/auth.h"
#include "core/json.h"

/* ops.c */
int api_health(struct http_req *req);
int api_health_detailed(struct http_req *req);
int api_metrics(struct http_req *req);
int api_version(struct http_req *req);
int api_openapi(struct http_req *req);

/* auth.c */
int api_auth_options(struct http_req *req);
int api_auth_signup(struct http_req *req);
int api_auth_login(struct http_req *req);
int api_auth_refresh(struct http_req *req);
int api_auth_logout(struct http_req *req);
int api_auth_logout_all(struct http_req *req);
int api_auth_verify_email(struct http_req *req);
int api_auth_forgot(struct http_req *req);
int api_auth_reset(struct http_req *req);
int api_auth_setup(struct http_req *req);
extern const struct json_schema api_signup_schema, api_login_schema, api_refresh_schema,
    api_empty_schema, api_token_schema, api_forgot_schema, api_reset_schema, api_setup_schema;

/* me.c */
int api_me_get(struct http_req *req);
int api_me_patch(struct http_req *req);
int api_me_password(struct http_req *req);
int api_me_sessions(struct http_req *req);
int api_me_session_delete(struct http_req *req);
int api_me_keys(struct http_req *req);
int api_me_key_create(struct http_req *req);
int api_me_key_delete(struct http_req *req);
extern const struct json_schema api_me_patch_schema, api_password_schema, api_key_schema;

/* graph.c */
int api_node_get(struct http_req *req);
int api_node_create(struct http_req *req);
int api_node_patch(struct http_req *req);
int api_node_merge(struct http_req *req);
int api_node_delete(struct http_req *req);
int api_node_familiarity(struct http_req *req);
int api_graphs_recent(struct http_req *req);
int api_graph_slice(struct http_req *req);
extern const struct json_schema api_node_create_schema, api_node_patch_schema,
    api_node_merge_schema, api_familiarity_schema;

/* learn.c */
int api_reviews_due(struct http_req *req);
int api_review_create(struct http_req *req);
int api_node_reviews(struct http_req *req);
int api_learning_get(struct http_req *req);
int api_learning_patch(struct http_req *req);
extern const struct json_schema api_review_schema, api_learning_schema;

/* quiz.c: quizzes and the learner's stats */
int api_quiz_create(struct http_req *req);
int api_quiz_get(struct http_req *req);
int api_quiz_answer(struct http_req *req);
int api_user_stats(struct http_req *req);
extern const struct json_schema api_quiz_schema, api_quiz_answer_schema;

/* ws.c, sync.c: realtime delivery and the change log */
int api_ws(struct http_req *req);
int api_sync(struct http_req *req);

/* documents.c */
int api_documents_upload(struct http_req *req);
int api_documents_upload_body(struct http_req *req, const char *p, size_t n);
int api_documents_list(struct http_req *req);
int api_document_get(struct http_req *req);
int api_document_file(struct http_req *req);
int api_document_delete(struct http_req *req);
int api_document_reprocess(struct http_req *req);
int api_document_cancel(struct http_req *req);

/* search.c */
int api_search(struct http_req *req);

/* admin.c */
int api_admin_users(struct http_req *req);
int api_admin_user_patch(struct http_req *req);
int api_job_get(struct http_req *req);
int api_admin_jobs(struct http_req *req);
int api_admin_job_retry(struct http_req *req);
int api_admin_job_cancel(struct http_req *req);
extern const struct json_schema api_admin_user_schema;

/* ask.c */
int api_ask(struct http_req *req);
int api_conversations(struct http_req *req);
int api_conversation_messages(struct http_req *req);
extern const struct json_schema api_ask_schema;

/* guard.c: the caller as the `before` hook established it (NULL when
 * anonymous). */
const struct auth_principal *api_principal(struct http_req *req);
/* The client's address as a rate-limit key (IPv6: its /64). */
void api_client_key(struct http_req *req, char *out, size_t n);

/* ?limit= as 1..max (def when absent). A bad value is answered 400 naming
 * "limit": callers check `if (rc || http_has_reply(req)) return rc;`. */
int api_query_limit(struct http_req *req, int def, int max, int *out);

/* Run fn in a transaction; map store errors. */
struct db_conn;
typedef int (*api_tx_fn)(struct db_conn *c, void *arg);
int api_tx(struct http_req *req, api_tx_fn fn, void *arg);
/* Append an audit event inside a transaction (data is stolen). */
int api_event(struct db_conn *c, const char *user_id, const char *type, json_t *data);

#endif
