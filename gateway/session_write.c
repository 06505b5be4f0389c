/*
 * session_write — what goes onto a connection's socket: its heartbeat ping, its queued frames,
 * then our close frame once the queue is empty.
 *
 * One pass per loop turn: a session that gets something to write joins the flush list
 * (session_want_write); before the loop waits again (loop.c's before-wait hook)
 * session_flush_all writes every listed session. So every frame a turn queued for one socket
 * (a burst of bus events fanned out, a reply and a relay) is written together, and a fan-out
 * to N sockets is N writes with no wake-up in between.
 *
 * Why not only from LWS_CALLBACK_SERVER_WRITEABLE, as lws advises: on an epoll loop every
 * writable round trip costs two epoll_ctl calls (POLLOUT on, POLLOUT off) and a wake-up, which
 * more than doubled the system calls per delivery, and every heartbeat ping paid the same. The
 * advice protects HTTP/2 streams (not served here: no TLS, so no h2) and partial writes, which
 * lws handles itself: when the kernel does not take a whole frame, lws keeps the rest and asks
 * for WRITEABLE (lws_partial_buffered); we stop there, and session_writable continues from the
 * same place once lws has sent what it kept. A session whose peer already closed
 * (close_sent) is never written to.
 *
 * A one-off answer (session_send_json) with nothing ahead of it is written at once instead
 * (session_write_now): it needs no queue slot, so an idle connection holds no queue ring after
 * its welcome, and no pass.
 *
 * Cork: with two or more frames to write, the socket is corked (TCP_CORK) for the batch, so the
 * kernel packs them into as few segments as they fit in; uncorking sends at once. The framing
 * stays lws's (lws_write); only the segmenting changes. With one frame there is nothing to pack
 * and no setsockopt is spent.
 *
 * No lws_send_pipe_choked(): in lws 4.1 it is a poll() system call per check; lws_write never
 * blocks (the kernel's refusal shows as lws_partial_buffered).
 */
#include "session.h"

#include "clock.h"
#include "log.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>

/* lws 4.1 keeps LWS_WRITE_CLOSE (4) private ("handled by lws_close_reason"), but lws_write
 * maps it to the close opcode; we need it to send the close frame without tearing the socket
 * down in the same breath (see session_write_close). */
#define SESSION_WRITE_CLOSE ((enum lws_write_protocol)4)

/* Frames written per pass before yielding to other connections (the rest on WRITEABLE). */
#define SESSION_WRITE_BATCH 64

/* Sessions with something to write; connection thread only. (One gateway per process.) */
static struct session *session_flush_head;

void session_want_write(struct session *s)
{
    if (s->flush_listed || !s->wsi)
        return;
    s->flush_listed = true;
    s->flush_prev = NULL;
    s->flush_next = session_flush_head;
    if (session_flush_head)
        session_flush_head->flush_prev = s;
    session_flush_head = s;
}

void session_flush_forget(struct session *s)
{
    if (!s->flush_listed)
        return;
    if (s->flush_prev)
        s->flush_prev->flush_next = s->flush_next;
    else
        session_flush_head = s->flush_next;
    if (s->flush_next)
        s->flush_next->flush_prev = s->flush_prev;
    s->flush_prev = s->flush_next = NULL;
    s->flush_listed = false;
}

static void session_cork(struct lws *wsi, int on)
{
    setsockopt(lws_get_socket_fd(wsi), IPPROTO_TCP, TCP_CORK, &on, sizeof(on));
}

/* Our close frame, once the queue is written. The socket is left open until the peer answers
 * with its own close (lws then finishes): closing at once while the peer is still sending would
 * make the kernel reset the connection, and the peer would see 1006 instead of our code. Input
 * is discarded meanwhile (session_receive). 0, or -1 when the write failed. */
static int session_write_close(struct session *s)
{
    unsigned char buf[LWS_PRE + 2 + 123]; /* a close payload is at most 125 bytes */
    size_t rlen = strnlen(s->close_reason, 123);
    buf[LWS_PRE] = (unsigned char)(s->close_code >> 8);
    buf[LWS_PRE + 1] = (unsigned char)(s->close_code & 0xff);
    memcpy(buf + LWS_PRE + 2, s->close_reason, rlen);
    s->close_sent = true;
    if (lws_write(s->wsi, buf + LWS_PRE, 2 + rlen, SESSION_WRITE_CLOSE) < (int)(2 + rlen))
        return -1;
    lws_set_timeout(s->wsi, PENDING_TIMEOUT_CLOSE_ACK, 3);
    return 0;
}

/* Counts a frame written; a delivered room message also feeds the fan-out latency histogram
 * (time since it arrived from Redis). *now_ns caches the clock over a batch (0: not read). */
