/*
 * parse.c - file types by content (libmagic) and the sandboxed parse child.
 *
 * parse_run() forks a child per step. In the child, before anything reads
 * the file: its own process group, the file on fd 3, stdout and stderr on
 * pipes, stdin on /dev/null, every other descriptor closed, and limits:
 * CPU seconds (the timeout, rounded up, plus one), address space, no file
 * writes (RLIMIT_FSIZE 0: pipes are not files), few descriptors, no core
 * dumps. PDFs: the child executes `pdfinfo` (pages, encryption, title)
 * and then `pdftotext -layout -enc UTF-8` with a clean environment; other
 * kinds: the forked child runs the converter of parse_text.c and writes
 * the framed text. The parent reads both pipes with poll() against one
 * wall-clock deadline for the whole parse and kills the process group with
 * SIGKILL when it passes, when the output grows past its cap, or when the
 * caller cancels.
 *
 * The child of a converter is a fork of a threaded server: it only reads,
 * converts (our code and malloc, which glibc keeps usable after fork) and
 * writes, then _exit()s.
 */
#include "services/parse/parse.h"

#include "core/alloc.h"
#include "core/clock.h"
#include "core/err.h"
#include "services/text/text.h"

#include <errno.h>
#include <fcntl.h>
#include <magic.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define DEFAULT_TIMEOUT_MS 60000
#define DEFAULT_MEMORY_MB  1024
#define DEFAULT_MAX_TEXT   ((size_t)64 << 20)
#define STDERR_MAX         8192
#define TITLE_MARK         '\x02' /* child -> parent: the title line comes first */

/* Exit statuses of the converter child. */
#define CHILD_TOO_BIG 3
#define CHILD_READ    4

#if defined(__SANITIZE_ADDRESS__)
#define HAS_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HAS_ASAN 1
#endif
#endif

/* ------------------------------------------------------------------ */
/* types                                                                */

static pthread_key_t magic_key;
static pthread_once_t magic_once = PTHREAD_ONCE_INIT;

static void magic_release(void *m)
{
    magic_close(m);
}

static void magic_key_init(void)
{
    pthread_key_create(&magic_key, magic_release);
}

/* A magic cookie per thread (they are not thread-safe), loaded once. */
static magic_t thread_magic(void)
{
    pthread_once(&magic_once, magic_key_init);
    magic_t m = pthread_getspecific(magic_key);
    if (m)
        return m;
    m = magic_open(MAGIC_MIME_TYPE | MAGIC_MIME_ENCODING | MAGIC_NO_CHECK_COMPRESS |
                   MAGIC_NO_CHECK_ELF | MAGIC_ERROR);
    if (!m)
        return NULL;
    if (magic_load(m, NULL) != 0) {
        magic_close(m);
        return NULL;
    }
    pthread_setspecific(magic_key, m);
    return m;
}

/* Lowercase copy of s up to ';' (or the end), trimmed, into out. */
static void media_base(const char *s, char *out, size_t n)
{
    size_t o = 0;
    if (!s) {
        out[0] = '\0';
        return;
    }
    while (*s == ' ' || *s == '\t')
        s++;
    for (; *s && *s != ';' && *s != ' ' && o + 1 < n; s++)
        out[o++] = (char)(*s >= 'A' && *s <= 'Z' ? *s + 32 : *s);
    out[o] = '\0';
}

/* The lowercase extension of a file name ("" when none). */
static void extension(const char *name, char *out, size_t n)
{
    out[0] = '\0';
    if (!name)
        return;
    const char *slash = strrchr(name, '/');
    const char *base = slash ? slash + 1 : name;
    const char *dot = strrchr(base, '.');
    if (!dot || dot == base || strlen(dot + 1) >= n)
        return;
    media_base(dot + 1, out, n);
}

static bool ext_is(const char *ext, const char *const *list)
{
    for (size_t i = 0; list[i]; i++)
        if (strcmp(ext, list[i]) == 0)
            return true;
    return false;
}

static const char *const md_exts[] = {"md", "markdown", "mdown", "mkd", NULL};
static const char *const html_exts[] = {"html", "htm", "xhtml", NULL};
static const char *const text_exts[] = {"txt", "text", NULL};

