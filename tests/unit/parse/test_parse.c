/*
 * test_parse.c - file types by content and the sandboxed parse child: what
 * libmagic accepts and refuses (a ZIP renamed .pdf, images, executables,
 * UTF-16), the Markdown and HTML converters (front matter, headings, links,
 * wikilinks, skipped elements, entities), and hostile files run for real:
 * a truncated PDF, an encrypted PDF (qpdf), a CPU-burning child killed by
 * the timeout, a cancel, the page cap, an empty document, the text cap.
 */
#include "core/alloc.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/err.h"
#include "harness.h"
#include "services/parse/parse.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- helpers ---- */

static int write_file(const char *name, const void *p, size_t n, char *path, size_t path_n)
{
    snprintf(path, path_n, "%s/%s", harness_tmpdir(), name);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0);
    CHECK_INT(write(fd, p, n), ==, (long long)n);
    lseek(fd, 0, SEEK_SET);
    return fd;
}

static void detect_ok(const char *content, size_t n, const char *decl, const char *name,
                      enum parse_kind kind, const char *media)
{
    struct parse_type t;
    const char *code = NULL;
    char why[256] = "";
    int rc = parse_detect(content, n, decl, name, &t, &code, why, sizeof(why));
    if (rc)
        fprintf(stderr, "  detect %s: %s (%s)\n", name ? name : "-", code, why);
    CHECK_INT(rc, ==, LOCI_OK);
    CHECK_INT(t.kind, ==, kind);
    CHECK_STR(t.media_type, media);
}

static void detect_refused(const char *content, size_t n, const char *decl, const char *name,
                           const char *want_code)
{
    struct parse_type t;
    const char *code = NULL;
    char why[256] = "";
    CHECK_INT(parse_detect(content, n, decl, name, &t, &code, why, sizeof(why)), ==,
              LOCI_EMEDIATYPE);
    CHECK_STR(code, want_code);
    CHECK(why[0] != '\0');
}

static char *md(const char *in, char **title)
{
    struct buf out, t;
    buf_init(&out, 1 << 20);
    buf_init(&t, 1024);
    CHECK_INT(parse_markdown(in, strlen(in), &out, &t), ==, LOCI_OK);
    *title = buf_detach(&t, NULL);
    return buf_detach(&out, NULL);
}

static char *html(const char *in, char **title)
{
    struct buf out, t;
    buf_init(&out, 1 << 20);
    buf_init(&t, 1024);
    CHECK_INT(parse_html(in, strlen(in), &out, &t), ==, LOCI_OK);
    *title = buf_detach(&t, NULL);
    return buf_detach(&out, NULL);
}

static struct parse_opts quick(void)
{
    return (struct parse_opts){.timeout_ms = 10000, .memory_mb = 512, .max_pages = 100};
}

/* ---- types ---- */

