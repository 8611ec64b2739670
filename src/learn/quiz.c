/*
 * quiz.c - building, showing and grading quizzes (rules in quiz.h).
 *
 * Building runs in the `quiz.build` job because multiple-choice
 * distractors may come from the model; everything else reads the
 * learner's rows. Questions are checked before they are stored, so a
 * stored question's key is always supported by its stored passage.
 */
#include "learn/quiz.h"

#include "core/alloc.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/err.h"
#include "events/events.h"
#include "graph/graph.h"
#include "learn/cluster.h"
#include "learn/learn.h"
#include "services/ai/ai.h"
#include "services/jobs/jobs.h"
#include "services/text/text.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#define CANDIDATES_MAX 200 /* nodes considered for one quiz */
#define SENTENCE_MIN   20  /* bytes of a usable cloze sentence */
#define SENTENCE_MAX   500
#define BLANK          "_____"
#define DISTRACTORS    3
#define CHOICE_MAX     200 /* bytes of a model-written distractor */

static const char *const kind_names[] = {"cloze", "mc", "definition"};

unsigned learn_quiz_kind_parse(const char *name)
{
    for (unsigned i = 0; name && i < 3; i++)
        if (strcmp(name, kind_names[i]) == 0)
            return 1u << i;
    return 0;
}

static const char *kind_name(unsigned k)
{
    return k == LEARN_Q_CLOZE ? "cloze" : k == LEARN_Q_MC ? "mc" : "definition";
}

void learn_question_release(struct learn_question *q)
{
    if (!q)
        return;
    xfree(q->term);
    xfree(q->prompt);
    json_decref(q->choices);
    xfree(q->answer_key);
    xfree(q->source_passage);
    json_decref(q->source_ref);
    memset(q, 0, sizeof(*q));
}

/* ---- the check ---- */

/* The distinct content-word stems of text into set (stem -> true). */
static int content_stems(const char *text, json_t *set)
{
    struct text_doc d;
    int rc = text_segment(text, strlen(text), 0, &d);
    if (rc)
        return rc;
    for (size_t i = 0; i < d.n_tokens; i++) {
        const struct text_token *t = &d.tokens[i];
        if (!t->is_word || t->is_stop)
            continue;
        char stem[TEXT_MAX_WORD_BYTES * 4 + 1];
        size_t n = t->stem_n < sizeof(stem) - 1 ? t->stem_n : sizeof(stem) - 1;
        memcpy(stem, t->stem, n);
        stem[n] = '\0';
        json_object_set_new(set, stem, json_true());
    }
    text_doc_release(&d);
    return LOCI_OK;
}

bool learn_quiz_key_supported(const char *key, const char *passage)
{
    if (!key || !passage)
        return false;
    json_t *k = json_object(), *p = json_object();
    bool ok = content_stems(key, k) == LOCI_OK && content_stems(passage, p) == LOCI_OK &&
              json_object_size(k) > 0;
    const char *stem;
    json_t *v;
    json_object_foreach(k, stem, v)
    {
        if (!json_object_get(p, stem))
            ok = false;
    }
    json_decref(k);
    json_decref(p);
    return ok;
}

size_t learn_quiz_keep_checked(struct learn_question *qs, size_t n)
{
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        if (!learn_quiz_key_supported(qs[i].answer_key, qs[i].source_passage)) {
            learn_question_release(&qs[i]);
            continue;
        }
        if (kept != i) {
            qs[kept] = qs[i];
            memset(&qs[i], 0, sizeof(qs[i]));
        }
        kept++;
    }
    return kept;
}

/* ---- creating ---- */

static int user_owns(struct db_conn *c, const char *sql, const char *user_id, const char *id)
{
    struct db_stmt *st = NULL;
    int rc = db_prepare(c, sql, &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, id, (size_t)-1);
    db_bind_text(st, 2, user_id, (size_t)-1);
    rc = db_step(st);
    db_stmt_done(st);
    if (rc == LOCI_ROW)
        return LOCI_OK;
    return rc ? rc : LOCI_ENOTFOUND;
}

static json_t *scope_json(const struct learn_quiz_scope *s)
{
    json_t *o = json_object();
    if (s->n_node_ids) {
        json_t *ids = json_array();
        for (size_t i = 0; i < s->n_node_ids; i++)
            json_array_append_new(ids, json_string(s->node_ids[i]));
        json_object_set_new(o, "node_ids", ids);
    }
    if (s->document_id)
        json_object_set_new(o, "document_id", json_string(s->document_id));
    if (s->cluster_id)
        json_object_set_new(o, "cluster_id", json_string(s->cluster_id));
    return o;
}

static int scope_has_nodes(struct db_conn *c, const char *user_id, const struct learn_quiz_scope *s,
                           bool *out)
{
    *out = s->n_node_ids > 0;
    if (*out)
        return LOCI_OK;
    struct db_stmt *st = NULL;
    int rc;
    if (s->cluster_id)
        rc = db_prepare(c, "SELECT 1 FROM nodes WHERE user_id = ? AND cluster = ? LIMIT 1", &st);
    else if (s->document_id)
        rc = db_prepare(c,
                        "SELECT 1 FROM nodes n WHERE n.user_id = ? AND EXISTS (SELECT 1 FROM "
                        "chunks k WHERE k.user_id = n.user_id AND k.document_id = ? AND "
                        "LOWER(k.text) LIKE '%' || LOWER(n.term) || '%') LIMIT 1",
                        &st);
    else
        rc = db_prepare(c, "SELECT 1 FROM nodes WHERE user_id = ? LIMIT 1", &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, user_id, (size_t)-1);
    if (s->cluster_id)
        db_bind_text(st, 2, s->cluster_id, (size_t)-1);
    else if (s->document_id)
        db_bind_text(st, 2, s->document_id, (size_t)-1);
    rc = db_step(st);
    db_stmt_done(st);
    *out = rc == LOCI_ROW;
    return rc == LOCI_ROW ? LOCI_OK : rc;
}

