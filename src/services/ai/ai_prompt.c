/*
 * ai_prompt.c - prompt templates embedded in the binary (src/services/ai/
 * prompts/, compiled in by cmake/embed.cmake) and the fencing of user
 * content, Loci's defence against prompt injection.
 *
 * Fencing: user content goes between a "<<<DATA label>>>" line and a
 * "<<<END DATA>>>" line; the system prompt says fenced text is data, not
 * instructions. Inside, control characters are stripped and any "<<<" or
 * ">>>" is broken up, so no content can close its fence early or open a new
 * one; content is cut (at a UTF-8 boundary) at a byte cap.
 */
#include "core/err.h"
#include "services/ai/ai_int.h"
#include "services/text/text.h"

#include <string.h>

struct embedded_file {
    const char *name;
    const char *text;
};
extern const struct embedded_file ai__prompts[];
extern const size_t ai__prompts_count;

const char *ai__template(const char *name)
{
    for (size_t i = 0; i < ai__prompts_count; i++)
        if (strcmp(ai__prompts[i].name, name) == 0)
            return ai__prompts[i].text;
    return NULL;
}

int ai__render(const char *tmpl, const char *const *keys, const char *const *values, size_t n,
               struct buf *out)
{
    const char *p = tmpl;
    for (;;) {
        const char *open = strstr(p, "{{");
        if (!open)
            return buf_append_str(out, p);
        const char *close = strstr(open + 2, "}}");
        if (!close)
            return LOCI_EINVAL;
        int rc = buf_append(out, p, (size_t)(open - p));
        if (rc)
            return rc;
        size_t kn = (size_t)(close - open - 2);
        size_t i = 0;
        while (i < n && !(strlen(keys[i]) == kn && memcmp(keys[i], open + 2, kn) == 0))
            i++;
        if (i == n)
            return LOCI_EINVAL;
        rc = buf_append_str(out, values[i]);
        if (rc)
            return rc;
        p = close + 2;
    }
}

/* Length of the longest prefix of p[0..n) that is at most max bytes and
 * does not end inside a UTF-8 sequence. */
static size_t utf8_cut(const char *p, size_t n, size_t max)
{
    if (n <= max)
        return n;
    size_t k = max;
    while (k > 0 && ((unsigned char)p[k] & 0xC0) == 0x80)
        k--;
    return k;
}

int ai__fence(struct buf *out, const char *label, const char *p, size_t n, size_t max_bytes)
{
    struct buf clean;
    buf_init(&clean, n + 16);
    int rc = text_strip_controls(p, utf8_cut(p, n, max_bytes), &clean);
    if (rc)
        goto out;
    rc = buf_printf(out, "<<<DATA %s>>>\n", label);
    const char *s = clean.p ? clean.p : "";
    for (size_t i = 0; !rc && i < clean.len; i++) {
        rc = buf_append_char(out, s[i]);
        /* "<<<" -> "<< <", ">>>" -> ">> >": a fence marker can't be forged */
        if (!rc && i >= 1 && (s[i] == '<' || s[i] == '>') && s[i - 1] == s[i] &&
            i + 1 < clean.len && s[i + 1] == s[i])
            rc = buf_append_char(out, ' ');
    }
    if (!rc && (clean.len == 0 || s[clean.len - 1] != '\n'))
        rc = buf_append_char(out, '\n');
    if (!rc && n > max_bytes)
        rc = buf_append_str(out, "[… cut]\n");
    if (!rc)
        rc = buf_append_str(out, "<<<END DATA>>>\n");
out:
    buf_release(&clean);
    return rc;
}
