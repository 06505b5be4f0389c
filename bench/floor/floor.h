/*
 * floor — bench-floor, the kernel's price of a delivery (bench/README.md, "The floor").
 *
 * A gateway delivering one message to N sockets cannot spend less than the kernel charges for
 * N send() calls of that frame on those sockets. bench-floor measures exactly that, in the run
 * and at the socket count of a scenario, so the bench can print the gateway's CPU per delivery
 * as a multiple of it instead of as an absolute figure that drifts between machines:
 *   - N loopback TCP connections; the sending ends live in this process, the receiving ends in
 *     a separate drainer process that reads everything (as the bench's clients do);
 *   - the sender writes round-robin, one send() per socket per turn, each send carrying k
 *     WebSocket frames of the scenario's size (k = 1: the fan-out shape; k > 1: frames already
 *     queued for one socket written together, the coalescing lever);
 *   - the figure is the sender's own CPU (user + sys, getrusage) per send and per frame. On
 *     loopback a send() also runs the receiver's TCP input path in the sender's context, just
 *     as it does for the gateway, so the two figures are comparable.
 * Sockets are blocking: when the drainer falls behind the sender sleeps in send(), which costs
 * no CPU, so a slow drainer lowers the rate but not the figure.
 */
#ifndef CHAT_BENCH_FLOOR_H
#define CHAT_BENCH_FLOOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define FLOOR_MAX_CASES 8

/* The connections: fds[i] are the sending ends; the drainer owns the other ends. */
struct floor_sockets {
    int *fds;
    int count;
    pid_t drainer;
    int result_fd; /* the drainer writes its byte count here when every socket is closed */
};

/* Opens count loopback connections with the given SO_SNDBUF (0: the kernel's default) and
 * starts the drainer. Returns 0, or -1 with a message on stderr (everything started is
 * stopped again). */
int floor_sockets_open(struct floor_sockets *s, int count, int sndbuf);

/* Closes the sending ends, waits (bounded) for the drainer to read to the end of every socket
 * and stores the bytes it read in *drained. Returns 0, or -1 when the drainer failed. */
int floor_sockets_close(struct floor_sockets *s, uint64_t *drained);

#endif