int learn_quiz_create(struct db_conn *c, const char *user_id, const struct learn_quiz_scope *scope,
                      int n, unsigned kinds, int64_t now, char out_id[UUID_STR_LEN],
                      const char **out_field)
{
    *out_field = NULL;
    if (n < 1 || n > LEARN_QUIZ_MAX || kinds == 0 || (kinds & ~(unsigned)LEARN_Q_ALL) ||
        scope->n_node_ids > LEARN_QUIZ_NODE_IDS)
        return LOCI_EINVAL;
    int rc = LOCI_OK;
    for (size_t i = 0; rc == LOCI_OK && i < scope->n_node_ids; i++) {
        rc = user_owns(c, "SELECT 1 FROM nodes WHERE id = ? AND user_id = ?", user_id,
                       scope->node_ids[i]);
        if (rc == LOCI_ENOTFOUND)
            *out_field = "node_ids";
    }
    if (rc == LOCI_OK && scope->document_id) {
        rc = user_owns(c, "SELECT 1 FROM documents WHERE id = ? AND user_id = ?", user_id,
                       scope->document_id);
        if (rc == LOCI_ENOTFOUND)
            *out_field = "document_id";
    }
    if (rc == LOCI_OK && scope->cluster_id) {
        rc = learn_cluster_exists(c, user_id, scope->cluster_id);
        if (rc == LOCI_ENOTFOUND)
            *out_field = "cluster_id";
    }
    if (rc)
        return rc;
    bool has_nodes = false;
    if ((rc = scope_has_nodes(c, user_id, scope, &has_nodes)) != LOCI_OK)
        return rc;
    if (!has_nodes)
        return LOCI_EUNPROCESSABLE;
    ids_uuid7(out_id);
    json_t *sj = scope_json(scope);
    json_t *kj = json_array();
    for (unsigned i = 0; i < 3; i++)
        if (kinds & (1u << i))
            json_array_append_new(kj, json_string(kind_names[i]));
    char *s_text = json_dumps(sj, JSON_COMPACT), *k_text = json_dumps(kj, JSON_COMPACT);
    struct db_stmt *st = NULL;
    rc = db_prepare(c,
                    "INSERT INTO quizzes (id, user_id, status, scope, kinds, n, created_at, "
                    "updated_at) VALUES (?, ?, 'building', ?, ?, ?, ?, ?)",
                    &st);
    if (rc == LOCI_OK) {
        db_bind_text(st, 1, out_id, (size_t)-1);
        db_bind_text(st, 2, user_id, (size_t)-1);
        db_bind_text(st, 3, s_text, (size_t)-1);
        db_bind_text(st, 4, k_text, (size_t)-1);
        db_bind_int64(st, 5, n);
        db_bind_int64(st, 6, now);
        db_bind_int64(st, 7, now);
        rc = db_run(st, NULL);
    }
    if (rc == LOCI_OK) {
        json_t *payload = json_pack("{s:s}", "quiz_id", out_id);
        struct jobs_spec spec = {.type = "quiz.build", .payload = payload, .user_id = user_id};
        char job_id[UUID_STR_LEN];
        rc = jobs_enqueue(c, &spec, job_id, NULL);
        json_decref(payload);
    }
    xfree(s_text);
    xfree(k_text);
    json_decref(sj);
    json_decref(kj);
    return rc;
}

/* ---- building ---- */

struct cand {
    char id[UUID_STR_LEN];
    char *term;
    char *summary;
    char *cluster; /* NULL: none */
    double familiarity;
    int64_t updated_at;
};

struct build {
    struct db_conn *c;
    struct ai *ai;
    const char *user_id;
    const char *quiz_id;
    const struct log_ctx *log;
    const char *document_id; /* passages only from this document */
    struct cand *cands;
    size_t n_cands;
};

static void cands_release(struct cand *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        xfree(v[i].term);
        xfree(v[i].summary);
        xfree(v[i].cluster);
    }
    xfree(v);
}

static void cand_from_row(struct db_stmt *st, struct cand *x)
{
    snprintf(x->id, sizeof(x->id), "%s", db_col_text(st, 0, NULL));
    x->term = xstrdup(db_col_text(st, 1, NULL));
    x->summary = xstrdup(db_col_text(st, 2, NULL));
    x->cluster = db_col_is_null(st, 3) ? NULL : xstrdup(db_col_text(st, 3, NULL));
    x->familiarity = db_col_double(st, 4);
    x->updated_at = db_col_int64(st, 5);
}

static int by_weakness(const void *a, const void *b)
{
    const struct cand *x = a, *y = b;
    if (x->familiarity != y->familiarity)
        return x->familiarity < y->familiarity ? -1 : 1;
    if (x->updated_at != y->updated_at)
        return x->updated_at < y->updated_at ? -1 : 1;
    return strcmp(x->id, y->id);
}

