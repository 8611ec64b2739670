/*
 * test_http_upgrade.c - http_reply_upgrade(): the 101 carries the handler's
 * headers, bytes sent right after the request reach the new owner, and the
 * socket keeps working both ways after the HTTP server let go of the
 * connection (past its idle timeout, with no request in flight).
 */
#include "api/http.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "harness.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

struct handoff {
    pthread_mutex_t mu;
    int fd;
    char extra[256];
    int n_calls;
};

static struct handoff got = {PTHREAD_MUTEX_INITIALIZER, -1, "", 0};

static void on_socket(int fd, const void *extra, size_t n, void *arg)
{
    CHECK(arg == &got);
    pthread_mutex_lock(&got.mu);
    got.fd = fd;
    snprintf(got.extra, sizeof(got.extra), "%.*s", (int)n, (const char *)extra);
    got.n_calls++;
    pthread_mutex_unlock(&got.mu);
}

static int h_upgrade(struct http_req *req)
{
    http_set_header(req, "Upgrade", "x-test");
    http_set_header(req, "X-Handed-Over", "yes");
    return http_reply_upgrade(req, on_socket, &got);
}

static const struct http_route routes[] = {
    {HTTP_GET, "/up", h_upgrade, 0, 0, NULL, "upgrade", 0, NULL},
};

static int connect_to(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    CHECK_INT(connect(fd, (struct sockaddr *)&a, sizeof(a)), ==, 0);
    return fd;
}

TEST(upgrade_hands_the_socket_over_and_the_server_forgets_it)
{
    struct config cfg;
    config_init(&cfg);
    char err[256];
    config_set(&cfg, "port", "0", CFG_SRC_FLAG, err, sizeof(err));
    config_set(&cfg, "connection_timeout_s", "1", CFG_SRC_FLAG, err, sizeof(err));
    CHECK_INT(config_finish(&cfg, err, sizeof(err)), ==, 0);
    log_set_level(LOG_ERROR);
    struct http_server_opts o = {.cfg = &cfg, .routes = routes, .n_routes = 1};
    struct http_server *srv = NULL;
    CHECK_INT(http_server_start(&o, &srv, err, sizeof(err)), ==, 0);
    int fd = connect_to(http_server_port(srv));
    const char *req = "GET /up HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: x-test\r\n"
                      "\r\nearly-bytes";
    CHECK_INT(send(fd, req, strlen(req), 0), ==, (ssize_t)strlen(req));
    char head[2048];
    size_t n = 0;
    while (!strstr(head, "\r\n\r\n")) {
        ssize_t r = recv(fd, head + n, sizeof(head) - 1 - n, 0);
        CHECK(r > 0);
        n += (size_t)r;
        head[n] = '\0';
    }
    CHECK(strncmp(head, "HTTP/1.1 101 ", 13) == 0);
    CHECK(strstr(head, "\r\nUpgrade: x-test\r\n") != NULL);
    CHECK(strstr(head, "\r\nX-Handed-Over: yes\r\n") != NULL);
    CHECK(strcasestr(head, "\r\nConnection: Upgrade") != NULL);
    int64_t deadline = clock_now_ms() + 3000;
    int sfd = -1;
    while (clock_now_ms() < deadline) {
        pthread_mutex_lock(&got.mu);
        sfd = got.fd;
        pthread_mutex_unlock(&got.mu);
        if (sfd >= 0)
            break;
        clock_sleep_ms(5);
    }
    CHECK(sfd >= 0);
    CHECK_STR(got.extra, "early-bytes");
    CHECK_INT(got.n_calls, ==, 1);
    /* past the idle timeout the server would have closed an HTTP
     * connection; this one is no longer its business */
    clock_sleep_ms(1500);
    CHECK_INT(http_server_in_flight(srv), ==, 0);
    CHECK_INT(write(sfd, "ping", 4), ==, 4);
    char b[16] = "";
    CHECK_INT(recv(fd, b, sizeof(b) - 1, 0), ==, 4);
    CHECK_STR(b, "ping");
    CHECK_INT(send(fd, "pong", 4, 0), ==, 4);
    memset(b, 0, sizeof(b));
    size_t k = 0;
    while (k < 4) {
        ssize_t r = read(sfd, b + k, 4 - k);
        if (r > 0)
            k += (size_t)r;
        else
            clock_sleep_ms(5);
    }
    CHECK_STR(b, "pong");
    /* stopping the server leaves the handed-over socket alone */
    CHECK_INT(http_server_stop(srv, 1000), ==, 0);
    CHECK_INT(write(sfd, "still", 5), ==, 5);
    memset(b, 0, sizeof(b));
    CHECK_INT(recv(fd, b, sizeof(b) - 1, 0), ==, 5);
    close(sfd);
    CHECK_INT(recv(fd, b, sizeof(b) - 1, 0), ==, 0);
    close(fd);
    config_release(&cfg);
}
