/*
 * The C baseline of `socknotify bench`: a minimal single-threaded, level-triggered epoll echo server.
 * It marks what the kernel allows on this machine, so every engine's CPU per message is read against it.
 *
 *   gcc -O2 -o epoll_echo epoll_echo.c && ./epoll_echo 127.0.0.1 0
 *
 * Prints "listening on ADDRESS:PORT" once it accepts, echoes every byte, exits 0 on SIGINT or SIGTERM.
 * A connection whose echo does not fit in the socket keeps the rest and waits for EPOLLOUT (no reads meanwhile).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_EVENTS 256
#define BUFFER_SIZE 65536

struct pending {
    char *data;
    size_t offset, length;
};

static volatile sig_atomic_t stopping;
static struct pending *pendings; /* indexed by descriptor */
static int pendings_size;

static void on_signal(int signal) { (void)signal; stopping = 1; }

static struct pending *pending_of(int fd) {
    if (fd >= pendings_size) {
        int size = pendings_size ? pendings_size : 1024;
        while (size <= fd) size *= 2;
        pendings = realloc(pendings, sizeof(*pendings) * size);
        memset(pendings + pendings_size, 0, sizeof(*pendings) * (size - pendings_size));
        pendings_size = size;
    }
    return &pendings[fd];
}

static void close_connection(int epoll, int fd) {
    struct pending *p = pending_of(fd);
    free(p->data);
    memset(p, 0, sizeof(*p));
    epoll_ctl(epoll, EPOLL_CTL_DEL, fd, NULL);
    close(fd);
}

/* Sends what it can; keeps the rest and switches the connection to EPOLLOUT. Returns -1 when the peer is gone. */
static int send_all(int epoll, int fd, const char *data, size_t length) {
    size_t sent = 0;
    while (sent < length) {
        ssize_t n = send(fd, data + sent, length - sent, MSG_NOSIGNAL);
        if (n > 0) { sent += (size_t)n; continue; }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pending *p = pending_of(fd);
            p->data = malloc(length - sent);
            memcpy(p->data, data + sent, length - sent);
            p->offset = 0;
            p->length = length - sent;
            struct epoll_event ev = { .events = EPOLLOUT, .data.fd = fd };
            epoll_ctl(epoll, EPOLL_CTL_MOD, fd, &ev);
            return 0;
        }
        return -1;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: %s ADDRESS PORT\n", argv[0]); return 2; }
    struct sigaction action = { .sa_handler = on_signal };
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGTERM, &action, NULL);

    struct sockaddr_in address = { .sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[2])) };
    if (inet_pton(AF_INET, argv[1], &address.sin_addr) != 1) { fprintf(stderr, "bad address %s\n", argv[1]); return 2; }
    int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(listener, (struct sockaddr *)&address, sizeof(address)) != 0 || listen(listener, 4096) != 0) {
        fprintf(stderr, "port %s is already in use or cannot be bound: %s\n", argv[2], strerror(errno));
        return 1;
    }
    socklen_t length = sizeof(address);
    getsockname(listener, (struct sockaddr *)&address, &length);
    printf("listening on %s:%d\n", argv[1], ntohs(address.sin_port));
    fflush(stdout);

    int epoll = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = { .events = EPOLLIN, .data.fd = listener };
    epoll_ctl(epoll, EPOLL_CTL_ADD, listener, &ev);
    struct epoll_event events[MAX_EVENTS];
    static char buffer[BUFFER_SIZE];
    long served = 0;

    while (!stopping) {
        int count = epoll_wait(epoll, events, MAX_EVENTS, -1);
        for (int i = 0; i < count; i++) {
            int fd = events[i].data.fd;
            if (fd == listener) {
                int connection;
                while ((connection = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    setsockopt(connection, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                    struct epoll_event in = { .events = EPOLLIN, .data.fd = connection };
                    epoll_ctl(epoll, EPOLL_CTL_ADD, connection, &in);
                    served++;
                }
                continue;
            }
            struct pending *p = pending_of(fd);
            if (p->length > 0) {
                ssize_t n = send(fd, p->data + p->offset, p->length, MSG_NOSIGNAL);
                if (n < 0 && errno != EAGAIN && errno != EINTR) { close_connection(epoll, fd); continue; }
                if (n > 0) { p->offset += (size_t)n; p->length -= (size_t)n; }
                if (p->length == 0) {
                    free(p->data);
                    p->data = NULL;
                    struct epoll_event in = { .events = EPOLLIN, .data.fd = fd };
                    epoll_ctl(epoll, EPOLL_CTL_MOD, fd, &in);
                }
                continue;
            }
            ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
            if (n > 0) {
                if (send_all(epoll, fd, buffer, (size_t)n) < 0) close_connection(epoll, fd);
            } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
                close_connection(epoll, fd);
            }
        }
    }

    printf("stopped (c-epoll): served %ld connections\n", served);
    return 0;
}