/* The scope's nodes, weakest (lowest familiarity) first. */
static int load_candidates(struct build *b, const json_t *scope)
{
    const json_t *ids = json_object_get(scope, "node_ids");
    const char *cluster = json_string_value(json_object_get(scope, "cluster_id"));
    b->document_id = json_string_value(json_object_get(scope, "document_id"));
    b->cands = xcalloc(CANDIDATES_MAX, sizeof(*b->cands));
    struct db_stmt *st = NULL;
    int rc = LOCI_OK;
    if (ids) {
        /* The named nodes (checked at creation; a deleted one is skipped). */
        size_t i;
        json_t *v;
        json_array_foreach(ids, i, v)
        {
            if (rc || b->n_cands == CANDIDATES_MAX)
                break;
            rc = db_prepare(b->c,
                            "SELECT id, term, summary, cluster, familiarity, updated_at FROM "
                            "nodes WHERE user_id = ? AND id = ?",
                            &st);
            if (rc)
                break;
            db_bind_text(st, 1, b->user_id, (size_t)-1);
            db_bind_text(st, 2, json_string_value(v), (size_t)-1);
            rc = db_step(st);
            if (rc == LOCI_ROW) {
                cand_from_row(st, &b->cands[b->n_cands++]);
                rc = LOCI_OK;
            }
            db_stmt_done(st);
        }
        if (rc == LOCI_OK && b->n_cands > 1)
            qsort(b->cands, b->n_cands, sizeof(*b->cands), by_weakness);
        return rc;
    }
    if (cluster) {
        rc = db_prepare(b->c,
                        "SELECT id, term, summary, cluster, familiarity, updated_at FROM nodes "
                        "WHERE user_id = ? AND cluster = ? ORDER BY familiarity, updated_at, id "
                        "LIMIT 200",
                        &st);
    } else if (b->document_id) {
        rc = db_prepare(b->c,
                        "SELECT n.id, n.term, n.summary, n.cluster, n.familiarity, n.updated_at "
                        "FROM nodes n WHERE n.user_id = ? AND EXISTS (SELECT 1 FROM chunks k "
                        "WHERE k.user_id = n.user_id AND k.document_id = ? AND LOWER(k.text) "
                        "LIKE '%' || LOWER(n.term) || '%') "
                        "ORDER BY n.familiarity, n.updated_at, n.id LIMIT 200",
                        &st);
    } else {
        rc = db_prepare(b->c,
                        "SELECT id, term, summary, cluster, familiarity, updated_at FROM nodes "
                        "WHERE user_id = ? ORDER BY familiarity, updated_at, id LIMIT 200",
                        &st);
    }
    if (rc)
        return rc;
    db_bind_text(st, 1, b->user_id, (size_t)-1);
    if (cluster)
        db_bind_text(st, 2, cluster, (size_t)-1);
    else if (b->document_id)
        db_bind_text(st, 2, b->document_id, (size_t)-1);
    while ((rc = db_step(st)) == LOCI_ROW)
        if (b->n_cands < CANDIDATES_MAX)
            cand_from_row(st, &b->cands[b->n_cands++]);
    db_stmt_done(st);
    return rc;
}

/* Case-insensitive (ASCII) search for needle in hay[0..n): offset or -1.
 * Only whole-word matches count. */
static long find_term(const char *hay, size_t n, const char *needle)
{
    size_t m = strlen(needle);
    if (m == 0 || m > n)
        return -1;
    for (size_t i = 0; i + m <= n; i++) {
        if (strncasecmp(hay + i, needle, m) != 0)
            continue;
        bool left = i == 0 || !isalnum((unsigned char)hay[i - 1]);
        bool right = i + m == n || !isalnum((unsigned char)hay[i + m]);
        if (left && right)
            return (long)i;
    }
    return -1;
}

struct passage {
    char *sentence; /* the source passage */
    long at;        /* where the term is in it */
    size_t term_n;
    json_t *ref;
};

static void passage_release(struct passage *p)
{
    xfree(p->sentence);
    json_decref(p->ref);
    memset(p, 0, sizeof(*p));
}

/* The first sentence of text holding term with some other words. */
static bool sentence_with(const char *text, const char *term, struct passage *out)
{
    struct text_doc d;
    if (text_segment(text, strlen(text), TEXT_SEG_SENTENCES, &d))
        return false;
    bool found = false;
    for (size_t i = 0; i < d.n_sentences && !found; i++) {
        size_t len = d.sentences[i].end - d.sentences[i].start;
        const char *s = text + d.sentences[i].start;
        if (len < SENTENCE_MIN || len > SENTENCE_MAX || len < strlen(term) + 10)
            continue;
        long at = find_term(s, len, term);
        if (at < 0)
            continue;
        struct buf line;
        buf_init(&line, SENTENCE_MAX * 2);
        if (text_clean_line(s, len, &line) == LOCI_OK) {
            long at2 = find_term(line.p, line.len, term);
            if (at2 >= 0) {
                out->sentence = xstrdup(buf_cstr(&line));
                out->at = at2;
                out->term_n = strlen(term);
                found = true;
            }
        }
        buf_release(&line);
    }
    text_doc_release(&d);
    return found;
}

/* A sentence of the learner's own material holding the node's term: the
 * documents' chunks first (the quiz's document only, when it has one),
 * then the node's summary. */
static int find_passage(struct build *b, const struct cand *x, struct passage *out)
{
    memset(out, 0, sizeof(*out));
    struct buf pat;
    buf_init(&pat, 1024);
    buf_printf(&pat, "%%%s%%", x->term);
    for (size_t i = 0; i < pat.len; i++)
        pat.p[i] = (char)tolower((unsigned char)pat.p[i]);
    struct db_stmt *st = NULL;
    int rc;
    if (b->document_id)
        rc = db_prepare(b->c,
                        "SELECT id, document_id, text FROM chunks WHERE user_id = ? AND "
                        "document_id = ? AND LOWER(text) LIKE ? ORDER BY ord LIMIT 5",
                        &st);
    else
        rc = db_prepare(b->c,
                        "SELECT id, document_id, text FROM chunks WHERE user_id = ? AND "
                        "LOWER(text) LIKE ? ORDER BY created_at, document_id, ord LIMIT 5",
                        &st);
    if (rc) {
        buf_release(&pat);
        return rc;
    }
    int i = 1;
    db_bind_text(st, i++, b->user_id, (size_t)-1);
    if (b->document_id)
        db_bind_text(st, i++, b->document_id, (size_t)-1);
    db_bind_text(st, i, buf_cstr(&pat), (size_t)-1);
    while ((rc = db_step(st)) == LOCI_ROW) {
        if (out->sentence)
            continue;
        if (sentence_with(db_col_text(st, 2, NULL), x->term, out))
            out->ref = json_pack("{s:s, s:s, s:s}", "type", "chunk", "document_id",
                                 db_col_text(st, 1, NULL), "chunk_id", db_col_text(st, 0, NULL));
    }
    db_stmt_done(st);
    buf_release(&pat);
    if (rc)
        return rc;
    if (!out->sentence && !b->document_id && sentence_with(x->summary, x->term, out))
        out->ref = json_pack("{s:s, s:s}", "type", "summary", "node_id", x->id);
    return LOCI_OK;
}

