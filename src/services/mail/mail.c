/*
 * mail.c - builds an RFC 5322 message and hands it to libcurl's SMTP client,
 * which does the dialogue, dot-stuffing and (STARTTLS) TLS.
 */
#include "services/mail/mail.h"

#include "core/buf.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/ids.h"

#include <curl/curl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

void mail_global_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

void mail_global_cleanup(void)
{
    curl_global_cleanup();
}

struct reader {
    const char *p;
    size_t left;
};

static size_t read_cb(char *dst, size_t size, size_t nmemb, void *arg)
{
    struct reader *r = arg;
    size_t n = size * nmemb;
    if (n > r->left)
        n = r->left;
    memcpy(dst, r->p, n);
    r->p += n;
    r->left -= n;
    return n;
}

static bool has_line_break(const char *s)
{
    return strpbrk(s, "\r\n") != NULL;
}

static const char *domain_of(const char *addr)
{
    const char *at = strrchr(addr, '@');
    return at ? at + 1 : "localhost";
}

int mail_send(const struct mail_opts *o, const char *to, const char *subject, const char *body,
              char *err, size_t err_n)
{
    err[0] = '\0';
    if (!o->smtp_url || !o->smtp_url[0]) {
        snprintf(err, err_n, "mail is not configured");
        return LOCI_EINVAL;
    }
    if (has_line_break(to) || has_line_break(subject) || has_line_break(o->from)) {
        snprintf(err, err_n, "line break in a header field");
        return LOCI_EINVAL;
    }
    char date[64], msgid[UUID_STR_LEN];
    time_t now = (time_t)(clock_now_ms() / 1000);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
    ids_uuid7(msgid);
    struct buf msg;
    buf_init(&msg, 1 << 20);
    int rc = buf_printf(&msg,
                        "Date: %s\r\nFrom: %s\r\nTo: %s\r\nSubject: %s\r\n"
                        "Message-ID: <%s@%s>\r\nMIME-Version: 1.0\r\n"
                        "Content-Type: text/plain; charset=utf-8\r\n"
                        "Content-Transfer-Encoding: 8bit\r\n\r\n",
                        date, o->from, to, subject, msgid, domain_of(o->from));
    /* Normalise body line endings to CRLF. */
    for (const char *p = body; *p && !rc; p++) {
        if (*p == '\n' && (p == body || p[-1] != '\r'))
            rc = buf_append_str(&msg, "\r\n");
        else
            rc = buf_append_char(&msg, *p);
    }
    if (!rc)
        rc = buf_append_str(&msg, "\r\n");
    if (rc) {
        buf_release(&msg);
        snprintf(err, err_n, "message too large");
        return LOCI_ETOOBIG;
    }
    CURL *curl = curl_easy_init();
    if (!curl) {
        buf_release(&msg);
        return LOCI_ENOMEM;
    }
    char from_addr[300], to_addr[300];
    snprintf(from_addr, sizeof(from_addr), "<%s>", o->from);
    snprintf(to_addr, sizeof(to_addr), "<%s>", to);
    struct curl_slist *rcpt = curl_slist_append(NULL, to_addr);
    struct reader r = {msg.p, msg.len};
    char curl_err[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(curl, CURLOPT_URL, o->smtp_url);
    curl_easy_setopt(curl, CURLOPT_MAIL_FROM, from_addr);
    curl_easy_setopt(curl, CURLOPT_MAIL_RCPT, rcpt);
    curl_easy_setopt(curl, CURLOPT_READFUNCTION, read_cb);
    curl_easy_setopt(curl, CURLOPT_READDATA, &r);
    curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, curl_err);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, (long)(o->timeout_s > 0 ? o->timeout_s : 30));
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    if (strncmp(o->smtp_url, "smtp://", 7) == 0)
        curl_easy_setopt(curl, CURLOPT_USE_SSL,
                         (long)(o->require_starttls ? CURLUSESSL_ALL : CURLUSESSL_TRY));
    if (o->user && o->user[0]) {
        curl_easy_setopt(curl, CURLOPT_USERNAME, o->user);
        curl_easy_setopt(curl, CURLOPT_PASSWORD, o->password ? o->password : "");
    }
    CURLcode cc = curl_easy_perform(curl);
    long code = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(rcpt);
    curl_easy_cleanup(curl);
    buf_release(&msg);
    if (cc == CURLE_OK)
        return LOCI_OK;
    snprintf(err, err_n, "smtp: %s (%ld)", curl_err[0] ? curl_err : curl_easy_strerror(cc), code);
    if (cc == CURLE_COULDNT_CONNECT || cc == CURLE_OPERATION_TIMEDOUT ||
        cc == CURLE_COULDNT_RESOLVE_HOST || cc == CURLE_SEND_ERROR || cc == CURLE_RECV_ERROR ||
        (code >= 400 && code < 500))
        return LOCI_EAGAIN;
    return LOCI_EIO;
}
