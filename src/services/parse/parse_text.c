/*
 * parse_text.c - Markdown, HTML and plain text to framed text (see
 * parse.h). These run inside the parse child on untrusted bytes: every
 * loop advances, every index is checked against n, every output buffer
 * has a maximum. Small and forgiving rather than complete: the goal is the
 * words and the headings, not a faithful rendering.
 */
#include "services/parse/parse.h"

#include "core/err.h"
#include "services/text/text.h"

#include <stdint.h>
#include <string.h>
#include <strings.h>

#define HEADING_MAX 400 /* bytes of a heading or title line */

/* ------------------------------------------------------------------ */
/* shared                                                               */

static bool is_blank(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r')
            return false;
    return true;
}

/* Append a heading line: marker, level, the text on one line. An empty
 * heading is dropped. */
static int emit_heading(struct buf *out, int level, const char *p, size_t n)
{
    struct buf line;
    buf_init(&line, HEADING_MAX * 4);
    int rc = text_clean_line(p, n, &line);
    if (rc == LOCI_ETOOBIG) {
        rc = text_clean_line(p, HEADING_MAX, &line);
    }
    if (rc == LOCI_OK && line.len > 0) {
        char mark[2] = {PARSE_HEADING, (char)('0' + level)};
        if (out->len > 0 && out->p[out->len - 1] != '\n')
            rc = buf_append_char(out, '\n');
        if (rc == LOCI_OK)
            rc = buf_append(out, mark, 2);
        if (rc == LOCI_OK)
            rc = buf_append(out, line.p, line.len);
        if (rc == LOCI_OK)
            rc = buf_append_char(out, '\n');
    }
    buf_release(&line);
    return rc;
}

/* Set the title once (first caller wins). */
static int set_title(struct buf *title, const char *p, size_t n)
{
    if (!title || title->len > 0)
        return LOCI_OK;
    int rc = text_clean_line(p, n < HEADING_MAX ? n : HEADING_MAX, title);
    return rc == LOCI_ETOOBIG ? LOCI_OK : rc;
}

/* ------------------------------------------------------------------ */
/* Markdown                                                             */

struct line {
    const char *p;
    size_t n; /* without the line break */
};

/* The next line of [*pos, n); false at the end. */
static bool next_line(const char *in, size_t n, size_t *pos, struct line *out)
{
    if (*pos >= n)
        return false;
    const char *s = in + *pos;
    const char *nl = memchr(s, '\n', n - *pos);
    size_t len = nl ? (size_t)(nl - s) : n - *pos;
    *pos += len + (nl ? 1 : 0);
    if (len > 0 && s[len - 1] == '\r')
        len--;
    out->p = s;
    out->n = len;
    return true;
}

static size_t indent_of(const struct line *l)
{
    size_t i = 0;
    while (i < l->n && l->p[i] == ' ')
        i++;
    return i;
}

/* "```" or "~~~" (after up to 3 spaces) opens or closes a fence. */
static bool is_fence(const struct line *l)
{
    size_t i = indent_of(l);
    return i <= 3 && l->n - i >= 3 &&
           (memcmp(l->p + i, "```", 3) == 0 || memcmp(l->p + i, "~~~", 3) == 0);
}

/* "---", "***", "___" (3 or more, spaces allowed): a thematic break; also
 * the setext underline when only '-' or '='. */
static bool is_run_of(const struct line *l, char c, size_t min)
{
    size_t count = 0;
    for (size_t i = 0; i < l->n; i++) {
        if (l->p[i] == c)
            count++;
        else if (l->p[i] != ' ' && l->p[i] != '\t')
            return false;
    }
    return count >= min;
}

/* An ATX heading: level 1-6, the text without the closing #s. */
static int atx_level(const struct line *l, const char **text, size_t *text_n)
{
    size_t i = indent_of(l);
    if (i > 3)
        return 0;
    int level = 0;
    while (i < l->n && l->p[i] == '#' && level < 7) {
        level++;
        i++;
    }
    if (level < 1 || level > 6 || (i < l->n && l->p[i] != ' ' && l->p[i] != '\t'))
        return 0;
    size_t end = l->n;
    while (end > i && (l->p[end - 1] == ' ' || l->p[end - 1] == '\t'))
        end--;
    size_t hashes = end;
    while (hashes > i && l->p[hashes - 1] == '#')
        hashes--;
    if (hashes < end && (hashes == i || l->p[hashes - 1] == ' ' || l->p[hashes - 1] == '\t'))
        end = hashes;
    *text = l->p + i;
    *text_n = end - i;
    return level;
}

