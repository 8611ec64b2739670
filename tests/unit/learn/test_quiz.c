/*
 * test_quiz.c - quizzes from a known text, on SQLite and PostgreSQL: every
 * stored question's key passes the check against its stored source passage,
 * cloze sentences come from the learner's document with the term blanked,
 * multiple choice gets offline distractors from the same cluster, weakest
 * nodes come first, a deliberately broken question (a key not in its
 * source) is dropped, grading by kind with the documented ratings, answers
 * are taken once, and another user's quiz, nodes and document are not
 * found.
 */
#include "core/alloc.h"
#include "core/err.h"
#include "harness.h"
#include "learn/quiz.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#define DOC "01900000-0000-7000-8000-00000000d0c1"

static void exec_sql(struct db *db, const char *q)
{
    struct db_conn *c = NULL;
    CHECK_INT(db_acquire(db, &c), ==, LOCI_OK);
    if (db_exec(c, q))
        harness_fail(__FILE__, __LINE__, "%s: %s", q, db_errmsg(c));
    db_release(c);
}

TEST(the_check_and_a_broken_question_dropped)
{
    CHECK(learn_quiz_key_supported("chlorophyll", "Leaves hold Chlorophyll, a green pigment."));
    CHECK(learn_quiz_key_supported("light reactions",
                                   "The light reaction splits water in the thylakoid."));
    CHECK(!learn_quiz_key_supported("ribosome", "Leaves hold chlorophyll, a green pigment."));
    CHECK(!learn_quiz_key_supported("the", "the the the")); /* no content word */
    CHECK(!learn_quiz_key_supported(NULL, "x"));

    struct learn_question qs[3] = {0};
    const char *keys[] = {"glucose", "ribosome", "oxygen"};
    /* Built the way the builder builds them, the middle one broken: its key
     * is not in its source passage. */
    for (int i = 0; i < 3; i++) {
        qs[i].kind = LEARN_Q_CLOZE;
        qs[i].term = xstrdup(keys[i]);
        qs[i].answer_key = xstrdup(keys[i]);
        qs[i].prompt = xstrdup("_____");
        qs[i].source_passage =
            xstrdup("Photosynthesis makes glucose and releases oxygen from water.");
        qs[i].source_ref = json_object();
    }
    CHECK_INT(learn_quiz_keep_checked(qs, 3), ==, 2);
    CHECK_STR(qs[0].answer_key, "glucose");
    CHECK_STR(qs[1].answer_key, "oxygen");
    CHECK(qs[2].answer_key == NULL); /* released */
    learn_question_release(&qs[0]);
    learn_question_release(&qs[1]);
}

struct created {
    const char *user;
    struct learn_quiz_scope scope;
    int n;
    unsigned kinds;
    char id[UUID_STR_LEN];
    const char *field;
};

static int tx_create(struct db_conn *c, void *arg)
{
    struct created *q = arg;
    return learn_quiz_create(c, q->user, &q->scope, q->n, q->kinds, 1000, q->id, &q->field);
}

struct answered {
    const char *user, *quiz, *question;
    json_t *answer;
    int64_t duration_ms;
    json_t *out;
    const char *field;
};

static int tx_answer(struct db_conn *c, void *arg)
{
    struct answered *a = arg;
    json_decref(a->out);
    a->out = NULL;
    return learn_quiz_answer(c, a->user, a->quiz, a->question, a->answer, a->duration_ms, 2000,
                             &a->out, &a->field);
}

static int answer(struct db *db, const char *user, const char *quiz, const char *question,
                  json_t *value, int64_t duration_ms, json_t **out)
{
    struct answered a = {user, quiz, question, value, duration_ms, NULL, NULL};
    int rc = db_tx(db, tx_answer, &a);
    json_decref(value);
    if (out)
        *out = a.out;
    else
        json_decref(a.out);
    return rc;
}

static json_t *get_quiz(struct db *db, const char *user, const char *id, int *rc)
{
    struct db_conn *c = NULL;
    CHECK_INT(db_acquire(db, &c), ==, LOCI_OK);
    json_t *q = NULL;
    *rc = learn_quiz_json(c, user, id, &q);
    db_release(c);
    return q;
}

