/*
 * routes.c - the one route table of the public API. A route not listed here
 * does not exist; tests check this table against the OpenAPI document.
 */
#include "api/app.h"
#include "api/routes_int.h"

#define ROUTE(m, p, h, fl, rc, sc, sum)                                                            \
    {                                                                                              \
        .method = (m), .path = (p), .handler = (h), .flags = (fl), .rate_class = (rc),             \
        .schema = (sc), .summary = (sum)                                                           \
    }

/* A route whose body is read as it arrives by body (HTTP_R_STREAM_BODY). */
#define STREAM_ROUTE(m, p, h, body, fl, rc, sum)                                                   \
    {                                                                                              \
        .method = (m), .path = (p), .handler = (h), .on_body = (body),                             \
        .flags = (fl) | HTTP_R_STREAM_BODY, .rate_class = (rc), .summary = (sum)                   \
    }

#define JSON  HTTP_R_JSON_BODY
#define SLOW  HTTP_R_OFFLOAD /* hashes a password: off the HTTP threads */
#define AUTH  HTTP_R_AUTH
#define ADMIN (HTTP_R_AUTH | HTTP_R_ADMIN)

const struct http_route api_routes[] = {
    /* operations */
    ROUTE(HTTP_GET, "/health", api_health, 0, RATE_NONE, NULL, "liveness"),
    ROUTE(HTTP_GET, "/health/detailed", api_health_detailed, 0, RATE_NONE, NULL,
          "database, schema and uptime; 503 when the database is down"),
    ROUTE(HTTP_GET, "/metrics", api_metrics, HTTP_R_NO_LOG, RATE_NONE, NULL, "Prometheus metrics"),
    ROUTE(HTTP_GET, "/api/v1/version", api_version, 0, RATE_API, NULL, "server name and version"),
    ROUTE(HTTP_GET, "/api/v1/openapi.json", api_openapi, 0, RATE_API, NULL,
          "this API's OpenAPI document"),

    /* accounts */
    ROUTE(HTTP_GET, "/api/v1/auth/options", api_auth_options, 0, RATE_AUTH, NULL,
          "whether mail verification is on and the first admin still to be set up"),
    ROUTE(HTTP_POST, "/api/v1/auth/signup", api_auth_signup, JSON | SLOW, RATE_AUTH,
          &api_signup_schema, "create an account"),
    ROUTE(HTTP_POST, "/api/v1/auth/login", api_auth_login, JSON | SLOW, RATE_AUTH,
          &api_login_schema, "exchange email and password for tokens"),
    ROUTE(HTTP_POST, "/api/v1/auth/refresh", api_auth_refresh, JSON, RATE_AUTH, &api_refresh_schema,
          "rotate the refresh token, get a new access token"),
    ROUTE(HTTP_POST, "/api/v1/auth/logout", api_auth_logout, JSON, RATE_AUTH, &api_refresh_schema,
          "end this session"),
    ROUTE(HTTP_POST, "/api/v1/auth/logout-all", api_auth_logout_all, JSON | AUTH, RATE_AUTH,
          &api_empty_schema, "end every session of the signed-in user"),
    ROUTE(HTTP_POST, "/api/v1/auth/verify-email", api_auth_verify_email, JSON, RATE_AUTH,
          &api_token_schema, "confirm an email address with the mailed token"),
    ROUTE(HTTP_POST, "/api/v1/auth/password/forgot", api_auth_forgot, JSON, RATE_AUTH,
          &api_forgot_schema, "mail a password reset link"),
    ROUTE(HTTP_POST, "/api/v1/auth/password/reset", api_auth_reset, JSON | SLOW, RATE_AUTH,
          &api_reset_schema, "set a new password with the mailed token"),
    ROUTE(HTTP_POST, "/api/v1/auth/setup", api_auth_setup, JSON | SLOW, RATE_AUTH,
          &api_setup_schema, "create the first admin with the one-time setup token"),

    /* the signed-in user */
    ROUTE(HTTP_GET, "/api/v1/me", api_me_get, AUTH, RATE_API, NULL, "the signed-in user"),
    ROUTE(HTTP_PATCH, "/api/v1/me", api_me_patch, JSON | AUTH, RATE_API, &api_me_patch_schema,
          "change the display name"),
    ROUTE(HTTP_POST, "/api/v1/me/password", api_me_password, JSON | AUTH | SLOW, RATE_AUTH,
          &api_password_schema, "change the password (ends every other session)"),
    ROUTE(HTTP_GET, "/api/v1/me/sessions", api_me_sessions, AUTH, RATE_API, NULL, "open sessions"),
    ROUTE(HTTP_DELETE, "/api/v1/me/sessions/:id", api_me_session_delete, AUTH, RATE_API, NULL,
          "end one session"),
    ROUTE(HTTP_GET, "/api/v1/me/api-keys", api_me_keys, AUTH, RATE_API, NULL, "API keys"),
    ROUTE(HTTP_POST, "/api/v1/me/api-keys", api_me_key_create, JSON | AUTH, RATE_API,
          &api_key_schema, "create an API key (shown once)"),
    ROUTE(HTTP_DELETE, "/api/v1/me/api-keys/:id", api_me_key_delete, AUTH, RATE_API, NULL,
          "revoke an API key"),

    /* the knowledge graph */
    ROUTE(HTTP_GET, "/api/v1/nodes/:id", api_node_get, AUTH, RATE_API, NULL,
          "a node with its aliases and neighbours"),
    ROUTE(HTTP_POST, "/api/v1/nodes", api_node_create, JSON | AUTH, RATE_API,
          &api_node_create_schema, "write a note: a new node"),
    ROUTE(HTTP_PATCH, "/api/v1/nodes/:id", api_node_patch, JSON | AUTH, RATE_API,
          &api_node_patch_schema, "rename a node or change its summary"),
    ROUTE(HTTP_DELETE, "/api/v1/nodes/:id", api_node_delete, AUTH, RATE_API, NULL,
          "delete a node with its edges"),
    ROUTE(HTTP_POST, "/api/v1/nodes/:id/merge", api_node_merge, JSON | AUTH, RATE_API,
          &api_node_merge_schema, "merge a node into another"),
    ROUTE(HTTP_PATCH, "/api/v1/nodes/:id/familiarity", api_node_familiarity, JSON | AUTH, RATE_API,
          &api_familiarity_schema, "set how familiar a node is (0 to 1)"),
    ROUTE(HTTP_GET, "/api/v1/nodes/:id/reviews", api_node_reviews, AUTH, RATE_API, NULL,
          "a node's review history, oldest first"),
    ROUTE(HTTP_GET, "/api/v1/graphs/recent", api_graphs_recent, AUTH, RATE_API, NULL,
          "recent root nodes, newest first, paginated"),
    ROUTE(HTTP_GET, "/api/v1/graph", api_graph_slice, AUTH, RATE_API, NULL,
          "a slice of your graph for drawing: strongest edges first"),

    /* spaced repetition */
    ROUTE(HTTP_GET, "/api/v1/reviews/due", api_reviews_due, AUTH, RATE_API, NULL,
          "what to review now: due cards, then new nodes (capped per day)"),
    ROUTE(HTTP_POST, "/api/v1/reviews", api_review_create, JSON | AUTH, RATE_API,
          &api_review_schema, "rate a node 1-4; FSRS schedules its next review"),
    ROUTE(HTTP_GET, "/api/v1/me/learning", api_learning_get, AUTH, RATE_API, NULL,
          "your learning settings"),
    ROUTE(HTTP_PATCH, "/api/v1/me/learning", api_learning_patch, JSON | AUTH, RATE_API,
          &api_learning_schema, "change desired retention, new nodes a day, the review digest"),

    /* quizzes and stats */
    ROUTE(HTTP_POST, "/api/v1/quizzes", api_quiz_create, JSON | AUTH, RATE_API, &api_quiz_schema,
          "build a quiz from your material, weakest nodes first (202; built by a job)"),
    ROUTE(HTTP_GET, "/api/v1/quizzes/:id", api_quiz_get, AUTH, RATE_API, NULL,
          "a quiz: its status and questions (keys only once answered)"),
    ROUTE(HTTP_POST, "/api/v1/quizzes/:id/answers", api_quiz_answer, JSON | AUTH, RATE_API,
          &api_quiz_answer_schema, "answer a question: graded, explained, fed to FSRS"),
    ROUTE(HTTP_GET, "/api/v1/user/stats", api_user_stats, AUTH, RATE_API, NULL,
          "your numbers: reviews, retention, streak, due, states, familiarity, quiz scores"),

    /* jobs */
    ROUTE(HTTP_GET, "/api/v1/jobs/:id", api_job_get, AUTH, RATE_API, NULL, "one of your jobs"),

    /* realtime and sync */
    ROUTE(HTTP_GET, "/ws", api_ws, 0, RATE_API, NULL,
          "WebSocket: your events as they happen (auth by first message or session cookie)"),
    ROUTE(HTTP_GET, "/api/v1/sync", api_sync, AUTH, RATE_API, NULL,
          "your change log after an offset, for clients that were offline"),

    /* asking */
    ROUTE(HTTP_POST, "/api/v1/ask", api_ask, JSON | AUTH, RATE_API, &api_ask_schema,
          "ask a question: the answer, its citations and the terms it added to your graph"),
    ROUTE(HTTP_GET, "/api/v1/conversations", api_conversations, AUTH, RATE_API, NULL,
          "your conversations, most recent first"),
    ROUTE(HTTP_GET, "/api/v1/conversations/:id/messages", api_conversation_messages, AUTH, RATE_API,
          NULL, "a conversation's messages, oldest first"),

    /* documents */
    STREAM_ROUTE(HTTP_POST, "/api/v1/documents", api_documents_upload, api_documents_upload_body,
                 AUTH | SLOW, RATE_API,
                 "upload a document (multipart field 'file'); processed in the background"),
    ROUTE(HTTP_GET, "/api/v1/documents", api_documents_list, AUTH, RATE_API, NULL,
          "your documents with their processing status, newest first"),
    ROUTE(HTTP_GET, "/api/v1/documents/:id", api_document_get, AUTH, RATE_API, NULL,
          "a document: status, progress, pages, chunks, summary, errors, timings"),
    ROUTE(HTTP_GET, "/api/v1/documents/:id/file", api_document_file, AUTH, RATE_API, NULL,
          "download the stored file"),
    ROUTE(HTTP_DELETE, "/api/v1/documents/:id", api_document_delete, AUTH, RATE_API, NULL,
          "delete a document with its passages, vectors and file"),
    ROUTE(HTTP_POST, "/api/v1/documents/:id/reprocess", api_document_reprocess, AUTH, RATE_API,
          NULL, "process a document again"),
    ROUTE(HTTP_POST, "/api/v1/documents/:id/cancel", api_document_cancel, AUTH, RATE_API, NULL,
          "stop processing a document"),

    /* search */
    ROUTE(HTTP_GET, "/api/v1/search", api_search, AUTH | SLOW, RATE_API, NULL,
          "your passages by full text, vectors or both, with snippets"),

    /* administration */
    ROUTE(HTTP_GET, "/api/v1/admin/users", api_admin_users, ADMIN, RATE_API, NULL,
          "users, by email prefix, paginated"),
    ROUTE(HTTP_PATCH, "/api/v1/admin/users/:id", api_admin_user_patch, JSON | ADMIN, RATE_API,
          &api_admin_user_schema, "change a user's role or disable them"),
    ROUTE(HTTP_GET, "/api/v1/admin/jobs", api_admin_jobs, ADMIN, RATE_API, NULL,
          "jobs by status and type"),
    ROUTE(HTTP_POST, "/api/v1/admin/jobs/:id/retry", api_admin_job_retry, ADMIN, RATE_API, NULL,
          "run a dead, cancelled or finished job again"),
    ROUTE(HTTP_POST, "/api/v1/admin/jobs/:id/cancel", api_admin_job_cancel, ADMIN, RATE_API, NULL,
          "cancel a queued or running job"),
};

const size_t api_n_routes = sizeof(api_routes) / sizeof(api_routes[0]);