/* "[label]: url" on its own line: a link reference definition. */
static bool is_link_definition(const struct line *l)
{
    size_t i = indent_of(l);
    if (i > 3 || i >= l->n || l->p[i] != '[')
        return false;
    const char *close = memchr(l->p + i, ']', l->n - i);
    return close && (size_t)(close - l->p) + 1 < l->n && close[1] == ':' && close > l->p + i + 1;
}

/* The position of the ']' closing the '[' at p[i], on this line; n when none. */
static size_t closing_bracket(const char *p, size_t n, size_t i)
{
    int depth = 0;
    for (size_t k = i; k < n; k++) {
        if (p[k] == '\\') {
            k++;
            continue;
        }
        if (p[k] == '[')
            depth++;
        else if (p[k] == ']' && --depth == 0)
            return k;
    }
    return n;
}

/* The position of the ')' closing the '(' at p[i]; n when none. */
static size_t closing_paren(const char *p, size_t n, size_t i)
{
    int depth = 0;
    for (size_t k = i; k < n; k++) {
        if (p[k] == '(')
            depth++;
        else if (p[k] == ')' && --depth == 0)
            return k;
        else if (p[k] == ' ' && depth == 1 && k + 1 < n && p[k + 1] == '"')
            continue; /* a title: keep scanning */
    }
    return n;
}

/* What a [[wikilink]] shows: the alias after '|', else the target without
 * '#heading'. */
static void wikilink_parts(const char *p, size_t n, struct str *target, struct str *shown)
{
    const char *bar = memchr(p, '|', n);
    size_t tn = bar ? (size_t)(bar - p) : n;
    const char *hash = memchr(p, '#', tn);
    target->p = p;
    target->n = hash ? (size_t)(hash - p) : tn;
    if (bar) {
        shown->p = bar + 1;
        shown->n = n - tn - 1;
    } else {
        *shown = *target;
    }
}

static bool is_tag_start(const char *p, size_t n, size_t i)
{
    if (i + 1 >= n)
        return false;
    char c = p[i + 1];
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '/' || c == '!';
}

/* One line of Markdown inline syntax to text, into out. */
static int md_inline(const char *p, size_t n, struct buf *out)
{
    int rc = LOCI_OK;
    size_t i = 0, run = 0;
#define FLUSH()                                                                                    \
    do {                                                                                           \
        if (i > run && rc == LOCI_OK)                                                              \
            rc = buf_append(out, p + run, i - run);                                                \
    } while (0)
    while (i < n && rc == LOCI_OK) {
        char c = p[i];
        if (c == '\\' && i + 1 < n && strchr("\\`*_{}[]()#+-.!|<>~", p[i + 1])) {
            FLUSH();
            run = i + 1;
            i += 2;
            continue;
        }
        if (c == '[' && i + 1 < n && p[i + 1] == '[') {
            /* [[target|alias]] */
            const char *end = NULL;
            for (size_t k = i + 2; k + 1 < n; k++) {
                if (p[k] == ']' && p[k + 1] == ']') {
                    end = p + k;
                    break;
                }
            }
            if (end) {
                FLUSH();
                struct str target, shown;
                wikilink_parts(p + i + 2, (size_t)(end - (p + i + 2)), &target, &shown);
                if (rc == LOCI_OK)
                    rc = buf_append(out, shown.p, shown.n);
                i = (size_t)(end - p) + 2;
                run = i;
                continue;
            }
        }
        if (c == '[' || (c == '!' && i + 1 < n && p[i + 1] == '[')) {
            size_t open = c == '!' ? i + 1 : i;
            size_t close = closing_bracket(p, n, open);
            if (close < n && close + 1 < n && (p[close + 1] == '(' || p[close + 1] == '[')) {
                size_t end =
                    p[close + 1] == '('
                        ? closing_paren(p, n, close + 1)
                        : (memchr(p + close + 1, ']', n - close - 1)
                               ? (size_t)((const char *)memchr(p + close + 1, ']', n - close - 1) -
                                          p)
                               : n);
                if (end < n) {
                    FLUSH();
                    /* the link text, itself cleaned (it may hold emphasis) */
                    if (rc == LOCI_OK)
                        rc = md_inline(p + open + 1, close - open - 1, out);
                    i = end + 1;
                    run = i;
                    continue;
                }
            }
        }
        if (c == '<' && i + 1 < n) {
            const char *gt = memchr(p + i, '>', n - i);
            if (gt && (size_t)(gt - (p + i)) > 1) {
                size_t inner = (size_t)(gt - (p + i)) - 1;
                const char *s = p + i + 1;
                bool is_autolink = (inner > 7 && strncasecmp(s, "http://", 7) == 0) ||
                                   (inner > 8 && strncasecmp(s, "https://", 8) == 0) ||
                                   (inner > 7 && strncasecmp(s, "mailto:", 7) == 0);
                if (is_autolink || is_tag_start(p, n, i)) {
                    FLUSH();
                    if (is_autolink && rc == LOCI_OK)
                        rc = buf_append(out, s, inner);
                    i = (size_t)(gt - p) + 1;
                    run = i;
                    continue;
                }
            }
        }
        if ((c == '*' || c == '_' || c == '~') && i + 1 < n && p[i + 1] == c) {
            FLUSH();
            i += 2;
            run = i;
            continue;
        }
        if (c == '`') {
            FLUSH();
            i++;
            run = i;
            continue;
        }
        i++;
    }
    FLUSH();
#undef FLUSH
    return rc;
}