static char *blanked(const struct passage *p)
{
    struct buf b;
    buf_init(&b, strlen(p->sentence) + 16);
    buf_append(&b, p->sentence, (size_t)p->at);
    buf_append(&b, BLANK, strlen(BLANK));
    buf_printf(&b, "%s", p->sentence + p->at + (long)p->term_n);
    char *s = xstrdup(buf_cstr(&b));
    buf_release(&b);
    return s;
}

static char *term_key(const char *s)
{
    struct buf k;
    buf_init(&k, 4096);
    char *out = text_term_key(s, strlen(s), &k) == LOCI_OK ? xstrdup(buf_cstr(&k)) : NULL;
    buf_release(&k);
    return out;
}

/* Add choice to choices unless its key is the answer's, already there, or
 * empty; true when added. */
static bool add_choice(json_t *choices, json_t *keys, const char *choice)
{
    char *k = term_key(choice);
    bool ok = k && !json_object_get(keys, k);
    if (ok) {
        json_object_set_new(keys, k, json_true());
        json_array_append_new(choices, json_string(choice));
    }
    xfree(k);
    return ok;
}

/* Strip a ```json fence a model may wrap its reply in. */
static json_t *parse_model_json(const char *text)
{
    const char *p = strchr(text, '{'), *q = strrchr(text, '}');
    if (!p || !q || q < p)
        return NULL;
    return json_loadb(p, (size_t)(q - p + 1), 0, NULL);
}

/* Up to DISTRACTORS model-written distractors into choices; false when the
 * model is not there or its reply is not usable (the caller falls back). */
static bool model_distractors(struct build *b, const char *question, const char *key,
                              json_t *choices, json_t *keys)
{
    if (!b->ai || strcmp(ai_chain(b->ai), "local") == 0)
        return false;
    struct buf prompt;
    buf_init(&prompt, 8192);
    buf_printf(&prompt,
               "Write three plausible but wrong answers (distractors) for this multiple-choice "
               "question. Each is a short term of the same kind as the correct answer; none may "
               "be correct.\nQuestion: %s\nCorrect answer: %s\nReply with JSON only: "
               "{\"distractors\": [\"...\", \"...\", \"...\"]}",
               question, key);
    struct ai_msg msg = {"user", buf_cstr(&prompt)};
    struct ai_request req = {
        .op = AI_OP_CHAT,
        .msgs = &msg,
        .n_msgs = 1,
        .max_tokens = 200,
        .cache_scope = b->user_id,
        .log = b->log,
    };
    struct ai_result r = {0};
    struct ai_failure why = {0};
    bool ok = false;
    if (ai_run(b->ai, &req, &r, &why) == LOCI_OK && r.text && strcmp(r.provider, "local") != 0) {
        json_t *j = parse_model_json(r.text);
        json_t *list = json_object_get(j, "distractors");
        json_t *mine = json_array(), *mine_keys = json_deep_copy(keys);
        size_t i;
        json_t *v;
        json_array_foreach(list, i, v)
        {
            const char *s = json_string_value(v);
            if (!s || strlen(s) == 0 || strlen(s) > CHOICE_MAX || strchr(s, '\n') ||
                json_array_size(mine) == DISTRACTORS)
                continue;
            add_choice(mine, mine_keys, s);
        }
        if (json_array_size(mine) == DISTRACTORS) {
            json_array_extend(choices, mine);
            json_object_update(keys, mine_keys);
            ok = true;
        }
        json_decref(mine);
        json_decref(mine_keys);
        json_decref(j);
    }
    ai_result_release(&r);
    buf_release(&prompt);
    return ok;
}

/* Offline distractors: other nodes of the same cluster, then graph
 * neighbours (strongest first), then the learner's other nodes. None that
 * occurs in the question's sentence. */
static int graph_distractors(struct build *b, const struct cand *x, const char *sentence,
                             json_t *choices, json_t *keys)
{
    static const char *const queries[] = {
        "SELECT term FROM nodes WHERE user_id = ? AND cluster = ? AND id <> ? ORDER BY id LIMIT 50",
        "SELECT n.term FROM edges e JOIN nodes n ON n.user_id = e.user_id AND n.id = "
        "CASE WHEN e.src = ? THEN e.dst ELSE e.src END WHERE e.user_id = ? AND (e.src = ? OR "
        "e.dst = ?) ORDER BY e.weight DESC, n.id LIMIT 50",
        "SELECT term FROM nodes WHERE user_id = ? AND id <> ? ORDER BY id LIMIT 50",
    };
    int rc = LOCI_OK;
    for (int qi = 0; qi < 3 && rc == LOCI_OK; qi++) {
        if (json_array_size(choices) >= DISTRACTORS + 1)
            break;
        if (qi == 0 && !x->cluster)
            continue;
        struct db_stmt *st = NULL;
        if ((rc = db_prepare(b->c, queries[qi], &st)) != LOCI_OK)
            break;
        if (qi == 0) {
            db_bind_text(st, 1, b->user_id, (size_t)-1);
            db_bind_text(st, 2, x->cluster, (size_t)-1);
            db_bind_text(st, 3, x->id, (size_t)-1);
        } else if (qi == 1) {
            db_bind_text(st, 1, x->id, (size_t)-1);
            db_bind_text(st, 2, b->user_id, (size_t)-1);
            db_bind_text(st, 3, x->id, (size_t)-1);
            db_bind_text(st, 4, x->id, (size_t)-1);
        } else {
            db_bind_text(st, 1, b->user_id, (size_t)-1);
            db_bind_text(st, 2, x->id, (size_t)-1);
        }
        while ((rc = db_step(st)) == LOCI_ROW) {
            const char *term = db_col_text(st, 0, NULL);
            if (json_array_size(choices) >= DISTRACTORS + 1 ||
                find_term(sentence, strlen(sentence), term) >= 0)
                continue;
            add_choice(choices, keys, term);
        }
        db_stmt_done(st);
    }
    return rc;
}