TEST(types_by_content)
{
    struct buf pdf;
    buf_init(&pdf, 1 << 20);
    const char *pages[] = {"Hello"};
    harness_make_pdf(pages, 1, &pdf);
    detect_ok(pdf.p, pdf.len, "application/pdf", "notes.pdf", PARSE_PDF, "application/pdf");
    detect_ok(pdf.p, pdf.len, NULL, NULL, PARSE_PDF, "application/pdf");
    detect_ok(pdf.p, pdf.len, "application/octet-stream", "scan", PARSE_PDF, "application/pdf");
    /* a PDF named as text */
    detect_refused(pdf.p, pdf.len, NULL, "notes.md", "type_mismatch");
    detect_refused(pdf.p, pdf.len, "text/plain", "notes", "type_mismatch");
    buf_release(&pdf);

    const char *note = "---\ntitle: A\n---\n# Heading\n\nSome text.\n";
    detect_ok(note, strlen(note), "text/markdown", "a.md", PARSE_MARKDOWN, "text/markdown");
    detect_ok(note, strlen(note), NULL, "a.markdown", PARSE_MARKDOWN, "text/markdown");
    detect_ok(note, strlen(note), NULL, "a.txt", PARSE_TEXT, "text/plain");
    detect_ok(note, strlen(note), NULL, NULL, PARSE_TEXT, "text/plain");
    /* text named as a PDF */
    detect_refused(note, strlen(note), NULL, "a.pdf", "type_mismatch");
    detect_refused(note, strlen(note), "application/pdf", "a", "type_mismatch");

    const char *page = "<!DOCTYPE html><html><head><title>T</title></head><body>x</body></html>";
    detect_ok(page, strlen(page), NULL, "page", PARSE_HTML, "text/html");
    detect_ok("<p>fragment</p>", 15, NULL, "f.html", PARSE_HTML, "text/html");
    detect_ok("int main(void) { return 0; }\n", 29, NULL, "code.md", PARSE_MARKDOWN,
              "text/markdown");

    struct parse_type t;
    const char *code;
    char why[256];
    CHECK_INT(parse_detect("caf\xe9 au lait\n", 13, NULL, "l.txt", &t, &code, why, sizeof(why)), ==,
              LOCI_OK);
    CHECK(t.is_latin1);

    /* not read at all */
    static const char zip[] = "PK\x03\x04\x14\x00\x00\x00\x08\x00\x00\x00!\x00"
                              "abcdefghijklmnopqrstuvwxyz0123456789";
    detect_refused(zip, sizeof(zip) - 1, NULL, "archive.zip", "unsupported_type");
    detect_refused(zip, sizeof(zip) - 1, "application/pdf", "paper.pdf", "type_mismatch");
    static const char png[] = "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00"
                              "\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89";
    detect_refused(png, sizeof(png) - 1, NULL, "photo.png", "unsupported_type");
    detect_refused("\xff\xfeh\x00i\x00\n\x00", 8, NULL, "u16.txt", "unsupported_type");
    detect_refused("", 0, NULL, "empty.txt", "unsupported_type");
    int fd = open("/proc/self/exe", O_RDONLY);
    char elf[PARSE_HEAD_BYTES];
    ssize_t n = read(fd, elf, sizeof(elf));
    close(fd);
    CHECK(n > 64);
    detect_refused(elf, (size_t)n, NULL, "tool", "unsupported_type");
    detect_refused(elf, (size_t)n, NULL, "notes.md", "type_mismatch");
}

/* ---- converters ---- */

TEST(markdown_structure)
{
    char *title = NULL;
    char *out = md("---\n"
                   "title: \"Cell Biology\"\n"
                   "tags: [bio]\n"
                   "---\n"
                   "Intro line with **bold**, `code` and a [link](http://x.test/a_(b)).\n"
                   "![diagram of a cell](cell.png) and [[Mitochondria|the powerhouse]] and "
                   "[[Ribosome#Structure]].\n"
                   "\n"
                   "## Membranes ##\n"
                   "> quoted words\n"
                   "Setext Heading\n"
                   "==============\n"
                   "```\n"
                   "# not a heading\n"
                   "```\n"
                   "<!-- a comment\n"
                   "spanning lines -->\n"
                   "[ref]: http://example.test\n"
                   "Visit <https://loci.test> now.\n",
                   &title);
    CHECK_STR(title, "Cell Biology");
    CHECK(strstr(out, "title:") == NULL);
    CHECK(strstr(out, "tags") == NULL);
    CHECK(strstr(out, "Intro line with bold, code and a link.\n") != NULL);
    CHECK(strstr(out, "diagram of a cell and the powerhouse and Ribosome.\n") != NULL);
    CHECK(strstr(out, "\x01"
                      "2Membranes\n") != NULL);
    CHECK(strstr(out, "quoted words\n") != NULL);
    CHECK(strstr(out, "\x01"
                      "1Setext Heading\n") != NULL);
    CHECK(strstr(out, "# not a heading\n") != NULL);
    CHECK(strstr(out, "comment") == NULL);
    CHECK(strstr(out, "example.test") == NULL);
    CHECK(strstr(out, "Visit https://loci.test now.") != NULL);
    xfree(out);
    xfree(title);

    /* no front matter: the first H1 is the title; an unclosed front matter is text */
    out = md("---\nnot closed\n# First\ntext\n# Second\n", &title);
    CHECK_STR(title, "First");
    CHECK(strstr(out, "not closed") != NULL);
    xfree(out);
    xfree(title);

    /* control characters and markers in the input never become markers */
    out = md("a\x01"
             "2fake\fpage\x02 b\r\n",
             &title);
    CHECK_STR(out, "a2fakepage b\n");
    xfree(out);
    xfree(title);
}