/* The body of a line without block syntax: quote markers. */
static void strip_quote(struct line *l)
{
    size_t i = indent_of(l);
    while (i < l->n && l->p[i] == '>') {
        i++;
        if (i < l->n && l->p[i] == ' ')
            i++;
    }
    if (i > 0 && i <= l->n && memchr(l->p, '>', i)) {
        l->p += i;
        l->n -= i;
    }
}

/* Front matter: "---" first, up to a "---" or "..." line. Returns the
 * position after it (0 when there is none) and sets the title. */
static size_t front_matter(const char *in, size_t n, struct buf *title, int *rc)
{
    size_t pos = 0;
    struct line l;
    if (!next_line(in, n, &pos, &l) || l.n != 3 || memcmp(l.p, "---", 3) != 0)
        return 0;
    const char *t = NULL;
    size_t tn = 0;
    while (next_line(in, n, &pos, &l)) {
        if ((l.n == 3 && memcmp(l.p, "---", 3) == 0) || (l.n == 3 && memcmp(l.p, "...", 3) == 0)) {
            if (t)
                *rc = set_title(title, t, tn);
            return pos;
        }
        if (!t && l.n > 6 && strncasecmp(l.p, "title:", 6) == 0) {
            t = l.p + 6;
            tn = l.n - 6;
            while (tn > 0 && (*t == ' ' || *t == '\t')) {
                t++;
                tn--;
            }
            while (tn > 0 && (t[tn - 1] == ' ' || t[tn - 1] == '\t'))
                tn--;
            if (tn >= 2 &&
                ((t[0] == '"' && t[tn - 1] == '"') || (t[0] == '\'' && t[tn - 1] == '\''))) {
                t++;
                tn -= 2;
            }
        }
    }
    return 0; /* never closed: not front matter */
}