static void seed(struct db *db)
{
    exec_sql(db, "INSERT INTO users (id, email, email_norm, password_hash, created_at, updated_at) "
                 "VALUES ('u1', 'a@x', 'a@x', 'h', 0, 0), ('u2', 'b@x', 'b@x', 'h', 0, 0)");
    exec_sql(db, "INSERT INTO documents (id, user_id, filename, media_type, size_bytes, sha256, "
                 "status, created_at, updated_at) VALUES ('" DOC "', 'u1', 'bio.md', "
                 "'text/markdown', 10, 'abc', 'done', 0, 0)");
    exec_sql(db, "INSERT INTO chunks (id, user_id, document_id, ord, text, created_at) VALUES "
                 "('k1', 'u1', '" DOC "', 0, 'Plants capture light with chlorophyll in their "
                 "leaves. Photosynthesis turns carbon dioxide and water into glucose. The "
                 "mitochondria then burn glucose to release energy.', 0), "
                 "('k2', 'u1', '" DOC "', 1, 'Enzymes such as rubisco fix carbon dioxide in the "
                 "stroma of the chloroplast.', 0)");
    /* Familiarity orders them: glucose is the weakest. */
    exec_sql(db,
             "INSERT INTO nodes (id, user_id, term, key, summary, familiarity, cluster, "
             "created_at, updated_at) VALUES "
             "('01900000-0000-7000-8000-000000000001', 'u1', 'Chlorophyll', 'chlorophyl', "
             "'The green pigment that absorbs light for photosynthesis.', 0.6, 'c1', 0, 0), "
             "('01900000-0000-7000-8000-000000000002', 'u1', 'Photosynthesis', 'photosynthesi', "
             "'How plants make glucose from light, water and carbon dioxide.', 0.4, 'c1', 0, 0), "
             "('01900000-0000-7000-8000-000000000003', 'u1', 'Glucose', 'glucos', "
             "'A simple sugar that cells burn for energy.', 0.1, 'c1', 0, 0), "
             "('01900000-0000-7000-8000-000000000004', 'u1', 'Mitochondria', 'mitochondria', "
             "'The organelles that release energy from glucose.', 0.9, 'c1', 0, 0), "
             "('01900000-0000-7000-8000-000000000005', 'u1', 'Rubisco', 'rubisco', "
             "'The enzyme that fixes carbon dioxide.', 0.5, 'c1', 0, 0), "
             "('01900000-0000-7000-8000-000000000009', 'u2', 'Secret', 'secret', "
             "'Bob only.', 0, NULL, 0, 0)");
}

static const char *qstr(json_t *q, const char *k)
{
    return json_string_value(json_object_get(q, k));
}