/* A Fisher-Yates shuffle with libsodium's generator. */
static void shuffle(json_t *a)
{
    size_t n = json_array_size(a);
    for (size_t i = n; i > 1; i--) {
        uint32_t r = 0;
        ids_random(&r, sizeof(r));
        size_t j = r % i;
        json_t *x = json_incref(json_array_get(a, i - 1));
        json_array_set(a, i - 1, json_array_get(a, j));
        json_array_set_new(a, j, x);
    }
}

/* One question of kind about node x; false when x cannot give one. */
static int make_question(struct build *b, const struct cand *x, unsigned kind,
                         struct learn_question *q, bool *out_made)
{
    *out_made = false;
    memset(q, 0, sizeof(*q));
    if (kind == LEARN_Q_DEFINITION) {
        if (!x->summary[0] || strlen(x->summary) < SENTENCE_MIN)
            return LOCI_OK;
        q->kind = LEARN_Q_DEFINITION;
        snprintf(q->node_id, sizeof(q->node_id), "%s", x->id);
        q->term = xstrdup(x->term);
        struct buf p;
        buf_init(&p, 1024);
        buf_printf(&p, "What is \xe2\x80\x9c%s\xe2\x80\x9d? Explain it in your own words.",
                   x->term);
        q->prompt = xstrdup(buf_cstr(&p));
        buf_release(&p);
        q->answer_key = xstrdup(x->summary);
        q->source_passage = xstrdup(x->summary);
        q->source_ref = json_pack("{s:s, s:s}", "type", "summary", "node_id", x->id);
        *out_made = true;
        return LOCI_OK;
    }
    struct passage pa;
    int rc = find_passage(b, x, &pa);
    if (rc || !pa.sentence) {
        passage_release(&pa);
        return rc;
    }
    char *key = xstrndup(pa.sentence + pa.at, pa.term_n);
    char *prompt = blanked(&pa);
    if (kind == LEARN_Q_MC) {
        json_t *choices = json_array(), *keys = json_object();
        add_choice(choices, keys, key);
        if (!model_distractors(b, prompt, key, choices, keys))
            rc = graph_distractors(b, x, pa.sentence, choices, keys);
        if (rc == LOCI_OK && json_array_size(choices) == DISTRACTORS + 1) {
            shuffle(choices);
            q->choices = choices;
            choices = NULL;
        }
        json_decref(choices);
        json_decref(keys);
        if (!q->choices) {
            xfree(key);
            xfree(prompt);
            passage_release(&pa);
            return rc;
        }
    }
    q->kind = kind;
    snprintf(q->node_id, sizeof(q->node_id), "%s", x->id);
    q->term = xstrdup(x->term);
    q->prompt = prompt;
    q->answer_key = key;
    q->source_passage = pa.sentence;
    q->source_ref = pa.ref;
    pa.sentence = NULL;
    pa.ref = NULL;
    passage_release(&pa);
    *out_made = true;
    return LOCI_OK;
}