int parse_markdown(const char *in, size_t n, struct buf *out, struct buf *title)
{
    int rc = LOCI_OK;
    if (n >= 3 && memcmp(in, "\xEF\xBB\xBF", 3) == 0) {
        in += 3;
        n -= 3;
    }
    size_t pos = front_matter(in, n, title, &rc);
    struct buf tmp;
    buf_init(&tmp, out->max);
    bool is_fenced = false, is_comment = false;
    struct line l, next;
    bool has_next = next_line(in, n, &pos, &l);
    while (has_next && rc == LOCI_OK) {
        has_next = next_line(in, n, &pos, &next);
        buf_reset(&tmp);
        if (is_fence(&l)) {
            is_fenced = !is_fenced;
            rc = buf_append_char(out, '\n');
        } else if (is_fenced) {
            rc = text_strip_controls(l.p, l.n, out);
            if (rc == LOCI_OK)
                rc = buf_append_char(out, '\n');
        } else if (is_comment || (indent_of(&l) < l.n && l.n - indent_of(&l) >= 4 &&
                                  memcmp(l.p + indent_of(&l), "<!--", 4) == 0)) {
            /* an HTML comment block: skipped to its end */
            const char *end = NULL;
            for (size_t k = 0; k + 2 < l.n; k++)
                if (memcmp(l.p + k, "-->", 3) == 0)
                    end = l.p + k;
            is_comment = end == NULL;
        } else {
            const char *ht;
            size_t hn;
            int level = atx_level(&l, &ht, &hn);
            if (level == 0 && has_next && !is_blank(l.p, l.n) && indent_of(&l) <= 3 &&
                (is_run_of(&next, '=', 1) || is_run_of(&next, '-', 2)) && next.n > 0 &&
                !is_run_of(&l, '-', 3) && !is_run_of(&l, '*', 3)) {
                level = is_run_of(&next, '=', 1) ? 1 : 2;
                ht = l.p;
                hn = l.n;
                has_next = next_line(in, n, &pos, &next); /* the underline is used up */
            }
            if (level > 0) {
                rc = md_inline(ht, hn, &tmp);
                if (rc == LOCI_OK && level == 1)
                    rc = set_title(title, tmp.p ? tmp.p : "", tmp.len);
                if (rc == LOCI_OK)
                    rc = emit_heading(out, level, tmp.p ? tmp.p : "", tmp.len);
            } else if (is_link_definition(&l) || is_run_of(&l, '-', 3) || is_run_of(&l, '*', 3) ||
                       is_run_of(&l, '_', 3)) {
                rc = buf_append_char(out, '\n');
            } else {
                strip_quote(&l);
                rc = md_inline(l.p, l.n, &tmp);
                if (rc == LOCI_OK && tmp.len)
                    rc = text_strip_controls(tmp.p, tmp.len, out);
                if (rc == LOCI_OK)
                    rc = buf_append_char(out, '\n');
            }
        }
        l = next;
    }
    buf_release(&tmp);
    return rc;
}

size_t parse_wikilinks(const char *in, size_t n, struct str *out, size_t max)
{
    size_t count = 0, pos = 0;
    bool is_fenced = false;
    struct line l;
    while (count < max && next_line(in, n, &pos, &l)) {
        if (is_fence(&l)) {
            is_fenced = !is_fenced;
            continue;
        }
        if (is_fenced)
            continue;
        for (size_t i = 0; i + 1 < l.n && count < max; i++) {
            if (l.p[i] != '[' || l.p[i + 1] != '[')
                continue;
            size_t k = i + 2;
            while (k + 1 < l.n && !(l.p[k] == ']' && l.p[k + 1] == ']') && l.p[k] != '[')
                k++;
            if (k + 1 >= l.n || l.p[k] != ']')
                continue;
            struct str target, shown;
            wikilink_parts(l.p + i + 2, k - i - 2, &target, &shown);
            while (target.n > 0 && target.p[0] == ' ') {
                target.p++;
                target.n--;
            }
            while (target.n > 0 && target.p[target.n - 1] == ' ')
                target.n--;
            if (target.n > 0)
                out[count++] = target;
            i = k + 1;
        }
    }
    return count;
}

/* ------------------------------------------------------------------ */
/* HTML                                                                 */

