/*
 * parse.h - untrusted files to text, safely.
 *
 * Two steps. parse_detect() decides what a file is from its first bytes
 * (libmagic), not from its name or declared type, and refuses what Loci
 * does not read (archives, images, executables...) or a name/type that
 * contradicts the content (a ZIP renamed .pdf). parse_run() then extracts
 * the text in a separate child process with limits on CPU time, address
 * space, file writes and open files, and a wall-clock timeout the parent
 * enforces with SIGKILL: a hostile file can crash or hang only that child.
 * PDFs go through poppler's pdfinfo and pdftotext (executed in the child);
 * Markdown, HTML and plain text through the converters below, run in the
 * forked child.
 *
 * The result is "framed text": UTF-8 with no control characters except
 * '\n', '\t' and two markers:
 *   '\f'                       ends a page (PDFs: after every page);
 *   "\x01" LEVEL TEXT "\n"     a heading line, LEVEL one of '1'..'6'.
 * The title (Markdown front matter or first H1, HTML <title> or first h1,
 * PDF metadata) comes apart.
 *
 * Not for: chunking (docs), storing files (services/blob).
 * Threads: any; parse_run() blocks the calling thread (a job worker) for
 * up to the timeout and forks, so it never runs on an HTTP thread.
 */
#ifndef LOCI_SERVICES_PARSE_H
#define LOCI_SERVICES_PARSE_H

#include "core/buf.h"

#include <stdbool.h>
#include <stddef.h>

/* Markers of framed text. */
#define PARSE_PAGE_BREAK '\f'
#define PARSE_HEADING    '\x01'

/* parse_detect() looks at most this many bytes. */
#define PARSE_HEAD_BYTES 8192

enum parse_kind { PARSE_PDF, PARSE_MARKDOWN, PARSE_TEXT, PARSE_HTML };

struct parse_type {
    enum parse_kind kind;
    const char *media_type; /* static: application/pdf, text/markdown, text/plain, text/html */
    bool is_latin1;         /* ISO-8859-1 text: converted to UTF-8 by parse_run */
};

/* Decide the type of a file from head (its first n bytes, n >= 1; at most
 * PARSE_HEAD_BYTES are looked at). declared_type (the upload's
 * Content-Type, may be NULL) and filename (may be NULL) only choose between
 * text flavours (Markdown, HTML, plain) and are checked against the
 * content: a PDF name or type on anything but a PDF, or a text name or
 * type on a PDF, is a mismatch. Returns LOCI_OK, or LOCI_EMEDIATYPE with
 * *out_code "unsupported_type" or "type_mismatch" and a message for
 * people in why. Safe from any thread. */
int parse_detect(const void *head, size_t n, const char *declared_type, const char *filename,
                 struct parse_type *out, const char **out_code, char *why, size_t why_n);

struct parse_opts {
    int timeout_ms;        /* wall clock for the whole parse; 0 = 60000 */
    int memory_mb;         /* the child's address-space limit (above what it inherits); 0 = 1024 */
    int max_pages;         /* PDFs with more pages are too_many_pages; 0 = no limit */
    size_t max_text_bytes; /* more extracted text is parse_failed; 0 = 64 MiB */
    bool is_burn;          /* test hook: the child burns CPU forever instead of parsing */
    /* Polled about every 100 ms while the child runs; true kills it and
     * the result is error_code "cancelled". May be NULL. */
    bool (*is_cancelled)(void *arg);
    void *cancel_arg;
    /* PDFs: called on the calling thread with each page's text (cleaned as
     * in the result, without the page break; borrowed for the call) as
     * pdftotext produces it, while the parse still runs, so a caller can
     * start on the first pages before the last are extracted. page is
     * 1-based. A parse that fails later may have delivered pages. May be
     * NULL. */
    void (*on_page)(void *arg, int page, const char *text, size_t n);
    void *page_arg;
};

struct parse_result {
    char *text; /* framed text, NUL-terminated; NULL on failure */
    size_t n;
    char *title;            /* one line; NULL when the file has none */
    int pages;              /* PDFs: pages read; 0 for other kinds */
    const char *error_code; /* NULL on success, else parse_timeout, parse_failed,
                               encrypted_pdf, too_many_pages, empty_document,
                               unsupported_type or cancelled */
    char error[256];        /* for people, when error_code is set */
    double ms;              /* wall time */
};

/* Extract the text of the file open on fd (a regular file, read from the
 * start; not closed) as type t says. Returns LOCI_OK with either text or
 * an error_code in *out (a bad file is a result, not a failure), or
 * LOCI_EIO when no child could be started. Release *out with
 * parse_result_release(). The environment variable LOCI_TEST_PARSE_BURN=1
 * sets is_burn (for end-to-end tests of the timeout). */
int parse_run(int fd, const struct parse_type *t, const struct parse_opts *o,
              struct parse_result *out);
void parse_result_release(struct parse_result *r);

/* ---- the converters (run inside the child; exposed for tests and fuzzing) ----
 * Each appends framed text for in (n bytes) to out and the title, if any,
 * to title; invalid UTF-8 and control characters are dropped. They return
 * LOCI_OK or LOCI_ETOOBIG when out or title would pass their maximum. */

/* Front matter (--- ... ---) is stripped, its `title:` kept; ATX and setext
 * headings become heading lines; links and images become their text,
 * [[wikilinks]] their alias or target; code fences stay as text. */
int parse_markdown(const char *in, size_t n, struct buf *out, struct buf *title);
/* script, style, head (but its <title>), template, svg... are skipped;
 * block elements end lines; h1-h6 become heading lines; the common
 * entities and numeric references are decoded. */
int parse_html(const char *in, size_t n, struct buf *out, struct buf *title);
/* Plain text: only cleaned. is_latin1 converts ISO-8859-1 to UTF-8. */
int parse_plain(const char *in, size_t n, bool is_latin1, struct buf *out);

/* The targets of [[wikilinks]] in Markdown (without "|alias" or
 * "#heading"), in order, at most max; each is a slice of in. Links inside
 * code fences are ignored. Returns the count. */
size_t parse_wikilinks(const char *in, size_t n, struct str *out, size_t max);

#endif