int parse_detect(const void *head, size_t n, const char *declared_type, const char *filename,
                 struct parse_type *out, const char **out_code, char *why, size_t why_n)
{
    *out_code = "unsupported_type";
    memset(out, 0, sizeof(*out));
    if (n == 0) {
        snprintf(why, why_n, "the file is empty");
        return LOCI_EMEDIATYPE;
    }
    magic_t m = thread_magic();
    const char *found =
        m ? magic_buffer(m, head, n < PARSE_HEAD_BYTES ? n : PARSE_HEAD_BYTES) : NULL;
    if (!found) {
        snprintf(why, why_n, "the file type cannot be determined");
        return LOCI_EMEDIATYPE;
    }
    char type[96], charset[48] = "", decl[96], ext[16];
    media_base(found, type, sizeof(type));
    const char *cs = strstr(found, "charset=");
    if (cs)
        media_base(cs + 8, charset, sizeof(charset));
    media_base(declared_type, decl, sizeof(decl));
    if (strcmp(decl, "application/octet-stream") == 0)
        decl[0] = '\0'; /* "no idea": what browsers send for unknown files */
    extension(filename, ext, sizeof(ext));

    bool says_pdf = strcmp(ext, "pdf") == 0 || strcmp(decl, "application/pdf") == 0;
    bool says_md = ext_is(ext, md_exts) || strcmp(decl, "text/markdown") == 0 ||
                   strcmp(decl, "text/x-markdown") == 0;
    bool says_html = ext_is(ext, html_exts) || strcmp(decl, "text/html") == 0 ||
                     strcmp(decl, "application/xhtml+xml") == 0;
    bool says_text =
        says_md || says_html || ext_is(ext, text_exts) || strncmp(decl, "text/", 5) == 0;

    if (strcmp(type, "application/pdf") == 0) {
        if (says_text && !says_pdf) {
            *out_code = "type_mismatch";
            snprintf(why, why_n, "the file is a PDF but is named or declared as text");
            return LOCI_EMEDIATYPE;
        }
        out->kind = PARSE_PDF;
        out->media_type = "application/pdf";
        return LOCI_OK;
    }
    bool is_text = strncmp(type, "text/", 5) == 0 ||
                   (strcmp(type, "application/json") == 0 && says_text && !says_html);
    if (is_text && (strncmp(charset, "utf-16", 6) == 0 || strncmp(charset, "utf-32", 6) == 0 ||
                    strcmp(charset, "ebcdic") == 0 || strcmp(charset, "binary") == 0)) {
        snprintf(why, why_n, "text in %s is not supported: convert it to UTF-8",
                 charset[0] ? charset : "this encoding");
        return LOCI_EMEDIATYPE;
    }
    if (is_text) {
        if (says_pdf) {
            *out_code = "type_mismatch";
            snprintf(why, why_n, "the file is named or declared as a PDF but its content is %s",
                     type);
            return LOCI_EMEDIATYPE;
        }
        out->is_latin1 = strcmp(charset, "iso-8859-1") == 0 || strcmp(charset, "unknown-8bit") == 0;
        if (says_md) {
            out->kind = PARSE_MARKDOWN;
            out->media_type = "text/markdown";
        } else if (strcmp(type, "text/html") == 0 || says_html) {
            out->kind = PARSE_HTML;
            out->media_type = "text/html";
        } else {
            out->kind = PARSE_TEXT;
            out->media_type = "text/plain";
        }
        return LOCI_OK;
    }
    if (says_pdf || says_text) {
        *out_code = "type_mismatch";
        snprintf(why, why_n, "the file is named or declared as %s but its content is %s",
                 says_pdf ? "a PDF" : "text", type);
        return LOCI_EMEDIATYPE;
    }
    snprintf(why, why_n, "%s files are not supported: upload PDF, Markdown, plain text or HTML",
             type);
    return LOCI_EMEDIATYPE;
}

/* ------------------------------------------------------------------ */
/* the child                                                            */

struct sandbox {
    int in_fd;      /* the file, for fd 3 */
    int timeout_ms; /* CPU limit from it */
    int memory_mb;  /* address space */
    bool is_exec;   /* argv is executed; else the converter runs */
    bool is_burn;   /* test hook */
    const char *const *argv;
    const struct parse_type *t;
    size_t max_text;
    /* called after each read of the child's stdout (may be NULL) */
    void (*on_out)(void *arg, const struct buf *out);
    void *out_arg;
};