static const struct {
    const char *name;
    uint32_t cp;
} entities[] = {
    {"amp", '&'},      {"lt", '<'},       {"gt", '>'},       {"quot", '"'},      {"apos", '\''},
    {"nbsp", 0xA0},    {"ndash", 0x2013}, {"mdash", 0x2014}, {"hellip", 0x2026}, {"lsquo", 0x2018},
    {"rsquo", 0x2019}, {"ldquo", 0x201C}, {"rdquo", 0x201D}, {"laquo", 0xAB},    {"raquo", 0xBB},
    {"copy", 0xA9},    {"reg", 0xAE},     {"trade", 0x2122}, {"euro", 0x20AC},   {"pound", 0xA3},
    {"yen", 0xA5},     {"cent", 0xA2},    {"sect", 0xA7},    {"deg", 0xB0},      {"plusmn", 0xB1},
    {"times", 0xD7},   {"divide", 0xF7},  {"middot", 0xB7},  {"bull", 0x2022},   {"para", 0xB6},
    {"shy", 0xAD},     {"eacute", 0xE9},  {"egrave", 0xE8},  {"agrave", 0xE0},   {"auml", 0xE4},
    {"ouml", 0xF6},    {"uuml", 0xFC},    {"szlig", 0xDF},   {"ccedil", 0xE7},   {"larr", 0x2190},
    {"rarr", 0x2192},  {"alpha", 0x3B1},  {"beta", 0x3B2},   {"pi", 0x3C0},      {"micro", 0xB5},
};

