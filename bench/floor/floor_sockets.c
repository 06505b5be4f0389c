/*
 * floor_sockets — the loopback connections of bench-floor and the drainer process that reads
 * them (floor.h explains the measurement).
 *
 * The drainer is forked before any connection exists, so it holds only the listener: it
 * accepts every connection itself, reads them all through one epoll set until each reaches
 * end-of-file, and then reports the bytes it read through a pipe, which lets the probe check
 * that everything it sent arrived. It dies with the probe (PR_SET_PDEATHSIG) and gives up
 * after FLOOR_DRAIN_IDLE_MS without any event, so it can never outlive a failed run.
 */
#include "floor.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define FLOOR_DRAIN_IDLE_MS 60000
#define FLOOR_RESULT_WAIT_MS 30000

/* Reads fd until it would block; returns the bytes read, and sets *eof at end-of-file. */
static uint64_t floor_read_all(int fd, char *buf, size_t cap, bool *eof)
{
    uint64_t total = 0;
    for (;;) {
        ssize_t n = read(fd, buf, cap);
        if (n > 0) {
            total += (uint64_t)n;
            continue;
        }
        *eof = n == 0 || (errno != EAGAIN && errno != EINTR);
        if (n < 0 && errno == EINTR)
            continue;
        return total;
    }
}

/* The drainer process: accept count connections, read them to the end, report, exit. */
static _Noreturn void floor_drain(int listener, int count, int result_fd)
{
    static char buf[1 << 18];
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = listener};
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, listener, &ev) != 0)
        _exit(2);
    uint64_t bytes = 0;
    int closed = 0;
    while (closed < count) {
        struct epoll_event ready[256];
        int n = epoll_wait(ep, ready, 256, FLOOR_DRAIN_IDLE_MS);
        if (n == 0)
            _exit(3);
        for (int i = 0; i < n; i++) {
            int fd = ready[i].data.fd;
            if (fd == listener) {
                int c;
                while ((c = accept4(listener, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    struct epoll_event add = {.events = EPOLLIN, .data.fd = c};
                    if (epoll_ctl(ep, EPOLL_CTL_ADD, c, &add) != 0)
                        _exit(2);
                }
                if (errno != EAGAIN && errno != EINTR)
                    _exit(2); /* e.g. out of descriptors */
                continue;
            }
            bool eof = false;
            bytes += floor_read_all(fd, buf, sizeof(buf), &eof);
            if (eof) {
                close(fd); /* also leaves the epoll set */
                closed++;
            }
        }
    }
    ssize_t w = write(result_fd, &bytes, sizeof(bytes));
    _exit(w == (ssize_t)sizeof(bytes) ? 0 : 2);
}

/* A listening socket on 127.0.0.1 with a kernel-chosen port, written to *addr. */
static int floor_listen(struct sockaddr_in *addr, int backlog)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    socklen_t len = sizeof(*addr);
    memset(addr, 0, sizeof(*addr));
    addr->sin_family = AF_INET;
    addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)addr, sizeof(*addr)) != 0 ||
        listen(fd, backlog) != 0 || getsockname(fd, (struct sockaddr *)addr, &len) != 0) {
        fprintf(stderr, "bench-floor: listen on 127.0.0.1: %s\n", strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

/* One sending end, set up as the gateway sets up its sockets (TCP_NODELAY, SO_SNDBUF). */
static int floor_connect(const struct sockaddr_in *addr, int sndbuf)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    if (fd < 0)
        return -1;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0 ||
        (sndbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)) != 0) ||
        connect(fd, (const struct sockaddr *)addr, sizeof(*addr)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int floor_sockets_open(struct floor_sockets *s, int count, int sndbuf)
{
    memset(s, 0, sizeof(*s));
    struct sockaddr_in addr;
    int pipefd[2];
    s->fds = calloc((size_t)count, sizeof(int));
    if (!s->fds || pipe(pipefd) != 0)
        return -1;
    int listener = floor_listen(&addr, count < 4096 ? count : 4096);
    if (listener < 0)
        return -1;
    s->drainer = fork();
    if (s->drainer == 0) {
        close(pipefd[0]);
        floor_drain(listener, count, pipefd[1]);
    }
    close(listener);
    close(pipefd[1]);
    s->result_fd = pipefd[0];
    if (s->drainer < 0) {
        fprintf(stderr, "bench-floor: fork: %s\n", strerror(errno));
        return -1;
    }
    for (; s->count < count; s->count++) {
        s->fds[s->count] = floor_connect(&addr, sndbuf);
        if (s->fds[s->count] < 0) {
            fprintf(stderr, "bench-floor: connection %d of %d: %s\n", s->count + 1, count,
                    strerror(errno));
            kill(s->drainer, SIGKILL); /* it would wait for the connections never made */
            uint64_t ignored;
            floor_sockets_close(s, &ignored);
            return -1;
        }
    }
    return 0;
}

int floor_sockets_close(struct floor_sockets *s, uint64_t *drained)
{
    for (int i = 0; i < s->count; i++)
        close(s->fds[i]);
    free(s->fds);
    s->fds = NULL;
    int rc = -1;
    *drained = 0;
    struct pollfd p = {.fd = s->result_fd, .events = POLLIN};
    if (s->drainer > 0 && poll(&p, 1, FLOOR_RESULT_WAIT_MS) == 1 &&
        read(s->result_fd, drained, sizeof(*drained)) == (ssize_t)sizeof(*drained))
        rc = 0;
    close(s->result_fd);
    if (s->drainer > 0) {
        int status = 0;
        if (rc != 0)
            kill(s->drainer, SIGKILL);
        waitpid(s->drainer, &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            rc = -1;
    }
    return rc;
}