#ifndef HAS_ASAN
/* Virtual memory of this process in bytes (0 when unknown). */
static uint64_t current_vsz(void)
{
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    char s[128];
    ssize_t n = read(fd, s, sizeof(s) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    s[n] = '\0';
    uint64_t pages = 0;
    for (ssize_t i = 0; i < n && s[i] >= '0' && s[i] <= '9'; i++)
        pages = pages * 10 + (uint64_t)(s[i] - '0');
    return pages * (uint64_t)sysconf(_SC_PAGESIZE);
}
#endif

static void limit(int resource, rlim_t soft, rlim_t hard)
{
    struct rlimit r = {soft, hard};
    setrlimit(resource, &r);
}

static void child_limits(const struct sandbox *sb)
{
    rlim_t cpu = (rlim_t)(sb->timeout_ms + 999) / 1000 + 1;
    limit(RLIMIT_CPU, cpu, cpu + 1);
    limit(RLIMIT_FSIZE, 0, 0);
    limit(RLIMIT_NOFILE, 64, 64);
    limit(RLIMIT_CORE, 0, 0);
    rlim_t mem = (rlim_t)sb->memory_mb << 20;
    if (sb->is_exec) {
        limit(RLIMIT_AS, mem, mem);
    } else {
#ifndef HAS_ASAN
        /* A fork keeps the server's mappings (thread stacks, arenas): the
         * limit is on what the converter adds. ASan's shadow memory cannot
         * live under any limit, so sanitizer builds go without. */
        uint64_t base = current_vsz();
        limit(RLIMIT_AS, (rlim_t)base + mem, (rlim_t)base + mem);
#endif
    }
}

static bool write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return false;
        p += k;
        n -= (size_t)k;
    }
    return true;
}

/* The converter child: read fd 3, convert, write title and text to fd 1. */
static _Noreturn void convert_main(const struct sandbox *sb)
{
    struct stat st;
    if (fstat(3, &st) != 0)
        _exit(CHILD_READ);
    struct buf in, out, title;
    buf_init(&in, (size_t)st.st_size + 1);
    buf_init(&out, sb->max_text);
    buf_init(&title, 4096);
    char chunk[65536];
    for (;;) {
        ssize_t k = read(3, chunk, sizeof(chunk));
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            _exit(CHILD_READ);
        if (k == 0)
            break;
        if (buf_append(&in, chunk, (size_t)k) != LOCI_OK)
            break; /* grew meanwhile: what was there at the start is enough */
    }
    const char *p = in.p ? in.p : "";
    int rc;
    switch (sb->t->kind) {
    case PARSE_MARKDOWN:
        if (sb->t->is_latin1) {
            struct buf u;
            buf_init(&u, in.len * 2 + 1);
            rc = parse_plain(p, in.len, true, &u);
            if (rc == LOCI_OK)
                rc = parse_markdown(u.p ? u.p : "", u.len, &out, &title);
            break;
        }
        rc = parse_markdown(p, in.len, &out, &title);
        break;
    case PARSE_HTML:
        if (sb->t->is_latin1) {
            struct buf u;
            buf_init(&u, in.len * 2 + 1);
            rc = parse_plain(p, in.len, true, &u);
            if (rc == LOCI_OK)
                rc = parse_html(u.p ? u.p : "", u.len, &out, &title);
            break;
        }
        rc = parse_html(p, in.len, &out, &title);
        break;
    default:
        rc = parse_plain(p, in.len, sb->t->is_latin1, &out);
        break;
    }
    if (rc)
        _exit(CHILD_TOO_BIG);
    if (title.len) {
        char mark = TITLE_MARK;
        if (!write_all(1, &mark, 1) || !write_all(1, title.p, title.len) || !write_all(1, "\n", 1))
            _exit(CHILD_READ);
    }
    if (out.len && !write_all(1, out.p, out.len))
        _exit(CHILD_READ);
    _exit(0); /* no clean-up: the process image goes away whole */
}