TEST(wikilinks)
{
    const char *note = "See [[Alpha]], [[Beta|the beta]] and [[Gamma#Part]].\n"
                       "```\n[[Not A Link]]\n```\n"
                       "[[ Delta ]] [[]] [[broken\n";
    struct str links[8];
    size_t n = parse_wikilinks(note, strlen(note), links, 8);
    CHECK_INT(n, ==, 4);
    const char *want[] = {"Alpha", "Beta", "Gamma", "Delta"};
    for (size_t i = 0; i < n; i++) {
        CHECK_INT(links[i].n, ==, strlen(want[i]));
        CHECK(memcmp(links[i].p, want[i], links[i].n) == 0);
    }
    CHECK_INT(parse_wikilinks(note, strlen(note), links, 2), ==, 2);
}

TEST(html_structure)
{
    char *title = NULL;
    char *out = html("<!DOCTYPE html><html><head><title>The &amp; Title</title>"
                     "<style>body { color: red }</style>"
                     "<script>if (a < b) { document.write('</p>evil'); }</script></head>"
                     "<body><h1>Main <em>Heading</em></h1>"
                     "<p>First   paragraph\n with  <b>bold</b> &lt;tag&gt; &#233;&#x20AC; "
                     "&nbsp;&unknown; AT&T</p>"
                     "<div>Second<br>line</div><!-- hidden -->"
                     "<h3 class=\"x>y\">Sub</h3><ul><li>one</li><li>two</li></ul>"
                     "<pre>  keep\n  spacing</pre>"
                     "<noscript>no</noscript><svg><text>drawn</text></svg>"
                     "<p>tail</p></body></html>",
                     &title);
    CHECK_STR(title, "The & Title");
    CHECK(strstr(out, "color") == NULL);
    CHECK(strstr(out, "evil") == NULL);
    CHECK(strstr(out, "\x01"
                      "1Main Heading\n") != NULL);
    CHECK(strstr(out, "First paragraph with bold <tag> \xc3\xa9\xe2\x82\xac &unknown; AT&T\n") !=
          NULL);
    CHECK(strstr(out, "Second\nline\n") != NULL);
    CHECK(strstr(out, "hidden") == NULL);
    CHECK(strstr(out, "\x01"
                      "3Sub\n") != NULL);
    CHECK(strstr(out, "one\ntwo\n") != NULL);
    CHECK(strstr(out, "  keep\n  spacing\n") != NULL);
    CHECK(strstr(out, "drawn") == NULL);
    CHECK(strstr(out, "no\n") == NULL);
    CHECK(strstr(out, "tail\n") != NULL);
    xfree(out);
    xfree(title);

    /* no <title>: the first h1; broken markup ends quietly */
    out = html("<h1>Only</h1>text < 5 and <p unterminated", &title);
    CHECK_STR(title, "Only");
    CHECK(strstr(out, "text < 5 and") != NULL);
    xfree(out);
    xfree(title);
}

/* ---- the child ---- */

TEST(run_markdown_and_text)
{
    const char *note = "---\ntitle: Note\n---\n# Top\nSome words here.\n## Next\nMore words.\n";
    char path[512];
    int fd = write_file("n.md", note, strlen(note), path, sizeof(path));
    struct parse_type t = {PARSE_MARKDOWN, "text/markdown", false};
    struct parse_opts o = quick();
    struct parse_result r;
    CHECK_INT(parse_run(fd, &t, &o, &r), ==, LOCI_OK);
    CHECK(r.error_code == NULL);
    CHECK_STR(r.title, "Note");
    CHECK_STR(r.text, "\x01"
                      "1Top\nSome words here.\n\x01"
                      "2Next\nMore words.\n");
    CHECK_INT(r.pages, ==, 0);
    parse_result_release(&r);
    close(fd);

    fd = write_file("l.txt", "caf\xe9\n", 5, path, sizeof(path));
    struct parse_type lt = {PARSE_TEXT, "text/plain", true};
    CHECK_INT(parse_run(fd, &lt, &o, &r), ==, LOCI_OK);
    CHECK_STR(r.text, "caf\xc3\xa9\n");
    CHECK(r.title == NULL);
    parse_result_release(&r);
    close(fd);

    /* only white space and markup: empty_document */
    fd = write_file("e.md", "---\ntitle: x\n---\n\n   \n<!-- -->\n", 31, path, sizeof(path));
    CHECK_INT(parse_run(fd, &t, &o, &r), ==, LOCI_OK);
    CHECK_STR(r.error_code, "empty_document");
    CHECK(r.text == NULL);
    parse_result_release(&r);
    close(fd);

    /* the text cap */
    char big[20000];
    memset(big, 'a', sizeof(big));
    fd = write_file("big.txt", big, sizeof(big), path, sizeof(path));
    struct parse_type pt = {PARSE_TEXT, "text/plain", false};
    o.max_text_bytes = 1000;
    CHECK_INT(parse_run(fd, &pt, &o, &r), ==, LOCI_OK);
    CHECK_STR(r.error_code, "parse_failed");
    parse_result_release(&r);
    close(fd);
}