static int store_question(struct db_conn *c, const char *user_id, const char *quiz_id, int pos,
                          const struct learn_question *q, int64_t now)
{
    char id[UUID_STR_LEN];
    ids_uuid7(id);
    char *choices = q->choices ? json_dumps(q->choices, JSON_COMPACT) : NULL;
    char *ref = json_dumps(q->source_ref, JSON_COMPACT);
    struct db_stmt *st = NULL;
    int rc = db_prepare(c,
                        "INSERT INTO quiz_questions (id, quiz_id, user_id, position, kind, "
                        "node_id, term, prompt, choices, answer_key, source_passage, source_ref, "
                        "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        &st);
    if (rc == LOCI_OK) {
        db_bind_text(st, 1, id, (size_t)-1);
        db_bind_text(st, 2, quiz_id, (size_t)-1);
        db_bind_text(st, 3, user_id, (size_t)-1);
        db_bind_int64(st, 4, pos);
        db_bind_text(st, 5, kind_name(q->kind), (size_t)-1);
        db_bind_text(st, 6, q->node_id, (size_t)-1);
        db_bind_text(st, 7, q->term, (size_t)-1);
        db_bind_text(st, 8, q->prompt, (size_t)-1);
        db_bind_text(st, 9, choices, (size_t)-1);
        db_bind_text(st, 10, q->answer_key, (size_t)-1);
        db_bind_text(st, 11, q->source_passage, (size_t)-1);
        db_bind_text(st, 12, ref, (size_t)-1);
        db_bind_int64(st, 13, now);
        rc = db_run(st, NULL);
    }
    xfree(choices);
    xfree(ref);
    return rc;
}

struct finish {
    const char *user_id;
    const char *quiz_id;
    struct learn_question *qs;
    size_t n;
    int64_t now;
};

static int tx_finish(struct db_conn *c, void *arg)
{
    struct finish *f = arg;
    struct db_stmt *st = NULL;
    int rc = db_prepare(c,
                        "UPDATE quizzes SET status = ?, error = ?, updated_at = ? WHERE id = ? AND "
                        "user_id = ? AND status = 'building'",
                        &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, f->n ? "ready" : "failed", (size_t)-1);
    db_bind_text(st, 2, f->n ? NULL : "not enough material to ask about", (size_t)-1);
    db_bind_int64(st, 3, f->now);
    db_bind_text(st, 4, f->quiz_id, (size_t)-1);
    db_bind_text(st, 5, f->user_id, (size_t)-1);
    int64_t changed = 0;
    if ((rc = db_run(st, &changed)) != LOCI_OK || changed == 0)
        return rc; /* no longer building: another run finished it */
    for (size_t i = 0; rc == LOCI_OK && i < f->n; i++)
        rc = store_question(c, f->user_id, f->quiz_id, (int)i + 1, &f->qs[i], f->now);
    if (rc == LOCI_OK) {
        json_t *data =
            json_pack("{s:s, s:I}", "quiz_id", f->quiz_id, "questions", (json_int_t)f->n);
        rc = events_append(c, f->user_id, f->n ? "quiz.ready" : "quiz.failed", data, NULL);
        json_decref(data);
    }
    return rc;
}

int learn_quiz_build(struct db *db, struct ai *ai, const char *user_id, const char *quiz_id,
                     const struct log_ctx *log)
{
    struct build b = {.ai = ai, .user_id = user_id, .quiz_id = quiz_id, .log = log};
    struct learn_question *qs = NULL;
    size_t n_qs = 0;
    json_t *scope = NULL, *kinds_j = NULL;
    int n = 0;
    int rc = db_acquire(db, &b.c);
    if (rc)
        return rc;
    struct db_stmt *st = NULL;
    rc = db_prepare(b.c, "SELECT status, scope, kinds, n FROM quizzes WHERE id = ? AND user_id = ?",
                    &st);
    if (rc)
        goto out;
    db_bind_text(st, 1, quiz_id, (size_t)-1);
    db_bind_text(st, 2, user_id, (size_t)-1);
    rc = db_step(st);
    bool is_building = false;
    if (rc == LOCI_ROW) {
        is_building = strcmp(db_col_text(st, 0, NULL), "building") == 0;
        scope = json_loads(db_col_text(st, 1, NULL), 0, NULL);
        kinds_j = json_loads(db_col_text(st, 2, NULL), 0, NULL);
        n = (int)db_col_int64(st, 3);
        rc = LOCI_OK;
    } else if (rc == LOCI_OK) {
        rc = LOCI_ENOTFOUND;
    }
    db_stmt_done(st);
    if (rc || !is_building)
        goto out;
    unsigned kinds[3];
    size_t n_kinds = 0;
    size_t ki;
    json_t *kv;
    json_array_foreach(kinds_j, ki, kv)
    {
        unsigned k = learn_quiz_kind_parse(json_string_value(kv));
        if (k && n_kinds < 3)
            kinds[n_kinds++] = k;
    }
    if (n_kinds == 0)
        kinds[n_kinds++] = LEARN_Q_CLOZE;
    if ((rc = load_candidates(&b, scope)) != LOCI_OK)
        goto out;
    qs = xcalloc((size_t)n, sizeof(*qs));
    /* One question per node, weakest first; kinds in turn, the next kind
     * when a node cannot give this one. */
    for (size_t i = 0; rc == LOCI_OK && i < b.n_cands && n_qs < (size_t)n; i++) {
        for (size_t t = 0; t < n_kinds; t++) {
            unsigned kind = kinds[(n_qs + t) % n_kinds];
            bool made = false;
            rc = make_question(&b, &b.cands[i], kind, &qs[n_qs], &made);
            if (rc || !made)
                continue;
            /* Checked before it can be shown: a failing one is dropped. */
            if (learn_quiz_keep_checked(&qs[n_qs], 1) == 1) {
                n_qs++;
                break;
            }
        }
    }
    db_release(b.c);
    b.c = NULL;
    if (rc)
        goto out;
    struct finish f = {user_id, quiz_id, qs, n_qs, clock_now_ms()};
    rc = db_tx(db, tx_finish, &f);
out:
    if (b.c)
        db_release(b.c);
    for (size_t i = 0; qs && i < (size_t)n; i++)
        learn_question_release(&qs[i]);
    xfree(qs);
    cands_release(b.cands, b.n_cands);
    json_decref(scope);
    json_decref(kinds_j);
    return rc;
}

/* ---- showing ---- */

static json_t *parse_or(const char *text, json_t *fallback)
{
    json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);
    if (!v)
        return fallback;
    json_decref(fallback);
    return v;
}

static json_t *explanation(bool is_correct, const char *key, const char *passage)
{
    struct buf b;
    buf_init(&b, strlen(passage) + strlen(key) + 128);
    if (is_correct)
        buf_printf(&b, "Right. Your material says: \xe2\x80\x9c%s\xe2\x80\x9d", passage);
    else
        buf_printf(&b,
                   "The answer is \xe2\x80\x9c%s\xe2\x80\x9d. Your material says: "
                   "\xe2\x80\x9c%s\xe2\x80\x9d",
                   key, passage);
    json_t *s = json_string(buf_cstr(&b));
    buf_release(&b);
    return s;
}

#define QUESTION_COLS                                                                              \
    "id, position, kind, node_id, prompt, choices, answer_key, source_passage, source_ref, "       \
    "answer, is_correct, rating, answered_at"

static json_t *result_from_row(struct db_stmt *st)
{
    if (db_col_is_null(st, 12))
        return json_null();
    bool ok = db_col_int64(st, 10) != 0;
    const char *key = db_col_text(st, 6, NULL), *passage = db_col_text(st, 7, NULL);
    return json_pack("{s:s, s:b, s:I, s:s, s:o, s:s, s:o, s:I}", "answer", db_col_text(st, 9, NULL),
                     "is_correct", ok, "rating", (json_int_t)db_col_int64(st, 11), "answer_key",
                     key, "explanation", explanation(ok, key, passage), "source_passage", passage,
                     "source_ref", parse_or(db_col_text(st, 8, NULL), json_object()), "answered_at",
                     (json_int_t)db_col_int64(st, 12));
}