static void stored(struct db *db)
{
    seed(db);
    /* A quiz from the document, every kind. */
    struct created q = {.user = "u1", .scope = {.document_id = DOC}, .n = 10, .kinds = LEARN_Q_ALL};
    CHECK_INT(db_tx(db, tx_create, &q), ==, LOCI_OK);
    int rc;
    json_t *quiz = get_quiz(db, "u1", q.id, &rc);
    CHECK_INT(rc, ==, LOCI_OK);
    CHECK_STR(qstr(quiz, "status"), "building");
    json_decref(quiz);
    CHECK_INT(learn_quiz_build(db, NULL, "u1", q.id, NULL), ==, LOCI_OK);
    /* Building again leaves a ready quiz alone. */
    CHECK_INT(learn_quiz_build(db, NULL, "u1", q.id, NULL), ==, LOCI_OK);
    quiz = get_quiz(db, "u1", q.id, &rc);
    CHECK_STR(qstr(quiz, "status"), "ready");
    json_t *questions = json_object_get(quiz, "questions");
    /* Nodes whose term the document holds: all five of u1's. */
    CHECK_INT(json_array_size(questions), ==, 5);
    CHECK_STR(qstr(json_array_get(questions, 0), "node_id"),
              "01900000-0000-7000-8000-000000000003");
    size_t i;
    json_t *x;
    int kinds_seen = 0;
    json_array_foreach(questions, i, x)
    {
        CHECK(json_is_null(json_object_get(x, "result"))); /* no key before the answer */
        CHECK(!json_object_get(x, "answer_key") && !json_object_get(x, "source_passage"));
        const char *kind = qstr(x, "kind");
        if (strcmp(kind, "cloze") == 0 || strcmp(kind, "mc") == 0)
            CHECK(strstr(qstr(x, "prompt"), "_____") != NULL);
        if (strcmp(kind, "mc") == 0) {
            json_t *ch = json_object_get(x, "choices");
            CHECK_INT(json_array_size(ch), ==, 4);
        }
        kinds_seen |= (int)learn_quiz_kind_parse(kind);
    }
    CHECK_INT(kinds_seen, ==, LEARN_Q_ALL);
    json_decref(quiz);

    /* Every stored key is supported by its stored passage. */
    {
        struct db_conn *c = NULL;
        CHECK_INT(db_acquire(db, &c), ==, LOCI_OK);
        struct db_stmt *st = NULL;
        CHECK_INT(db_prepare(c,
                             "SELECT kind, answer_key, source_passage, source_ref, prompt FROM "
                             "quiz_questions WHERE quiz_id = ?",
                             &st),
                  ==, LOCI_OK);
        db_bind_text(st, 1, q.id, (size_t)-1);
        int n = 0;
        while (db_step(st) == LOCI_ROW) {
            n++;
            const char *kind = db_col_text(st, 0, NULL), *key = db_col_text(st, 1, NULL);
            const char *passage = db_col_text(st, 2, NULL);
            CHECK(learn_quiz_key_supported(key, passage));
            if (strcmp(kind, "definition") != 0) {
                CHECK(strstr(passage, key) != NULL);
                CHECK(strstr(db_col_text(st, 3, NULL), "\"chunk\"") != NULL);
                CHECK(strstr(db_col_text(st, 4, NULL), key) == NULL);
            }
        }
        db_stmt_done(st);
        db_release(c);
        CHECK_INT(n, ==, 5);
    }

    /* Grading. */
    quiz = get_quiz(db, "u1", q.id, &rc);
    questions = json_object_get(quiz, "questions");
    int graded = 0;
    json_array_foreach(questions, i, x)
    {
        const char *kind = qstr(x, "kind"), *qid = qstr(x, "id");
        json_t *out = NULL;
        if (strcmp(kind, "mc") == 0) {
            /* Not a choice: 422; then a wrong choice. */
            CHECK_INT(answer(db, "u1", q.id, qid, json_string("nonsense"), -1, NULL), ==,
                      LOCI_EUNPROCESSABLE);
            CHECK_INT(answer(db, "u1", q.id, qid, json_integer(9), -1, NULL), ==,
                      LOCI_EUNPROCESSABLE);
            CHECK_INT(answer(db, "u1", q.id, qid, json_integer(0), 5000, &out), ==, LOCI_OK);
            bool ok = json_is_true(json_object_get(out, "is_correct"));
            CHECK_INT(json_integer_value(json_object_get(out, "rating")), ==, ok ? 4 : 1);
        } else if (strcmp(kind, "cloze") == 0) {
            /* The stored key, written differently, is right: rating 3 without a duration. */
            struct db_conn *c = NULL;
            CHECK_INT(db_acquire(db, &c), ==, LOCI_OK);
            struct db_stmt *st = NULL;
            CHECK_INT(db_prepare(c, "SELECT answer_key FROM quiz_questions WHERE id = ?", &st), ==,
                      LOCI_OK);
            db_bind_text(st, 1, qid, (size_t)-1);
            CHECK_INT(db_step(st), ==, LOCI_ROW);
            char upper[128];
            snprintf(upper, sizeof(upper), "  %s  ", db_col_text(st, 0, NULL));
            for (char *p = upper; *p; p++)
                *p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
            db_stmt_done(st);
            db_release(c);
            CHECK_INT(answer(db, "u1", q.id, qid, json_string(upper), -1, &out), ==, LOCI_OK);
            CHECK(json_is_true(json_object_get(out, "is_correct")));
            CHECK_INT(json_integer_value(json_object_get(out, "rating")), ==, 3);
        } else {
            /* A definition with no overlap is wrong (rating 1). */
            CHECK_INT(answer(db, "u1", q.id, qid, json_integer(3), -1, NULL), ==,
                      LOCI_EUNPROCESSABLE);
            CHECK_INT(answer(db, "u1", q.id, qid, json_string("no idea at all"), 1000, &out), ==,
                      LOCI_OK);
            CHECK(json_is_false(json_object_get(out, "is_correct")));
            CHECK_INT(json_integer_value(json_object_get(out, "rating")), ==, 1);
            CHECK(strstr(json_string_value(json_object_get(out, "explanation")), "The answer is") !=
                  NULL);
        }
        CHECK(json_string_value(json_object_get(out, "source_passage")) != NULL);
        CHECK(json_string_value(json_object_get(out, "answer_key")) != NULL);
        graded++;
        CHECK_INT(json_integer_value(json_object_get(json_object_get(out, "quiz"), "answered")), ==,
                  graded);
        json_decref(out);
        /* Once only. */
        CHECK_INT(answer(db, "u1", q.id, qid, json_string("again"), -1, NULL), ==, LOCI_ECONFLICT);
        /* Another user: not found. */
        CHECK_INT(answer(db, "u2", q.id, qid, json_string("x"), -1, NULL), ==, LOCI_ENOTFOUND);
    }
    json_decref(quiz);
    /* Each graded answer is one FSRS review of its node, from the quiz. */
    {
        struct db_conn *c = NULL;
        CHECK_INT(db_acquire(db, &c), ==, LOCI_OK);
        struct db_stmt *st = NULL;
        CHECK_INT(db_prepare(c,
                             "SELECT COUNT(*), COUNT(DISTINCT node_id) FROM reviews WHERE "
                             "user_id = 'u1' AND source = 'quiz'",
                             &st),
                  ==, LOCI_OK);
        CHECK_INT(db_step(st), ==, LOCI_ROW);
        CHECK_INT(db_col_int64(st, 0), ==, 5);
        CHECK_INT(db_col_int64(st, 1), ==, 5);
        db_stmt_done(st);
        CHECK_INT(db_prepare(c, "SELECT COUNT(*) FROM cards WHERE user_id = 'u1'", &st), ==,
                  LOCI_OK);
        CHECK_INT(db_step(st), ==, LOCI_ROW);
        CHECK_INT(db_col_int64(st, 0), ==, 5);
        db_stmt_done(st);
        db_release(c);
    }
    CHECK_INT(
        answer(db, "u1", q.id, "01900000-0000-7000-8000-0000000000ff", json_string("x"), -1, NULL),
        ==, LOCI_ENOTFOUND);
    quiz = get_quiz(db, "u2", q.id, &rc);
    CHECK_INT(rc, ==, LOCI_ENOTFOUND);

    /* A definition answered well: half of the key's content words. */
    const char *ids[] = {"01900000-0000-7000-8000-000000000004"};
    struct created d = {.user = "u1",
                        .scope = {.node_ids = ids, .n_node_ids = 1},
                        .n = 1,
                        .kinds = LEARN_Q_DEFINITION};
    CHECK_INT(db_tx(db, tx_create, &d), ==, LOCI_OK);
    CHECK_INT(learn_quiz_build(db, NULL, "u1", d.id, NULL), ==, LOCI_OK);
    quiz = get_quiz(db, "u1", d.id, &rc);
    json_t *dq = json_array_get(json_object_get(quiz, "questions"), 0);
    CHECK_STR(qstr(dq, "kind"), "definition");
    json_t *out = NULL;
    CHECK_INT(answer(db, "u1", d.id, qstr(dq, "id"), json_string("organelle releasing energy"),
                     20000, &out),
              ==, LOCI_OK);
    CHECK(json_is_true(json_object_get(out, "is_correct")));
    CHECK_INT(json_integer_value(json_object_get(out, "rating")), ==, 4);
    json_decref(out);
    json_decref(quiz);

    /* Bad scopes: another user's node, document or cluster; no material. */
    const char *theirs[] = {"01900000-0000-7000-8000-000000000009"};
    struct created bad = {
        .user = "u1", .scope = {.node_ids = theirs, .n_node_ids = 1}, .n = 1, .kinds = LEARN_Q_ALL};
    CHECK_INT(db_tx(db, tx_create, &bad), ==, LOCI_ENOTFOUND);
    CHECK_STR(bad.field, "node_ids");
    bad = (struct created){.user = "u2", .scope = {.document_id = DOC}, .n = 1, .kinds = 1};
    CHECK_INT(db_tx(db, tx_create, &bad), ==, LOCI_ENOTFOUND);
    CHECK_STR(bad.field, "document_id");
    bad = (struct created){.user = "u1", .scope = {.cluster_id = "c1"}, .n = 1, .kinds = 1};
    CHECK_INT(db_tx(db, tx_create, &bad), ==, LOCI_ENOTFOUND); /* no clusters row */
    CHECK_STR(bad.field, "cluster_id");
    bad = (struct created){.user = "nobody", .n = 1, .kinds = 1};
    CHECK_INT(db_tx(db, tx_create, &bad), ==, LOCI_EUNPROCESSABLE);
    bad = (struct created){.user = "u1", .n = 0, .kinds = 1};
    CHECK_INT(db_tx(db, tx_create, &bad), ==, LOCI_EINVAL);
    bad = (struct created){.user = "u1", .n = 51, .kinds = 1};
    CHECK_INT(db_tx(db, tx_create, &bad), ==, LOCI_EINVAL);

    /* Bob's lone node with a two-word summary: no question survives. */
    bad = (struct created){.user = "u2", .n = 3, .kinds = LEARN_Q_ALL};
    CHECK_INT(db_tx(db, tx_create, &bad), ==, LOCI_OK);
    CHECK_INT(learn_quiz_build(db, NULL, "u2", bad.id, NULL), ==, LOCI_OK);
    quiz = get_quiz(db, "u2", bad.id, &rc);
    CHECK_STR(qstr(quiz, "status"), "failed");
    CHECK_INT(json_array_size(json_object_get(quiz, "questions")), ==, 0);
    json_decref(quiz);
}

TEST(quizzes_on_both_backends)
{
    const char *urls[2];
    int n = harness_db_urls("quiz", urls);
    for (int i = 0; i < n; i++) {
        struct db *db = NULL;
        char err[256];
        if (db_open(urls[i], 4, &db, err, sizeof(err)) ||
            db_migrate(db, &(int){0}, err, sizeof(err)))
            harness_fail(__FILE__, __LINE__, "db: %s", err);
        stored(db);
        db_close(db);
    }
}