static _Noreturn void child_main(const struct sandbox *sb, int out_w, int err_w)
{
    setpgid(0, 0);
    /* The server blocks its stop signals and ignores SIGPIPE: undo that. */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    /* fd 3 = the file, 1 = out, 2 = err, 0 = /dev/null. The file may sit
     * at 0-2 itself: move it out of the way first. */
    int in = fcntl(sb->in_fd, F_DUPFD, 10);
    int nul = open("/dev/null", O_RDONLY);
    if (in < 0 || nul < 0 || dup2(nul, 0) < 0 || dup2(out_w, 1) < 0 || dup2(err_w, 2) < 0 ||
        dup2(in, 3) < 0)
        _exit(127);
    lseek(3, 0, SEEK_SET);
    close_range(4, ~0U, 0);
    child_limits(sb);
    if (sb->is_burn) {
        volatile unsigned long spin = 0;
        for (;;)
            spin++;
    }
    if (!sb->is_exec)
        convert_main(sb);
    static char *const env[] = {"PATH=/usr/local/bin:/usr/bin:/bin", "LC_ALL=C.UTF-8",
                                "HOME=/nonexistent", NULL};
    execvpe(sb->argv[0], (char *const *)sb->argv, env);
    static const char msg[] = "exec failed\n";
    write_all(2, msg, sizeof(msg) - 1);
    _exit(126);
}

/* ------------------------------------------------------------------ */
/* the parent                                                           */

enum outcome { RAN, TIMED_OUT, CANCELLED, OUTPUT_TOO_BIG };

struct ran {
    enum outcome outcome;
    int status; /* waitpid status when RAN */
};

static int64_t ms_left(int64_t deadline_ns)
{
    int64_t left = (deadline_ns - clock_mono_ns()) / 1000000;
    return left < 0 ? 0 : left;
}

static void kill_group(pid_t pid)
{
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
}

/* Drain fd into b; false at EOF or error. Past b's maximum, *is_full. */
static bool drain(int fd, struct buf *b, bool *is_full, bool is_lossy)
{
    char chunk[65536];
    ssize_t k = read(fd, chunk, sizeof(chunk));
    if (k < 0 && (errno == EINTR || errno == EAGAIN))
        return true;
    if (k <= 0)
        return false;
    if (buf_append(b, chunk, (size_t)k) != LOCI_OK && !is_lossy)
        *is_full = true;
    return true;
}

