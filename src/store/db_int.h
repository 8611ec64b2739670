/*
 * db_int.h - private to src/store: the backend table and the shapes shared by
 * db.c and the backends. Nobody outside src/store includes this.
 */
#ifndef LOCI_STORE_DB_INT_H
#define LOCI_STORE_DB_INT_H

#include "core/buf.h"
#include "store/db.h"

#include <pthread.h>

#define DB_MAX_PARAMS 64
#define DB_STMT_CACHE 64

enum db_ptype { DBP_NULL, DBP_INT, DBP_DOUBLE, DBP_TEXT, DBP_BLOB };

struct db_param {
    enum db_ptype type;
    int64_t i;
    double d;
    const char *p;
    size_t n;
};

struct db_stmt {
    struct db_conn *conn;
    const char *sql; /* borrowed, the cache key */
    bool is_cached;  /* lives in conn->cache */
    bool in_use;
    bool started; /* first db_step() done */
    int n_params;
    struct db_param params[DB_MAX_PARAMS];
    int64_t changes;
    void *be; /* backend statement state */
};

struct db_conn {
    struct db *db;
    int slot;       /* index in the pool */
    bool is_broken; /* reconnect before next use */
    char errmsg[512];
    struct db_stmt *cache[DB_STMT_CACHE];
    void *be; /* backend connection */
};

struct db_ops {
    const char *name;
    int (*connect)(struct db *db, struct db_conn *c, char *err, size_t err_n);
    void (*disconnect)(struct db_conn *c);
    int (*prepare)(struct db_conn *c, struct db_stmt *st);
    void (*finalize)(struct db_stmt *st);
    int (*step)(struct db_stmt *st);
    void (*reset)(struct db_stmt *st);
    int (*col_count)(struct db_stmt *st);
    bool (*col_is_null)(struct db_stmt *st, int col);
    int64_t (*col_int64)(struct db_stmt *st, int col);
    double (*col_double)(struct db_stmt *st, int col);
    const char *(*col_text)(struct db_stmt *st, int col, size_t *out_len);
    const void *(*col_blob)(struct db_stmt *st, int col, size_t *out_len);
    int (*exec)(struct db_conn *c, const char *sql);
    const char *begin_sql;
    int (*xact_lock)(struct db_conn *c, int64_t key);
    int (*try_session_lock)(struct db_conn *c, int64_t key, bool *out_locked);
};

extern const struct db_ops db__sqlite_ops;
extern const struct db_ops db__pg_ops;

struct db {
    const struct db_ops *ops;
    enum db_backend backend;
    char *target; /* SQLite path or libpq conninfo */
    int pool_size;
    pthread_mutex_t mu; /* guards conns[] and is_free[] */
    pthread_cond_t cv;
    struct db_conn **conns;
    bool *is_free;
};

/* Count `?` placeholders outside quotes and comments. */
int db__count_params(const char *sql);
/* Rewrite `?` to `$1..$n` (PostgreSQL) into out. */
int db__rewrite_placeholders(const char *sql, struct buf *out);
void db__set_error(struct db_conn *c, const char *msg);
/* Record a query duration in the db metrics. */
void db__observe(const struct db *db, double seconds);

/* Embedded migrations (generated from migrations/<backend>/NNNN_name.sql). */
struct db_migration {
    int64_t version;
    const char *name;
    const char *sql;
};
extern const struct db_migration db__migrations_sqlite[];
extern const size_t db__n_migrations_sqlite;
extern const struct db_migration db__migrations_postgres[];
extern const size_t db__n_migrations_postgres;

#endif
