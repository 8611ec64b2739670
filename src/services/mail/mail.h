/*
 * mail.h - sending plain-text mail over SMTP (libcurl): smtp:// with
 * optional STARTTLS, or smtps://, with optional credentials.
 *
 * Blocks on the network: call it from a job, never from an HTTP thread.
 * Safe from any thread.
 */
#ifndef LOCI_SERVICES_MAIL_H
#define LOCI_SERVICES_MAIL_H

#include <stdbool.h>
#include <stddef.h>

struct mail_opts {
    const char *smtp_url; /* smtp://host:port or smtps://host:port; "" = mail off */
    const char *user;     /* "" = no AUTH */
    const char *password;
    bool require_starttls; /* smtp:// only: refuse to send without TLS */
    const char *from;      /* envelope and header sender */
    int timeout_s;
};

/* Initialise libcurl once per process (before threads). */
void mail_global_init(void);
void mail_global_cleanup(void);

/* Send one mail. LOCI_EINVAL for addresses or subjects with line breaks;
 * LOCI_EAGAIN for failures worth retrying (connection, timeout, 4xx);
 * LOCI_EIO otherwise. err gets curl's message (never the password). */
int mail_send(const struct mail_opts *o, const char *to, const char *subject, const char *body,
              char *err, size_t err_n);

#endif