struct seen_pages {
    int n;
    int last;
    char first[64];
};

static void on_page(void *arg, int page, const char *text, size_t n)
{
    struct seen_pages *sp = arg;
    CHECK_INT(page, ==, sp->last + 1);
    CHECK(memchr(text, '\f', n) == NULL);
    if (page == 1)
        snprintf(sp->first, sizeof(sp->first), "%.*s", (int)n, text);
    sp->last = page;
    sp->n++;
}

TEST(run_pdf_pages_and_title)
{
    const char *pages[] = {"Photosynthesis converts light.", "Mitochondria make energy.",
                           "Third page."};
    struct buf pdf;
    buf_init(&pdf, 1 << 20);
    harness_make_pdf(pages, 3, &pdf);
    char path[512];
    int fd = write_file("a.pdf", pdf.p, pdf.len, path, sizeof(path));
    struct parse_type t = {PARSE_PDF, "application/pdf", false};
    struct parse_opts o = quick();
    struct seen_pages sp = {0, 0, ""};
    o.on_page = on_page;
    o.page_arg = &sp;
    struct parse_result r;
    CHECK_INT(parse_run(fd, &t, &o, &r), ==, LOCI_OK);
    if (r.error_code)
        fprintf(stderr, "  %s: %s\n", r.error_code, r.error);
    CHECK_INT(sp.n, ==, 3); /* each page as it came */
    CHECK(strstr(sp.first, "Photosynthesis converts light.") != NULL);
    o.on_page = NULL;
    CHECK(r.error_code == NULL);
    CHECK_INT(r.pages, ==, 3);
    size_t ff = 0;
    for (size_t i = 0; i < r.n; i++)
        ff += r.text[i] == '\f';
    CHECK_INT(ff, ==, 3);
    CHECK(strstr(r.text, "Photosynthesis converts light.") < strstr(r.text, "Mitochondria"));
    CHECK(strstr(r.text, "\fMitochondria make energy.") != NULL ||
          strstr(r.text, "\f") < strstr(r.text, "Mitochondria"));
    parse_result_release(&r);

    /* the page cap */
    o.max_pages = 2;
    CHECK_INT(parse_run(fd, &t, &o, &r), ==, LOCI_OK);
    CHECK_STR(r.error_code, "too_many_pages");
    CHECK(strstr(r.error, "3 pages") != NULL);
    parse_result_release(&r);
    close(fd);

    /* truncated: half a PDF */
    fd = write_file("t.pdf", pdf.p, pdf.len / 2, path, sizeof(path));
    o.max_pages = 100;
    CHECK_INT(parse_run(fd, &t, &o, &r), ==, LOCI_OK);
    CHECK_STR(r.error_code, "parse_failed");
    parse_result_release(&r);
    close(fd);

    /* a page with no text */
    const char *blank[] = {" "};
    buf_reset(&pdf);
    harness_make_pdf(blank, 1, &pdf);
    fd = write_file("b.pdf", pdf.p, pdf.len, path, sizeof(path));
    CHECK_INT(parse_run(fd, &t, &o, &r), ==, LOCI_OK);
    CHECK_STR(r.error_code, "empty_document");
    parse_result_release(&r);
    close(fd);
    buf_release(&pdf);
}

TEST(run_encrypted_pdf)
{
    if (system("command -v qpdf >/dev/null 2>&1") != 0) {
        fprintf(stderr, "  skipped: qpdf not installed (scripts/install-deps)\n");
        return;
    }
    const char *pages[] = {"Secret words."};
    struct buf pdf;
    buf_init(&pdf, 1 << 20);
    harness_make_pdf(pages, 1, &pdf);
    char plain[512], enc[600], cmd[1400];
    close(write_file("p.pdf", pdf.p, pdf.len, plain, sizeof(plain)));
    buf_release(&pdf);
    snprintf(enc, sizeof(enc), "%s.enc.pdf", plain);
    snprintf(cmd, sizeof(cmd), "qpdf --encrypt user-pw owner-pw 256 -- '%s' '%s'", plain, enc);
    CHECK_INT(system(cmd), ==, 0);
    int fd = open(enc, O_RDONLY);
    CHECK(fd >= 0);
    struct parse_type t = {PARSE_PDF, "application/pdf", false};
    struct parse_opts o = quick();
    struct parse_result r;
    CHECK_INT(parse_run(fd, &t, &o, &r), ==, LOCI_OK);
    CHECK_STR(r.error_code, "encrypted_pdf");
    CHECK(r.text == NULL);
    parse_result_release(&r);
    close(fd);
}