static void session_count_frame(struct gateway *gw, const struct frame *f, int64_t *now_ns)
{
    gw->metrics.frames_out++;
    gw->metrics.bytes_out += f->len;
    if (f->offset && f->arrival_us) {
        if (!*now_ns)
            *now_ns = gateway_mono_ns();
        uint32_t now_us = (uint32_t)(*now_ns / 1000);
        metrics_observe(&gw->metrics.fanout, (double)(uint32_t)(now_us - f->arrival_us) / 1e6);
    }
}

/* Queued frames, oldest first, until the queue is empty, the batch is done or lws had to keep
 * part of one (the kernel's buffer is full). 0, or -1 when a write failed. */
static int session_write_frames(struct session *s)
{
    struct gateway *gw = s->gw;
    int64_t now_ns = 0;
    for (int n = 0; n < SESSION_WRITE_BATCH && !outq_empty(&s->outq); n++) {
        struct frame *f = outq_peek(&s->outq);
        if (lws_write(s->wsi, frame_payload(f), f->len, LWS_WRITE_TEXT) < (int)f->len)
            return -1;
        session_count_frame(gw, f, &now_ns);
        outq_pop(&s->outq);
        if (lws_partial_buffered(s->wsi))
            break;
    }
    return 0;
}

/* Everything s has to write, as far as the socket takes it; anything left waits for
 * WRITEABLE. 0, or -1 when a write failed (the connection is to be closed). */
static int session_write(struct session *s)
{
    if (s->close_sent) {
        outq_clear(&s->outq); /* nothing may follow a close frame */
        return 0;
    }
    if (lws_partial_buffered(s->wsi)) {
        lws_callback_on_writable(s->wsi); /* lws first sends what it kept */
        return 0;
    }
    unsigned frames = (s->ping_due ? 1u : 0u) + s->outq.count + (s->close_code ? 1u : 0u);
    bool cork = frames >= 2;
    if (cork)
        session_cork(s->wsi, 1);
    int rc = 0;
    if (s->ping_due && !s->close_code) {
        /* A payload, so the peer's pong (which echoes it) reaches LWS_CALLBACK_RECEIVE_PONG. */
        unsigned char ping[LWS_PRE + 2] = {[LWS_PRE] = 'h', [LWS_PRE + 1] = 'b'};
        if (lws_write(s->wsi, ping + LWS_PRE, 2, LWS_WRITE_PING) < 2)
            rc = -1;
    }
    s->ping_due = false;
    if (rc == 0)
        rc = session_write_frames(s);
    if (rc == 0 && outq_empty(&s->outq) && s->close_code && !lws_partial_buffered(s->wsi))
        rc = session_write_close(s); /* a slow consumer's queue was dropped: at once */
    if (cork)
        session_cork(s->wsi, 0);
    if (rc == 0 && !outq_empty(&s->outq))
        lws_callback_on_writable(s->wsi);
    return rc;
}

int session_peer_closed(struct session *s)
{
    if (s->close_sent)
        return -1;
    /* lws answers with its own close: nothing of ours may follow it. */
    s->close_sent = true;
    if (!s->close_code)
        s->close_code = 1000; /* never sent (close_sent): only stops new frames */
    return 0;
}

int session_writable(struct session *s)
{
    session_flush_forget(s); /* this writes everything the pass would */
    if (session_write(s) == 0)
        return 0;
    log_event(CONFIG_LOG_DEBUG, "write_failed", "conn", s->conn_id, NULL);
    return -1;
}

/* A write failed where returning -1 to lws is not possible (outside the connection's own
 * WRITEABLE callback): lws closes it at its next timer pass; nothing more is written to it. */
static void session_write_failed(struct session *s)
{
    log_event(CONFIG_LOG_DEBUG, "write_failed", "conn", s->conn_id, NULL);
    s->close_sent = true;
    if (!s->close_code)
        s->close_code = 1006; /* never sent (close_sent): only stops new frames */
    outq_clear(&s->outq);
    lws_set_timeout(s->wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC);
}

void session_flush_all(void *arg)
{
    (void)arg;
    struct session *s;
    while ((s = session_flush_head)) {
        session_flush_forget(s);
        if (session_write(s) != 0)
            session_write_failed(s);
    }
}

bool session_write_now(struct session *s, struct frame *f)
{
    if (!s->wsi || s->close_code || !outq_empty(&s->outq) || lws_partial_buffered(s->wsi))
        return false;
    int64_t now_ns = 0;
    if (lws_write(s->wsi, frame_payload(f), f->len, LWS_WRITE_TEXT) < (int)f->len)
        session_write_failed(s);
    else
        session_count_frame(s->gw, f, &now_ns);
    return true;
}
