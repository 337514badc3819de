/*
 * The C io_uring baseline of `socknotify bench`: a minimal single-threaded io_uring echo server (liburing).
 * A multishot accept serves the listener; each connection has one request in the ring at a time, a receive into its
 * own buffer, then a send of what arrived, then the next receive. It marks what io_uring allows on this machine.
 *
 *   gcc -O2 -o uring_echo uring_echo.c -luring && ./uring_echo 127.0.0.1 0
 *
 * Prints "listening on ADDRESS:PORT" once it accepts, echoes every byte, exits 0 on SIGINT or SIGTERM.
 * The ring is set up with SINGLE_ISSUER and DEFER_TASKRUN where the kernel has them (6.1), as liburing recommends
 * for one thread that submits and reaps.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define RING_ENTRIES 4096
#define BUFFER_SIZE 4096
#define ACCEPT_DATA UINT64_MAX

struct connection {
    int fd;
    int sending;              /* 1 while a send is in the ring, 0 while a receive is */
    size_t offset, length;    /* the part of the buffer still to send */
    char buffer[BUFFER_SIZE];
};

static volatile sig_atomic_t stopping;

static void on_signal(int signal) { (void)signal; stopping = 1; }

/* The next entry; submits what is queued first when the ring is full. */
static struct io_uring_sqe *next_entry(struct io_uring *ring) {
    struct io_uring_sqe *sqe;
    while ((sqe = io_uring_get_sqe(ring)) == NULL) io_uring_submit(ring);
    return sqe;
}

static void arm_accept(struct io_uring *ring, int listener) {
    struct io_uring_sqe *sqe = next_entry(ring);
    io_uring_prep_multishot_accept(sqe, listener, NULL, NULL, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, ACCEPT_DATA);
}

static void receive(struct io_uring *ring, struct connection *c) {
    struct io_uring_sqe *sqe = next_entry(ring);
    c->sending = 0;
    io_uring_prep_recv(sqe, c->fd, c->buffer, BUFFER_SIZE, 0);
    io_uring_sqe_set_data(sqe, c);
}

static void send_rest(struct io_uring *ring, struct connection *c) {
    struct io_uring_sqe *sqe = next_entry(ring);
    c->sending = 1;
    io_uring_prep_send(sqe, c->fd, c->buffer + c->offset, c->length, MSG_NOSIGNAL);
    io_uring_sqe_set_data(sqe, c);
}

static void close_connection(struct connection *c) {
    close(c->fd);
    free(c);
}

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: %s ADDRESS PORT\n", argv[0]); return 2; }
    struct sigaction action = { .sa_handler = on_signal };
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGTERM, &action, NULL);

    struct sockaddr_in address = { .sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[2])) };
    if (inet_pton(AF_INET, argv[1], &address.sin_addr) != 1) { fprintf(stderr, "bad address %s\n", argv[1]); return 2; }
    int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(listener, (struct sockaddr *)&address, sizeof(address)) != 0 || listen(listener, 4096) != 0) {
        fprintf(stderr, "port %s is already in use or cannot be bound: %s\n", argv[2], strerror(errno));
        return 1;
    }

    struct io_uring ring;
    struct io_uring_params params = { .flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN };
    int error = io_uring_queue_init_params(RING_ENTRIES, &ring, &params);
    if (error == -EINVAL) {
        memset(&params, 0, sizeof(params)); /* A kernel before 6.1: a plain ring. */
        error = io_uring_queue_init_params(RING_ENTRIES, &ring, &params);
    }
    if (error < 0) { fprintf(stderr, "io_uring_queue_init failed: %s\n", strerror(-error)); return 1; }

    socklen_t length = sizeof(address);
    getsockname(listener, (struct sockaddr *)&address, &length);
    printf("listening on %s:%d\n", argv[1], ntohs(address.sin_port));
    fflush(stdout);

    arm_accept(&ring, listener);
    long served = 0;
    while (!stopping) {
        error = io_uring_submit_and_wait(&ring, 1);
        if (error < 0 && error != -EINTR && error != -EAGAIN && error != -EBUSY) {
            fprintf(stderr, "io_uring_submit_and_wait failed: %s\n", strerror(-error));
            return 1;
        }

        struct io_uring_cqe *cqe;
        unsigned head, seen = 0;
        io_uring_for_each_cqe(&ring, head, cqe) {
            seen++;
            if (cqe->user_data == ACCEPT_DATA) {
                if (cqe->res >= 0) {
                    struct connection *c = malloc(sizeof(*c));
                    c->fd = cqe->res;
                    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                    receive(&ring, c);
                    served++;
                }
                if (!(cqe->flags & IORING_CQE_F_MORE)) arm_accept(&ring, listener);
                continue;
            }

            struct connection *c = io_uring_cqe_get_data(cqe);
            if (cqe->res <= 0) {
                close_connection(c); /* End of stream, reset or error. */
            } else if (!c->sending) {
                c->offset = 0;
                c->length = (size_t)cqe->res;
                send_rest(&ring, c);
            } else {
                c->offset += (size_t)cqe->res;
                c->length -= (size_t)cqe->res;
                if (c->length > 0) send_rest(&ring, c); else receive(&ring, c);
            }
        }
        io_uring_cq_advance(&ring, seen);
    }

    printf("stopped (c-uring): served %ld connections\n", served);
    return 0;
}