/* Run one sandboxed step to its end, the deadline or a cancel. */
static int sandbox_run(const struct sandbox *sb, const struct parse_opts *o, int64_t deadline_ns,
                       struct buf *out, struct buf *err, struct ran *r)
{
    memset(r, 0, sizeof(*r));
    int out_p[2], err_p[2];
    if (pipe2(out_p, O_CLOEXEC) != 0)
        return LOCI_EIO;
    if (pipe2(err_p, O_CLOEXEC) != 0) {
        close(out_p[0]);
        close(out_p[1]);
        return LOCI_EIO;
    }
    pid_t pid = fork();
    if (pid == 0)
        child_main(sb, out_p[1], err_p[1]);
    close(out_p[1]);
    close(err_p[1]);
    if (pid < 0) {
        close(out_p[0]);
        close(err_p[0]);
        return LOCI_EIO;
    }
    setpgid(pid, pid); /* also in the child: whichever runs first */
    struct pollfd pfd[2] = {{out_p[0], POLLIN, 0}, {err_p[0], POLLIN, 0}};
    bool is_open[2] = {true, true}, is_full = false;
    r->outcome = RAN;
    for (;;) {
        if (is_full) {
            r->outcome = OUTPUT_TOO_BIG;
            break;
        }
        if (o->is_cancelled && o->is_cancelled(o->cancel_arg)) {
            r->outcome = CANCELLED;
            break;
        }
        int64_t left = ms_left(deadline_ns);
        if (left == 0) {
            r->outcome = TIMED_OUT;
            break;
        }
        if (!is_open[0] && !is_open[1]) {
            /* both pipes closed: the child is exiting (or lingering) */
            pid_t w = waitpid(pid, &r->status, WNOHANG);
            if (w == pid)
                break;
            if (w < 0 && errno == ECHILD) {
                r->status = 0; /* reaped elsewhere (SIGCHLD ignored): judge by the output */
                break;
            }
            clock_sleep_ms(left < 5 ? left : 5);
            continue;
        }
        int n = poll(pfd, 2, (int)(left < 100 ? left : 100));
        if (n < 0 && errno != EINTR)
            break;
        for (int i = 0; i < 2 && n > 0; i++) {
            if (!is_open[i] || !(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            if (!drain(pfd[i].fd, i == 0 ? out : err, &is_full, i == 1)) {
                is_open[i] = false;
                pfd[i].fd = -1;
            }
            if (i == 0 && sb->on_out && !is_full)
                sb->on_out(sb->out_arg, out);
        }
    }
    if (r->outcome != RAN) {
        kill_group(pid);
        waitpid(pid, &r->status, 0);
    }
    close(out_p[0]);
    close(err_p[0]);
    return LOCI_OK;
}

static void fail(struct parse_result *out, const char *code, const char *fmt, const char *arg)
{
    out->error_code = code;
    snprintf(out->error, sizeof(out->error), fmt, arg ? arg : "");
}

/* The outcome of a step as an error, or false when it ran. */
static bool step_failed(const struct ran *r, const struct parse_opts *o, struct parse_result *out)
{
    char t[32];
    switch (r->outcome) {
    case TIMED_OUT:
        snprintf(t, sizeof(t), "%d", o->timeout_ms);
        fail(out, "parse_timeout", "parsing took longer than %s ms and was stopped", t);
        return true;
    case CANCELLED:
        fail(out, "cancelled", "cancelled%s", NULL);
        return true;
    case OUTPUT_TOO_BIG:
        snprintf(t, sizeof(t), "%zu", o->max_text_bytes);
        fail(out, "parse_failed", "the extracted text is larger than %s bytes", t);
        return true;
    case RAN:
        break;
    }
    if (WIFSIGNALED(r->status)) {
        int sig = WTERMSIG(r->status);
        snprintf(t, sizeof(t), "%d", sig);
        if (sig == SIGXCPU)
            fail(out, "parse_timeout", "the parser used up its CPU time%s", NULL);
        else
            fail(out, "parse_failed", "the parser crashed (signal %s)", t);
        return true;
    }
    return false;
}

/* The first line of err with the given prefix's value (or the first line). */
static void first_line(const struct buf *err, char *out, size_t n)
{
    const char *p = err->p ? err->p : "";
    size_t len = strcspn(p, "\n");
    struct buf b;
    buf_init(&b, n > 1 ? n - 1 : 1);
    if (text_clean_line(p, len < 200 ? len : 200, &b) != LOCI_OK)
        buf_reset(&b);
    snprintf(out, n, "%s", buf_cstr(&b));
    buf_release(&b);
}

/* "Key:   value" of pdfinfo's output. */
static bool info_field(const struct buf *info, const char *key, struct str *out)
{
    const char *p = info->p ? info->p : "";
    size_t kn = strlen(key);
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (len > kn && strncmp(p, key, kn) == 0 && p[kn] == ':') {
            const char *v = p + kn + 1;
            size_t vn = len - kn - 1;
            while (vn > 0 && (*v == ' ' || *v == '\t')) {
                v++;
                vn--;
            }
            out->p = v;
            out->n = vn;
            return true;
        }
        p += len + (nl ? 1 : 0);
    }
    return false;
}

static void set_result_title(struct parse_result *out, const char *p, size_t n)
{
    struct buf b;
    buf_init(&b, 1024);
    if (text_clean_line(p, n < 400 ? n : 400, &b) == LOCI_OK && b.len > 0)
        out->title = buf_detach(&b, NULL);
    buf_release(&b);
}

/* Pages of pdftotext's output handed to parse_opts.on_page as they
 * complete. */
struct pages {
    const struct parse_opts *o;
    size_t scanned; /* bytes of the output looked at */
    int page;       /* pages delivered */
    struct buf clean;
};

static void deliver_pages(void *arg, const struct buf *out)
{
    struct pages *pg = arg;
    while (pg->scanned < out->len) {
        const char *start = out->p + pg->scanned;
        const char *ff = memchr(start, PARSE_PAGE_BREAK, out->len - pg->scanned);
        if (!ff)
            return; /* the page is not complete yet */
        buf_reset(&pg->clean);
        if (text_strip_controls(start, (size_t)(ff - start), &pg->clean) == LOCI_OK)
            pg->o->on_page(pg->o->page_arg, ++pg->page, buf_cstr(&pg->clean), pg->clean.len);
        pg->scanned = (size_t)(ff - out->p) + 1;
    }
}

static int run_pdf(struct sandbox *sb, const struct parse_opts *o, int64_t deadline,
                   struct parse_result *out)
{
    struct buf info, err, text;
    buf_init(&info, 1 << 20);
    buf_init(&err, STDERR_MAX);
    buf_init(&text, o->max_text_bytes);
    struct ran r;
    const char *info_argv[] = {"pdfinfo", "-enc", "UTF-8", "/dev/fd/3", NULL};
    sb->argv = info_argv;
    int rc = sandbox_run(sb, o, deadline, &info, &err, &r);
    if (rc || step_failed(&r, o, out))
        goto out;
    char line[220];
    first_line(&err, line, sizeof(line));
    if (strstr(buf_cstr(&err), "Incorrect password")) {
        fail(out, "encrypted_pdf", "the PDF is encrypted and needs a password%s", NULL);
        goto out;
    }
    if (!WIFEXITED(r.status) || WEXITSTATUS(r.status) != 0) {
        fail(out, "parse_failed", "not a readable PDF: %s", line[0] ? line : "pdfinfo failed");
        goto out;
    }
    struct str v;
    long long pages = 0;
    if (!info_field(&info, "Pages", &v) || parse_int64_n(v.p, v.n, 0, 1LL << 30, &pages)) {
        fail(out, "parse_failed", "not a readable PDF: %s", "no page count");
        goto out;
    }
    if (o->max_pages > 0 && pages > o->max_pages) {
        char t[64];
        snprintf(t, sizeof(t), "%lld pages, more than %d", pages, o->max_pages);
        fail(out, "too_many_pages", "the PDF has %s", t);
        goto out;
    }
    if (info_field(&info, "Title", &v))
        set_result_title(out, v.p, v.n);