static json_t *question_from_row(struct db_stmt *st)
{
    json_t *q = json_pack("{s:s, s:I, s:s, s:s, s:s}", "id", db_col_text(st, 0, NULL), "position",
                          (json_int_t)db_col_int64(st, 1), "kind", db_col_text(st, 2, NULL),
                          "node_id", db_col_text(st, 3, NULL), "prompt", db_col_text(st, 4, NULL));
    if (!db_col_is_null(st, 5))
        json_object_set_new(q, "choices", parse_or(db_col_text(st, 5, NULL), json_array()));
    json_object_set_new(q, "result", result_from_row(st));
    return q;
}

int learn_quiz_json(struct db_conn *c, const char *user_id, const char *quiz_id, json_t **out)
{
    *out = NULL;
    struct db_stmt *st = NULL;
    int rc = db_prepare(c,
                        "SELECT id, status, error, n, kinds, scope, created_at FROM quizzes "
                        "WHERE id = ? AND user_id = ?",
                        &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, quiz_id, (size_t)-1);
    db_bind_text(st, 2, user_id, (size_t)-1);
    rc = db_step(st);
    json_t *quiz = NULL;
    if (rc == LOCI_ROW) {
        quiz =
            json_pack("{s:s, s:s, s:o, s:I, s:o, s:o, s:I}", "id", db_col_text(st, 0, NULL),
                      "status", db_col_text(st, 1, NULL), "error",
                      db_col_is_null(st, 2) ? json_null() : json_string(db_col_text(st, 2, NULL)),
                      "n", (json_int_t)db_col_int64(st, 3), "kinds",
                      parse_or(db_col_text(st, 4, NULL), json_array()), "scope",
                      parse_or(db_col_text(st, 5, NULL), json_object()), "created_at",
                      (json_int_t)db_col_int64(st, 6));
    }
    db_stmt_done(st);
    if (rc != LOCI_ROW)
        return rc ? rc : LOCI_ENOTFOUND;
    rc = db_prepare(c,
                    "SELECT " QUESTION_COLS " FROM quiz_questions WHERE quiz_id = ? AND "
                    "user_id = ? ORDER BY position",
                    &st);
    if (rc) {
        json_decref(quiz);
        return rc;
    }
    db_bind_text(st, 1, quiz_id, (size_t)-1);
    db_bind_text(st, 2, user_id, (size_t)-1);
    json_t *list = json_array();
    json_int_t answered = 0, correct = 0;
    while ((rc = db_step(st)) == LOCI_ROW) {
        json_t *q = question_from_row(st);
        json_t *r = json_object_get(q, "result");
        if (!json_is_null(r)) {
            answered++;
            correct += json_is_true(json_object_get(r, "is_correct"));
        }
        json_array_append_new(list, q);
    }
    db_stmt_done(st);
    if (rc) {
        json_decref(list);
        json_decref(quiz);
        return rc;
    }
    json_object_set_new(quiz, "answered", json_integer(answered));
    json_object_set_new(quiz, "correct", json_integer(correct));
    json_object_set_new(quiz, "questions", list);
    *out = quiz;
    return LOCI_OK;
}

/* ---- grading ---- */

static bool definition_right(const char *answer, const char *key)
{
    json_t *k = json_object(), *a = json_object();
    bool ok = false;
    if (content_stems(key, k) == LOCI_OK && content_stems(answer, a) == LOCI_OK) {
        size_t hit = 0, total = json_object_size(k);
        const char *stem;
        json_t *v;
        json_object_foreach(k, stem, v)
        {
            hit += json_object_get(a, stem) != NULL;
        }
        ok = total > 0 && (hit * 2 >= total || hit >= 4);
    }
    json_decref(k);
    json_decref(a);
    return ok;
}

static bool same_term(const char *a, const char *b)
{
    char *ka = term_key(a), *kb = term_key(b);
    bool same = ka && kb && strcmp(ka, kb) == 0;
    xfree(ka);
    xfree(kb);
    return same;
}

/* The spaced-repetition side of a graded answer: one review of the node
 * with this rating (source "quiz"), its familiarity change announced in a
 * `graph.updated` event. The one place quizzes touch FSRS. */
static int feed_review(struct db_conn *c, const char *user_id, const char *node_id, int rating,
                       int64_t duration_ms, int64_t now, json_t **out_review)
{
    *out_review = NULL;
    struct graph_delta delta;
    graph_delta_init(&delta);
    struct learn_review_out r;
    int rc =
        learn_review(c, user_id, node_id, rating, duration_ms, LEARN_SRC_QUIZ, now, &delta, &r);
    if (rc == LOCI_ENOTFOUND) {
        rc = LOCI_OK; /* the node was deleted since the quiz was built */
        *out_review = json_null();
    } else if (rc == LOCI_OK) {
        rc = graph_emit(c, user_id, &delta, "quiz.answered");
        if (rc == LOCI_OK)
            *out_review = learn_review_json(node_id, &r);
    }
    graph_delta_release(&delta);
    return rc;
}

static int rating_for(bool is_correct, const char *kind, int64_t duration_ms)
{
    if (!is_correct)
        return 1;
    int64_t fast = strcmp(kind, "definition") == 0 ? LEARN_QUIZ_FAST_DEF_MS : LEARN_QUIZ_FAST_MS;
    return duration_ms >= 0 && duration_ms <= fast ? 4 : 3;
}