static bool cancel_after(void *arg)
{
    return clock_mono_ns() > *(int64_t *)arg;
}

TEST(run_burning_child_is_killed)
{
    char path[512];
    int fd = write_file("x.md", "# x\ny\n", 6, path, sizeof(path));
    struct parse_type t = {PARSE_MARKDOWN, "text/markdown", false};
    struct parse_opts o = quick();
    o.timeout_ms = 300;
    o.is_burn = true;
    struct parse_result r;
    int64_t t0 = clock_mono_ns();
    CHECK_INT(parse_run(fd, &t, &o, &r), ==, LOCI_OK);
    double ms = (double)(clock_mono_ns() - t0) / 1e6;
    CHECK_STR(r.error_code, "parse_timeout");
    CHECK(ms >= 290 && ms < 3000);
    parse_result_release(&r);

    /* the same for the PDF path, and a cancel */
    struct parse_type pt = {PARSE_PDF, "application/pdf", false};
    CHECK_INT(parse_run(fd, &pt, &o, &r), ==, LOCI_OK);
    CHECK_STR(r.error_code, "parse_timeout");
    parse_result_release(&r);
    o.timeout_ms = 10000;
    int64_t when = clock_mono_ns() + 200 * 1000000LL;
    o.is_cancelled = cancel_after;
    o.cancel_arg = &when;
    t0 = clock_mono_ns();
    CHECK_INT(parse_run(fd, &t, &o, &r), ==, LOCI_OK);
    CHECK_STR(r.error_code, "cancelled");
    CHECK((clock_mono_ns() - t0) / 1000000 < 2000);
    parse_result_release(&r);
    close(fd);
}

/* Random bytes and shuffled markup through every converter: no crash, no
 * read past the input (ASan), output always within its maximum. */
TEST(random_input_never_crashes)
{
    static const char *const atoms[] = {
        "<",       ">",     "</",      "<!--",     "-->",      "&",          "&#",   "&#x", ";",
        "[[",      "]]",    "[",       "](",       ")",        "![",         "#",    "\n",  "---\n",
        "```",     "<h1>",  "</h1>",   "<script>", "</script", "\"",         "'",    "|",   "\\",
        "**",      "=\n",   "\r",      "\x01",     "\f",       "\xe9",       "\xff", "a",   " ",
        "title: ", "<pre>", "<title>", "<br/>",    "&amp;",    "&#99999999;"};
    unsigned seed = 12345;
    char in[600];
    for (int iter = 0; iter < 3000; iter++) {
        size_t n = 0;
        while (n < sizeof(in) - 16) {
            seed = seed * 1103515245u + 12345u;
            unsigned r = (seed >> 16) & 0x7fff;
            if (r % 4 == 0) {
                in[n++] = (char)(r >> 3);
            } else {
                const char *a = atoms[r % (sizeof(atoms) / sizeof(atoms[0]))];
                size_t k = strlen(a);
                if (n + k >= sizeof(in))
                    break;
                memcpy(in + n, a, k);
                n += k;
            }
            if (r % 97 == 0)
                break;
        }
        struct buf out, title;
        buf_init(&out, 4096);
        buf_init(&title, 256);
        int rc = parse_markdown(in, n, &out, &title);
        CHECK(rc == LOCI_OK || rc == LOCI_ETOOBIG);
        CHECK(out.len <= 4096 && title.len <= 256);
        buf_reset(&out);
        buf_reset(&title);
        rc = parse_html(in, n, &out, &title);
        CHECK(rc == LOCI_OK || rc == LOCI_ETOOBIG);
        buf_reset(&out);
        rc = parse_plain(in, n, iter % 2 == 0, &out);
        CHECK(rc == LOCI_OK || rc == LOCI_ETOOBIG);
        struct str links[4];
        CHECK(parse_wikilinks(in, n, links, 4) <= 4);
        buf_release(&out);
        buf_release(&title);
    }
}