    buf_reset(&err);
    char last[24];
    snprintf(last, sizeof(last), "%lld", pages > 0 ? pages : 1);
    const char *text_argv[] = {"pdftotext", "-layout",   "-enc", "UTF-8", "-l",
                               last,        "/dev/fd/3", "-",    NULL};
    sb->argv = text_argv;
    struct pages pg = {.o = o};
    buf_init(&pg.clean, o->max_text_bytes + 16);
    if (o->on_page) {
        sb->on_out = deliver_pages;
        sb->out_arg = &pg;
    }
    rc = sandbox_run(sb, o, deadline, &text, &err, &r);
    sb->on_out = NULL;
    buf_release(&pg.clean);
    if (rc || step_failed(&r, o, out))
        goto out;
    if (strstr(buf_cstr(&err), "Incorrect password")) {
        fail(out, "encrypted_pdf", "the PDF is encrypted and needs a password%s", NULL);
        goto out;
    }
    if (!WIFEXITED(r.status) || WEXITSTATUS(r.status) != 0) {
        first_line(&err, line, sizeof(line));
        fail(out, "parse_failed", "the PDF's text cannot be extracted: %s",
             line[0] ? line : "pdftotext failed");
        goto out;
    }
    /* Clean each page, keeping the page breaks. */
    struct buf clean;
    buf_init(&clean, o->max_text_bytes + 16);
    const char *p = text.p ? text.p : "";
    size_t left = text.len;
    int n_pages = 0;
    while (left > 0 && rc == LOCI_OK) {
        const char *ff = memchr(p, PARSE_PAGE_BREAK, left);
        size_t len = ff ? (size_t)(ff - p) : left;
        rc = text_strip_controls(p, len, &clean);
        if (rc == LOCI_OK && ff) {
            rc = buf_append_char(&clean, PARSE_PAGE_BREAK);
            n_pages++;
        }
        p += len + (ff ? 1 : 0);
        left -= len + (ff ? 1 : 0);
    }
    if (rc) {
        buf_release(&clean);
        rc = LOCI_OK;
        fail(out, "parse_failed", "the extracted text is too large%s", NULL);
        goto out;
    }
    out->pages = n_pages > 0 ? n_pages : (int)pages;
    out->text = buf_detach(&clean, &out->n);
out:
    buf_release(&info);
    buf_release(&err);
    buf_release(&text);
    return rc;
}

static int run_converter(struct sandbox *sb, const struct parse_opts *o, int64_t deadline,
                         struct parse_result *out)
{
    struct buf text, err;
    buf_init(&text, o->max_text_bytes + 4096);
    buf_init(&err, STDERR_MAX);
    struct ran r;
    int rc = sandbox_run(sb, o, deadline, &text, &err, &r);
    if (rc || step_failed(&r, o, out))
        goto out;
    if (WIFEXITED(r.status) && WEXITSTATUS(r.status) == CHILD_TOO_BIG) {
        char t[32];
        snprintf(t, sizeof(t), "%zu", o->max_text_bytes);
        fail(out, "parse_failed", "the extracted text is larger than %s bytes", t);
        goto out;
    }
    if (!WIFEXITED(r.status) || WEXITSTATUS(r.status) != 0) {
        fail(out, "parse_failed", "the parser failed%s", NULL);
        goto out;
    }
    const char *p = text.p ? text.p : "";
    size_t n = text.len;
    if (n > 0 && p[0] == TITLE_MARK) {
        const char *nl = memchr(p, '\n', n);
        size_t tn = nl ? (size_t)(nl - p) : n;
        set_result_title(out, p + 1, tn - 1);
        size_t skip = tn + (nl ? 1 : 0);
        p += skip;
        n -= skip;
    }
    out->text = xstrndup(p, n);
    out->n = n;
out:
    buf_release(&text);
    buf_release(&err);
    return rc;
}

/* True when the text holds nothing but white space and markers. */
static bool is_empty_text(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == PARSE_HEADING && i + 1 < n) {
            i++; /* the level digit */
            continue;
        }
        if (c > ' ' && c != 0x7f)
            return false;
    }
    return true;
}