int learn_quiz_answer(struct db_conn *c, const char *user_id, const char *quiz_id,
                      const char *question_id, const json_t *answer, int64_t duration_ms,
                      int64_t now, json_t **out, const char **out_field)
{
    *out = NULL;
    *out_field = NULL;
    struct db_stmt *st = NULL;
    int rc = db_prepare(c, "SELECT status FROM quizzes WHERE id = ? AND user_id = ?", &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, quiz_id, (size_t)-1);
    db_bind_text(st, 2, user_id, (size_t)-1);
    rc = db_step(st);
    bool is_ready = rc == LOCI_ROW && strcmp(db_col_text(st, 0, NULL), "ready") == 0;
    db_stmt_done(st);
    if (rc != LOCI_ROW)
        return rc ? rc : LOCI_ENOTFOUND;
    if (!is_ready)
        return LOCI_ECONFLICT;
    rc = db_prepare(c,
                    "SELECT kind, node_id, choices, answer_key, answered_at FROM quiz_questions "
                    "WHERE id = ? AND quiz_id = ? AND user_id = ?",
                    &st);
    if (rc)
        return rc;
    db_bind_text(st, 1, question_id, (size_t)-1);
    db_bind_text(st, 2, quiz_id, (size_t)-1);
    db_bind_text(st, 3, user_id, (size_t)-1);
    rc = db_step(st);
    char kind[16] = "", node_id[UUID_STR_LEN] = "";
    char *key = NULL;
    json_t *choices = NULL;
    bool is_answered = false;
    if (rc == LOCI_ROW) {
        snprintf(kind, sizeof(kind), "%s", db_col_text(st, 0, NULL));
        snprintf(node_id, sizeof(node_id), "%s", db_col_text(st, 1, NULL));
        choices = db_col_is_null(st, 2) ? NULL : json_loads(db_col_text(st, 2, NULL), 0, NULL);
        key = xstrdup(db_col_text(st, 3, NULL));
        is_answered = !db_col_is_null(st, 4);
    }
    db_stmt_done(st);
    char *given = NULL;
    json_t *review = NULL;
    if (rc != LOCI_ROW) {
        rc = rc ? rc : LOCI_ENOTFOUND;
        *out_field = "question_id";
        goto out;
    }
    rc = LOCI_ECONFLICT;
    if (is_answered)
        goto out;
    rc = LOCI_EUNPROCESSABLE;
    *out_field = "answer";
    if (strcmp(kind, "mc") == 0 && json_is_integer(answer)) {
        json_int_t i = json_integer_value(answer);
        if (i < 0 || (size_t)i >= json_array_size(choices))
            goto out;
        given = xstrdup(json_string_value(json_array_get(choices, (size_t)i)));
    } else if (json_is_string(answer)) {
        given = xstrdup(json_string_value(answer));
    } else {
        goto out;
    }
    bool ok;
    if (strcmp(kind, "mc") == 0) {
        bool is_choice = false;
        size_t i;
        json_t *v;
        json_array_foreach(choices, i, v)
        {
            if (strcmp(json_string_value(v), given) == 0)
                is_choice = true;
        }
        if (!is_choice)
            goto out;
        ok = strcmp(given, key) == 0;
    } else if (strcmp(kind, "cloze") == 0) {
        ok = same_term(given, key);
    } else {
        ok = definition_right(given, key);
    }
    *out_field = NULL;
    int rating = rating_for(ok, kind, duration_ms);
    rc = db_prepare(c,
                    "UPDATE quiz_questions SET answer = ?, is_correct = ?, rating = ?, "
                    "duration_ms = ?, answered_at = ? WHERE id = ? AND user_id = ? AND "
                    "answered_at IS NULL",
                    &st);
    if (rc)
        goto out;
    db_bind_text(st, 1, given, (size_t)-1);
    db_bind_int64(st, 2, ok);
    db_bind_int64(st, 3, rating);
    if (duration_ms >= 0)
        db_bind_int64(st, 4, duration_ms);
    else
        db_bind_null(st, 4);
    db_bind_int64(st, 5, now);
    db_bind_text(st, 6, question_id, (size_t)-1);
    db_bind_text(st, 7, user_id, (size_t)-1);
    rc = db_run_one(st);
    if (rc == LOCI_ENOTFOUND)
        rc = LOCI_ECONFLICT; /* answered meanwhile */
    if (rc == LOCI_OK && node_id[0])
        rc = feed_review(c, user_id, node_id, rating, duration_ms, now, &review);
    if (rc == LOCI_OK) {
        json_t *data =
            json_pack("{s:s, s:s, s:s, s:b, s:i}", "quiz_id", quiz_id, "question_id", question_id,
                      "node_id", node_id, "is_correct", ok, "rating", rating);
        rc = events_append(c, user_id, "quiz.answered", data, NULL);
        json_decref(data);
    }
    json_t *quiz = NULL;
    if (rc == LOCI_OK)
        rc = learn_quiz_json(c, user_id, quiz_id, &quiz);
    if (rc == LOCI_OK) {
        json_t *questions = json_object_get(quiz, "questions");
        size_t i;
        json_t *q;
        json_array_foreach(questions, i, q)
        {
            if (strcmp(json_string_value(json_object_get(q, "id")), question_id) != 0)
                continue;
            json_t *r = json_deep_copy(json_object_get(q, "result"));
            json_object_set_new(r, "question_id", json_string(question_id));
            json_object_set_new(r, "review", review ? json_incref(review) : json_null());
            json_object_set_new(r, "quiz",
                                json_pack("{s:O, s:O, s:I}", "answered",
                                          json_object_get(quiz, "answered"), "correct",
                                          json_object_get(quiz, "correct"), "n",
                                          (json_int_t)json_array_size(questions)));
            *out = r;
        }
        json_decref(quiz);
        if (!*out)
            rc = LOCI_EINTERNAL;
    }
out:
    xfree(key);
    xfree(given);
    json_decref(choices);
    json_decref(review);
    return rc;
}

/* ---- the job ---- */

static int build_job(struct job *j, void *arg)
{
    struct ai *ai = arg;
    const char *quiz_id = json_string_value(json_object_get(job_payload(j), "quiz_id"));
    const char *user_id = job_user_id(j);
    if (!quiz_id || !user_id) {
        job_set_error(j, "payload needs quiz_id and a user");
        return LOCI_EINVAL;
    }
    int rc = learn_quiz_build(job_db(j), ai, user_id, quiz_id, job_log(j));
    if (rc == LOCI_ENOTFOUND)
        return LOCI_OK; /* deleted meanwhile */
    return rc;
}

void learn_quiz_register_jobs(struct jobs *js, struct ai *ai)
{
    jobs_register(js, "quiz.build", build_job, ai);
}