static int append_cp(struct buf *out, uint32_t cp)
{
    char s[4];
    size_t n;
    if (cp == 0 || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
        cp = 0xFFFD;
    if (cp < 0x80) {
        s[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        s[0] = (char)(0xC0 | (cp >> 6));
        s[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        s[0] = (char)(0xE0 | (cp >> 12));
        s[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        s[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        s[0] = (char)(0xF0 | (cp >> 18));
        s[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        s[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        s[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    return buf_append(out, s, n);
}

/* An entity at p[0] == '&': appends its character and returns the bytes
 * used, or 0 when it is not one (the '&' is then literal). */
static size_t decode_entity(const char *p, size_t n, struct buf *out, int *rc)
{
    size_t end = 1;
    while (end < n && end < 12 && p[end] != ';')
        end++;
    if (end >= n || p[end] != ';' || end < 2)
        return 0;
    uint32_t cp = 0;
    if (p[1] == '#') {
        bool is_hex = end > 2 && (p[2] == 'x' || p[2] == 'X');
        size_t k = is_hex ? 3 : 2;
        if (k >= end)
            return 0;
        for (; k < end; k++) {
            char c = p[k];
            uint32_t d;
            if (c >= '0' && c <= '9')
                d = (uint32_t)(c - '0');
            else if (is_hex && c >= 'a' && c <= 'f')
                d = (uint32_t)(c - 'a' + 10);
            else if (is_hex && c >= 'A' && c <= 'F')
                d = (uint32_t)(c - 'A' + 10);
            else
                return 0;
            cp = cp * (is_hex ? 16 : 10) + d;
            if (cp > 0x10FFFF)
                cp = 0x110000; /* stays out of range: U+FFFD */
        }
    } else {
        size_t len = end - 1;
        size_t i = 0;
        for (; i < sizeof(entities) / sizeof(entities[0]); i++)
            if (strlen(entities[i].name) == len && memcmp(entities[i].name, p + 1, len) == 0)
                break;
        if (i == sizeof(entities) / sizeof(entities[0]))
            return 0;
        cp = entities[i].cp;
    }
    *rc = append_cp(out, cp == 0xA0 ? ' ' : cp);
    return end + 1;
}

/* Elements whose content is not text (the head holds nothing but its
 * <title>, metadata and these). */
static bool is_skipped(const char *name)
{
    static const char *const skip[] = {"script", "style",    "template", "svg",    "math",
                                       "iframe", "noscript", "object",   "canvas", "select",
                                       "button", "textarea", NULL};
    for (size_t i = 0; skip[i]; i++)
        if (strcmp(name, skip[i]) == 0)
            return true;
    return false;
}

/* Elements that end a line. */
static bool is_block(const char *name)
{
    static const char *const blocks[] = {
        "p",       "div",     "br",      "li",     "ul",    "ol",     "tr",         "table",
        "section", "article", "header",  "footer", "nav",   "aside",  "main",       "blockquote",
        "pre",     "hr",      "dd",      "dt",     "dl",    "figure", "figcaption", "form",
        "address", "details", "summary", "tbody",  "thead", "tfoot",  "caption",    "body",
        "html",    "td",      "th",      "head",   "title", NULL};
    for (size_t i = 0; blocks[i]; i++)
        if (strcmp(name, blocks[i]) == 0)
            return true;
    return false;
}

struct html_state {
    struct buf *out;
    struct buf text;    /* the current line, raw (entities decoded) */
    struct buf heading; /* inside h1-h6: its text */
    struct buf title;   /* inside <title> */
    struct buf h1;      /* the first h1, the title when there is no <title> */
    int heading_level;  /* 0 = not in a heading */
    bool is_title;
    bool is_pre;
    int rc;
};

/* Emit the pending line: white space collapsed, or kept inside <pre>. */
static void flush_line(struct html_state *st)
{
    if (st->rc || st->text.len == 0)
        return;
    if (st->is_pre) {
        st->rc = text_strip_controls(st->text.p, st->text.len, st->out);
        if (st->rc == LOCI_OK && st->out->len && st->out->p[st->out->len - 1] != '\n')
            st->rc = buf_append_char(st->out, '\n');
    } else {
        size_t before = st->out->len;
        st->rc = text_clean_line(st->text.p, st->text.len, st->out);
        if (st->rc == LOCI_OK && st->out->len > before)
            st->rc = buf_append_char(st->out, '\n');
    }
    buf_reset(&st->text);
}

static struct buf *html_sink(struct html_state *st)
{
    if (st->is_title)
        return &st->title;
    if (st->heading_level)
        return &st->heading;
    return &st->text;
}

/* Character data, entities decoded, into the current sink. A heading or
 * title that passes its maximum is cut, not an error. */
static void html_chars(struct html_state *st, const char *p, size_t n)
{
    struct buf *sink = html_sink(st);
    size_t i = 0, run = 0;
    while (i < n && st->rc == LOCI_OK) {
        if (p[i] != '&') {
            i++;
            continue;
        }
        if (i > run)
            st->rc = buf_append(sink, p + run, i - run);
        size_t used = st->rc ? 0 : decode_entity(p + i, n - i, sink, &st->rc);
        if (used == 0) {
            run = i++; /* a literal '&': part of the next run */
            continue;
        }
        i += used;
        run = i;
    }
    if (st->rc == LOCI_OK && n > run)
        st->rc = buf_append(sink, p + run, n - run);
    if (st->rc == LOCI_ETOOBIG && sink != &st->text)
        st->rc = LOCI_OK;
}

/* The '>' ending a tag that starts at in[i] == '<' (quoted attribute
 * values may hold '>'); n when the tag never ends. */
static size_t tag_end(const char *in, size_t n, size_t i)
{
    char quote = 0;
    for (size_t k = i + 1; k < n; k++) {
        if (quote) {
            if (in[k] == quote)
                quote = 0;
        } else if (in[k] == '"' || in[k] == '\'') {
            quote = in[k];
        } else if (in[k] == '>') {
            return k;
        }
    }
    return n;
}

/* Case-insensitive search for "</name" from i; n when absent. */
static size_t find_end_tag(const char *in, size_t n, size_t i, const char *name)
{
    size_t len = strlen(name);
    for (size_t k = i; k + 2 + len <= n; k++) {
        if (in[k] == '<' && in[k + 1] == '/' && strncasecmp(in + k + 2, name, len) == 0) {
            char c = k + 2 + len < n ? in[k + 2 + len] : '>';
            if (c == '>' || c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '/')
                return k;
        }
    }
    return n;
}

static void end_heading(struct html_state *st)
{
    if (!st->heading_level || st->rc)
        return;
    if (st->heading_level == 1 && st->h1.len == 0)
        st->rc = set_title(&st->h1, st->heading.p ? st->heading.p : "", st->heading.len);
    if (st->rc == LOCI_OK)
        st->rc = emit_heading(st->out, st->heading_level, st->heading.p ? st->heading.p : "",
                              st->heading.len);
    buf_reset(&st->heading);
    st->heading_level = 0;
}

/* One tag in[i..end]: what it changes. Returns where to go on. */
static size_t html_tag(struct html_state *st, const char *in, size_t n, size_t i, size_t end)
{
    size_t k = i + 1;
    bool is_close = k < end && in[k] == '/';
    if (is_close)
        k++;
    char name[16];
    size_t len = 0;
    while (k < end && len + 1 < sizeof(name) &&
           ((in[k] >= 'a' && in[k] <= 'z') || (in[k] >= 'A' && in[k] <= 'Z') ||
            (len > 0 && in[k] >= '0' && in[k] <= '9'))) {
        char c = in[k++];
        name[len++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    name[len] = '\0';
    bool is_self_closing = end > i && in[end - 1] == '/';
    if (!is_close && !is_self_closing && is_skipped(name)) {
        size_t close = find_end_tag(in, n, end + 1, name);
        return close < n ? tag_end(in, n, close) + 1 : n;
    }
    if (strcmp(name, "title") == 0) {
        st->is_title = !is_close && !is_self_closing;
        return end + 1;
    }
    if (len == 2 && name[0] == 'h' && name[1] >= '1' && name[1] <= '6') {
        if (is_close) {
            end_heading(st);
        } else {
            end_heading(st);
            flush_line(st);
            st->heading_level = name[1] - '0';
        }
        return end + 1;
    }
    if (is_block(name)) {
        if (st->heading_level && strcmp(name, "br") == 0) {
            html_chars(st, " ", 1);
        } else {
            flush_line(st);
            if (strcmp(name, "pre") == 0)
                st->is_pre = !is_close;
        }
    }
    return end + 1;
}

int parse_html(const char *in, size_t n, struct buf *out, struct buf *title)
{
    struct html_state st;
    memset(&st, 0, sizeof(st));
    st.out = out;
    buf_init(&st.text, out->max);
    buf_init(&st.heading, HEADING_MAX * 4);
    buf_init(&st.title, HEADING_MAX * 4);
    buf_init(&st.h1, HEADING_MAX * 4);
    if (n >= 3 && memcmp(in, "\xEF\xBB\xBF", 3) == 0) {
        in += 3;
        n -= 3;
    }
    size_t i = 0;
    while (i < n && st.rc == LOCI_OK) {
        if (in[i] != '<') {
            const char *lt = memchr(in + i, '<', n - i);
            size_t run = lt ? (size_t)(lt - (in + i)) : n - i;
            html_chars(&st, in + i, run);
            i += run;
            continue;
        }
        if (n - i >= 4 && memcmp(in + i, "<!--", 4) == 0) {
            const char *end = NULL;
            for (size_t k = i + 4; k + 2 < n && !end; k++)
                if (in[k] == '-' && in[k + 1] == '-' && in[k + 2] == '>')
                    end = in + k;
            i = end ? (size_t)(end - in) + 3 : n;
            continue;
        }
        bool is_markup = i + 1 < n && (in[i + 1] == '!' || in[i + 1] == '?');
        if (!is_markup && !is_tag_start(in, n, i)) {
            html_chars(&st, "<", 1); /* a literal '<' in text */
            i++;
            continue;
        }
        size_t end = tag_end(in, n, i);
        if (end >= n)
            break; /* a tag cut off at the end of the file */
        i = is_markup ? end + 1 : html_tag(&st, in, n, i, end);
    }
    end_heading(&st);
    flush_line(&st);
    if (st.rc == LOCI_OK && title) {
        if (st.title.len)
            st.rc = set_title(title, st.title.p, st.title.len);
        else if (st.h1.len)
            st.rc = set_title(title, st.h1.p, st.h1.len);
    }
    buf_release(&st.text);
    buf_release(&st.heading);
    buf_release(&st.title);
    buf_release(&st.h1);
    return st.rc;
}

/* ------------------------------------------------------------------ */
/* plain text                                                           */

int parse_plain(const char *in, size_t n, bool is_latin1, struct buf *out)
{
    if (n >= 3 && memcmp(in, "\xEF\xBB\xBF", 3) == 0) {
        in += 3;
        n -= 3;
    }
    if (!is_latin1)
        return text_strip_controls(in, n, out);
    struct buf utf8;
    buf_init(&utf8, out->max);
    int rc = LOCI_OK;
    for (size_t i = 0; i < n && rc == LOCI_OK; i++)
        rc = append_cp(&utf8, (unsigned char)in[i] ? (unsigned char)in[i] : 0xFFFD);
    if (rc == LOCI_OK)
        rc = text_strip_controls(utf8.p ? utf8.p : "", utf8.len, out);
    buf_release(&utf8);
    return rc;
}