int parse_run(int fd, const struct parse_type *t, const struct parse_opts *opts,
              struct parse_result *out)
{
    memset(out, 0, sizeof(*out));
    struct parse_opts o = *opts;
    if (o.timeout_ms <= 0)
        o.timeout_ms = DEFAULT_TIMEOUT_MS;
    if (o.memory_mb <= 0)
        o.memory_mb = DEFAULT_MEMORY_MB;
    if (o.max_text_bytes == 0)
        o.max_text_bytes = DEFAULT_MAX_TEXT;
    const char *burn = getenv("LOCI_TEST_PARSE_BURN");
    if (burn && strcmp(burn, "1") == 0)
        o.is_burn = true;
    int64_t t0 = clock_mono_ns();
    int64_t deadline = t0 + (int64_t)o.timeout_ms * 1000000LL;
    struct sandbox sb = {
        .in_fd = fd,
        .timeout_ms = o.timeout_ms,
        .memory_mb = o.memory_mb,
        .is_exec = t->kind == PARSE_PDF,
        .is_burn = o.is_burn,
        .t = t,
        .max_text = o.max_text_bytes,
    };
    int rc = t->kind == PARSE_PDF ? run_pdf(&sb, &o, deadline, out)
                                  : run_converter(&sb, &o, deadline, out);
    out->ms = (double)(clock_mono_ns() - t0) / 1e6;
    if (rc) {
        parse_result_release(out);
        return rc;
    }
    if (!out->error_code && is_empty_text(out->text, out->n)) {
        xfree(out->text);
        out->text = NULL;
        out->n = 0;
        fail(out, "empty_document", "the document has no text%s",
             t->kind == PARSE_PDF ? " (a scanned PDF needs OCR, which Loci does not do)" : NULL);
    }
    if (out->error_code) {
        xfree(out->text);
        out->text = NULL;
        out->n = 0;
    }
    return LOCI_OK;
}

void parse_result_release(struct parse_result *r)
{
    if (!r)
        return;
    xfree(r->text);
    xfree(r->title);
    r->text = NULL;
    r->title = NULL;
    r->n = 0;
}
