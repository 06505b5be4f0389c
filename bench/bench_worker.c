/*
 * bench_worker — one service thread, one lws client context, a share of the connections.
 *
 * lws 4.1 from Debian has one service thread per context (LWS_MAX_SMP 1), so the bench scales
 * out by running several contexts, each served by its own thread; connections are dealt to
 * them round-robin. Everything here runs on the worker's service thread, except
 * bench_worker_init() (main thread, before the thread exists) and bench_worker_wake(), which is
 * only lws_cancel_service(): the main thread announces a phase change by storing it in
 * b->phase and waking every worker; the wake surfaces as LWS_CALLBACK_EVENT_WAIT_CANCELLED.
 *
 * Writes happen only in LWS_CALLBACK_CLIENT_WRITEABLE, one lws_write per callback, from a
 * buffer with LWS_PRE bytes of headroom. A publisher's schedule is driven by one lws timer
 * (sul) per worker: when it fires, every publisher whose next send is due is marked and asks
 * for WRITEABLE; the timer re-arms itself for the earliest next due send.
 */
#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BENCH_TX_MAX (LWS_PRE + 65536 + 512)
#define BENCH_STOP_GRACE_NS 3000000000LL /* closing handshakes get this long */

static _Thread_local unsigned char bench_tx[BENCH_TX_MAX];

int64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void bench_worker_stats_init(struct bench_worker_stats *st)
{
    memset(st, 0, sizeof(*st));
    histogram_init(&st->latency);
    histogram_init(&st->latency_from_send);
    histogram_init(&st->send_lag);
    histogram_init(&st->ack_latency);
    histogram_init(&st->connect_time);
}

void bench_error_count(struct bench_worker_stats *st, const char *name, size_t len)
{
    if (len >= sizeof(st->error_kinds[0].name))
        len = sizeof(st->error_kinds[0].name) - 1;
    for (int i = 0; i < BENCH_ERROR_KINDS; i++) {
        struct bench_error_kind *k = &st->error_kinds[i];
        if (k->count == 0) {
            memcpy(k->name, name, len);
            k->name[len] = '\0';
            k->count = 1;
            return;
        }
        if (strlen(k->name) == len && memcmp(k->name, name, len) == 0) {
            k->count++;
            return;
        }
    }
    /* table full: count under the last slot's name rather than lose the count */
    st->error_kinds[BENCH_ERROR_KINDS - 1].count++;
}

void bench_worker_stats_merge(struct bench_worker_stats *dst, const struct bench_worker_stats *src)
{
    histogram_merge(&dst->latency, &src->latency);
    histogram_merge(&dst->latency_from_send, &src->latency_from_send);
    histogram_merge(&dst->send_lag, &src->send_lag);
    histogram_merge(&dst->ack_latency, &src->ack_latency);
    histogram_merge(&dst->connect_time, &src->connect_time);
    dst->measured_sent += src->measured_sent;
    dst->measured_acked += src->measured_acked;
    dst->warmup_sent += src->warmup_sent;
    dst->warmup_delivered += src->warmup_delivered;
    dst->duplicated += src->duplicated;
    dst->out_of_order += src->out_of_order;
    dst->unexpected += src->unexpected;
    dst->foreign += src->foreign;
    dst->disconnects += src->disconnects;
    dst->errors += src->errors;
    dst->bytes_in += src->bytes_in;
    dst->frames_in += src->frames_in;
    dst->frames_out += src->frames_out;
    dst->message_bytes_in += src->message_bytes_in;
    dst->messages_in += src->messages_in;
    for (int i = 0; i < BENCH_ERROR_KINDS; i++) {
        const struct bench_error_kind *k = &src->error_kinds[i];
        for (uint64_t n = 0; n < k->count; n++)
            bench_error_count(dst, k->name, strlen(k->name));
    }
    if (!dst->first_failure[0] && src->first_failure[0])
        memcpy(dst->first_failure, src->first_failure, sizeof(dst->first_failure));
}

/* ---------- connecting ---------- */

static void bench_connect_next(struct bench_worker *w);

/* A connection that will never be ready: counted once, its slot handed to the next one. */
static void bench_conn_failed(struct bench_conn *c, const char *why)
{
    struct bench_worker *w = c->worker;
    if (c->state == CONN_FAILED || c->state == CONN_CLOSED)
        return;
    if (c->state == CONN_CONNECTING)
        w->in_flight--;
    c->state = CONN_FAILED;
    atomic_fetch_add_explicit(&w->failed, 1, memory_order_relaxed);
    if (!w->st.first_failure[0])
        snprintf(w->st.first_failure, sizeof(w->st.first_failure), "%.60s: %.90s",
                 w->b->opt.urls[c->url].text, why ? why : "connection failed");
    bench_connect_next(w);
}

/* No lws validity timers on our connections: lws 4.1 keeps them in one sorted list and
 * re-inserts a connection's timer on every frame it receives, which costs O(connections) per
 * delivery; the servers' pings are answered by lws anyway. */
static const lws_retry_bo_t bench_no_validity = {.secs_since_valid_ping = 0,
                                                 .secs_since_valid_hangup = 0};

static void bench_connect_next(struct bench_worker *w)
{
    static _Thread_local bool inside;
    if (inside) /* a failure reported from inside lws_client_connect_via_info */
        return;
    inside = true;
    struct bench *b = w->b;
    while (w->in_flight < b->opt.connect_concurrency && w->next_connect < w->conn_count &&
           atomic_load(&b->phase) != BENCH_PHASE_STOP) {
        struct bench_conn *c = w->conns[w->next_connect++];
        const struct bench_url *u = &b->opt.urls[c->url];
        struct lws_client_connect_info i;
        memset(&i, 0, sizeof(i));
        i.context = w->ctx;
        i.address = u->host;
        i.port = u->port;
        i.path = c->path;
        i.host = b->host_headers[c->url];
        i.origin = NULL;
        i.protocol = NULL; /* no subprotocol: the gateway binds us to its default one */
        i.local_protocol_name = "chat-bench";
        i.opaque_user_data = c;
        i.pwsi = &c->wsi;
        i.iface = c->source == UINT16_MAX ? NULL : b->opt.sources[c->source];
        i.retry_and_idle_policy = &bench_no_validity;
        if (u->tls) {
            i.ssl_connection = LCCSCF_USE_SSL;
            if (b->opt.insecure)
                i.ssl_connection |= LCCSCF_ALLOW_SELFSIGNED |
                                    LCCSCF_SKIP_SERVER_CERT_HOSTNAME_CHECK | LCCSCF_ALLOW_EXPIRED;
        }
        c->state = CONN_CONNECTING;
        c->connect_start_ns = bench_now_ns();
        w->in_flight++;
        if (!lws_client_connect_via_info(&i)) {
            c->wsi = NULL;
            inside = false;
            bench_conn_failed(c, "lws_client_connect_via_info failed");
            inside = true;
        }
    }
    inside = false;
}

static void bench_conn_ready(struct bench_conn *c)
{
    struct bench_worker *w = c->worker;
    c->state = CONN_READY;
    histogram_record(&w->st.connect_time, (uint64_t)(bench_now_ns() - c->connect_start_ns) / 1000);
    atomic_fetch_add_explicit(&w->ready, 1, memory_order_relaxed);
}

/* ---------- receiving ---------- */

/* Records that offset o arrived; returns 1 new in order, 2 new but out of order, 0 duplicate,
 * -1 not expected at all (at or below the offset of `joined`). */
static int bench_track_offset(struct bench_conn *c, uint64_t o)
{
    if (o <= c->joined_offset)
        return -1;
    const unsigned bits = 64 * BENCH_WINDOW_WORDS;
    if (o > c->high) {
        uint64_t d = o - c->high;
        if (d >= bits) {
            memset(c->window, 0, sizeof(c->window));
        } else {
            unsigned words = (unsigned)(d / 64), shift = (unsigned)(d % 64);
            for (int i = BENCH_WINDOW_WORDS - 1; i >= 0; i--) {
                uint64_t v = i - (int)words >= 0 ? c->window[i - words] << shift : 0;
                if (shift && i - (int)words - 1 >= 0)
                    v |= c->window[i - words - 1] >> (64 - shift);
                c->window[i] = v;
            }
        }
        c->window[0] |= 1;
        c->high = o; /* a gap is no error yet: it is lost only if it never fills */
        return 1;
    }
    uint64_t d = c->high - o;
    if (d >= bits)
        return 2; /* too old to remember: count it as late, not as a duplicate */
    uint64_t mask = UINT64_C(1) << (d % 64);
    if (c->window[d / 64] & mask)
        return 0;
    c->window[d / 64] |= mask;
    return 2;
}

static void bench_on_message(struct bench_conn *c, const struct bench_frame *f)
{
    struct bench_worker *w = c->worker;
    struct bench *b = w->b;
    if (c->room < 0 || c->state != CONN_READY || f->room.len != b->room_name_len[c->room] ||
        memcmp(f->room.p, b->room_names[c->room], f->room.len) != 0 || !f->has_offset) {
        w->st.unexpected++;
        return;
    }
    int seen = bench_track_offset(c, f->offset);
    if (seen < 0) {
        w->st.unexpected++;
        return;
    }
    if (seen == 0) {
        w->st.duplicated++;
        return;
    }
    if (seen == 2)
        w->st.out_of_order++;

    struct bench_stamp s;
    if (bench_stamp_read(f->text.p, f->text.len, b->tag, &s) != 0) {
        w->st.foreign++; /* someone else's message in our room */
        return;
    }
    if ((int32_t)s.publisher == c->publisher) {
        w->st.unexpected++; /* our own message came back */
        return;
    }
    if (!s.measured) {
        w->st.warmup_delivered++;
        return;
    }
    int64_t now = bench_now_ns();
    histogram_record(&w->st.latency, now > s.sched_ns ? (uint64_t)(now - s.sched_ns) / 1000 : 0);
    histogram_record(&w->st.latency_from_send,
                     now > s.send_ns ? (uint64_t)(now - s.send_ns) / 1000 : 0);
    atomic_fetch_add_explicit(&w->delivered, 1, memory_order_relaxed);
}

static int64_t bench_sched_ns(const struct bench *b, const struct bench_conn *c, uint64_t seq)
{
    return c->first_sched_ns + (int64_t)((double)seq * b->interval_ns);
}

/* An ack or error answering one of our publishes (id = its sequence number). */
static void bench_on_answer(struct bench_conn *c, const struct bench_frame *f, bool ok)
{
    struct bench_worker *w = c->worker;
    struct bench *b = w->b;
    if (c->publisher < 0 || f->id.len == 0 || f->id.p[0] < '0' || f->id.p[0] > '9')
        return;
    uint64_t seq = 0;
    for (size_t i = 0; i < f->id.len && f->id.p[i] >= '0' && f->id.p[i] <= '9'; i++)
        seq = seq * 10 + (uint64_t)(f->id.p[i] - '0');
    if (seq >= c->seq_sent)
        return;
    atomic_fetch_add_explicit(&w->answered, 1, memory_order_relaxed);
    int64_t sched = bench_sched_ns(b, c, seq);
    if (!ok || sched < atomic_load_explicit(&b->measure_ns, memory_order_relaxed))
        return;
    w->st.measured_acked++;
    int64_t now = bench_now_ns();
    histogram_record(&w->st.ack_latency, now > sched ? (uint64_t)(now - sched) / 1000 : 0);
}

static void bench_on_frame(struct bench_conn *c, const char *buf, size_t len)
{
    struct bench_worker *w = c->worker;
    struct bench_frame f;
    w->st.frames_in++;
    w->st.bytes_in += len;
    if (bench_frame_scan(buf, len, &f) != 0 || !f.type.p) {
        w->st.foreign++;
        return;
    }
    if (bench_span_eq(f.type, "message")) {
        w->st.messages_in++;
        w->st.message_bytes_in += len;
        bench_on_message(c, &f);
    } else if (bench_span_eq(f.type, "ack")) {
        bench_on_answer(c, &f, true);
    } else if (bench_span_eq(f.type, "welcome")) {
        if (c->state != CONN_WELCOMING)
            return;
        if (c->room < 0) {
            bench_conn_ready(c);
        } else {
            c->state = CONN_JOINING;
            c->join_pending = true;
            lws_callback_on_writable(c->wsi);
        }
    } else if (bench_span_eq(f.type, "joined")) {
        if (c->state != CONN_JOINING)
            return;
        c->joined_offset = f.offset;
        c->high = f.offset;
        memset(c->window, 0xff, sizeof(c->window)); /* offsets up to joined: "seen" */
        bench_conn_ready(c);
    } else if (bench_span_eq(f.type, "error")) {
        w->st.errors++;
        if (f.code.p)
            bench_error_count(&w->st, f.code.p, f.code.len);
        else
            bench_error_count(&w->st, "error", 5);
        if (c->state == CONN_JOINING) {
            char why[96];
            snprintf(why, sizeof(why), "join answered error %.*s", (int)f.code.len,
                     f.code.p ? f.code.p : "");
            bench_conn_failed(c, why);
            c->close_pending = true;
            lws_callback_on_writable(c->wsi);
        } else {
            bench_on_answer(c, &f, false);
        }
    }
    /* user_joined, user_left, typing, pong, ...: not part of the measurement */
}

static int bench_receive(struct bench_conn *c, const char *in, size_t len)
{
    struct lws *wsi = c->wsi;
    bool complete = lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0;
    if (c->rx_len == 0 && complete) {
        bench_on_frame(c, in, len);
        return 0;
    }
    if (c->rx_len + len > c->rx_cap) {
        size_t cap = c->rx_cap ? c->rx_cap : 4096;
        while (cap < c->rx_len + len)
            cap *= 2;
        if (cap > (size_t)16 << 20)
            return -1; /* a frame far beyond any sane limit */
        char *rx = realloc(c->rx, cap);
        if (!rx)
            return -1;
        c->rx = rx;
        c->rx_cap = cap;
    }
    memcpy(c->rx + c->rx_len, in, len);
    c->rx_len += len;
    if (complete) {
        bench_on_frame(c, c->rx, c->rx_len);
        c->rx_len = 0;
    }
    return 0;
}

/* ---------- sending ---------- */

static int bench_write(struct bench_conn *c, size_t len)
{
    c->worker->st.frames_out++;
    int n = lws_write(c->wsi, bench_tx + LWS_PRE, len, LWS_WRITE_TEXT);
    return n < (int)len ? -1 : 0;
}

static int bench_writable(struct bench_conn *c)
{
    struct bench_worker *w = c->worker;
    struct bench *b = w->b;
    char *out = (char *)bench_tx + LWS_PRE;
    const size_t cap = BENCH_TX_MAX - LWS_PRE;

    if (c->close_pending) {
        lws_close_reason(c->wsi, LWS_CLOSE_STATUS_NORMAL, (unsigned char *)"done", 4);
        return -1;
    }
    if (c->join_pending) {
        c->join_pending = false;
        int n = snprintf(out, cap, "{\"type\":\"join\",\"room\":\"%s\",\"id\":\"j\"}",
                         b->room_names[c->room]);
        return bench_write(c, (size_t)n);
    }
    if (c->publisher < 0 || c->state != CONN_READY || c->seq_sent >= c->seq_due)
        return 0;

    uint64_t seq = c->seq_sent;
    struct bench_stamp s = {
        .publisher = (uint32_t)c->publisher,
        .seq = seq,
        .sched_ns = bench_sched_ns(b, c, seq),
        .send_ns = bench_now_ns(),
    };
    s.measured = s.sched_ns >= atomic_load_explicit(&b->measure_ns, memory_order_relaxed);
    int n = snprintf(out, cap, "{\"type\":\"publish\",\"room\":\"%s\",\"id\":%llu,\"text\":\"",
                     b->room_names[c->room], (unsigned long long)seq);
    size_t len = (size_t)n;
    size_t text = bench_stamp_write(out + len, cap - len - 2, b->tag, &s, b->opt.payload);
    if (text == 0)
        return -1;
    len += text;
    out[len++] = '"';
    out[len++] = '}';
    if (bench_write(c, len) != 0)
        return -1;
    c->seq_sent++;
    atomic_fetch_add_explicit(&w->sent, 1, memory_order_relaxed);
    if (s.measured) {
        w->st.measured_sent++;
        atomic_fetch_add_explicit(&w->expected, b->members_per_room - 1, memory_order_relaxed);
        histogram_record(&w->st.send_lag, (uint64_t)(s.send_ns - s.sched_ns) / 1000);
    } else {
        w->st.warmup_sent++;
    }
    if (c->seq_sent < c->seq_due)
        lws_callback_on_writable(c->wsi);
    return 0;
}

/* ---------- pacing and phases ---------- */

static void bench_pace(lws_sorted_usec_list_t *sul)
{
    struct bench_worker *w = lws_container_of(sul, struct bench_worker, pace_sul);
    struct bench *b = w->b;
    if (atomic_load(&b->phase) != BENCH_PHASE_RUN)
        return;
    int64_t now = bench_now_ns();
    int64_t next = INT64_MAX;
    for (size_t i = 0; i < w->pub_count; i++) {
        struct bench_conn *c = w->pubs[i];
        if (c->state != CONN_READY || !c->wsi)
            continue;
        uint64_t due = 0;
        if (now >= c->first_sched_ns)
            due = (uint64_t)((double)(now - c->first_sched_ns) / b->interval_ns) + 1;
        if (due > c->seq_total)
            due = c->seq_total;
        if (due > c->seq_due) {
            c->seq_due = due;
            lws_callback_on_writable(c->wsi);
        }
        if (c->seq_due < c->seq_total) {
            int64_t t = bench_sched_ns(b, c, c->seq_due);
            if (t < next)
                next = t;
        }
    }
    if (next != INT64_MAX)
        lws_sul_schedule(w->ctx, 0, &w->pace_sul, bench_pace,
                         next > now ? (next - now + 999) / 1000 : 0);
}

static void bench_phase_changed(struct bench_worker *w)
{
    struct bench *b = w->b;
    int phase = atomic_load(&b->phase);
    if (phase == w->seen_phase)
        return;
    w->seen_phase = phase;
    if (phase == BENCH_PHASE_RUN) {
        int64_t t0 = atomic_load(&b->t0_ns), end = atomic_load(&b->end_ns);
        for (size_t i = 0; i < w->pub_count; i++) {
            struct bench_conn *c = w->pubs[i];
            c->first_sched_ns = t0 + (int64_t)((double)c->publisher * b->gap_ns);
            c->seq_total =
                c->first_sched_ns < end
                    ? (uint64_t)((double)(end - c->first_sched_ns - 1) / b->interval_ns) + 1
                    : 0;
        }
        lws_sul_schedule(w->ctx, 0, &w->pace_sul, bench_pace, 0);
    } else if (phase == BENCH_PHASE_STOP) {
        lws_sul_cancel(&w->pace_sul);
        w->stop_deadline_ns = bench_now_ns() + BENCH_STOP_GRACE_NS;
        for (size_t i = 0; i < w->conn_count; i++) {
            struct bench_conn *c = w->conns[i];
            if (c->wsi && c->state != CONN_CONNECTING && c->state != CONN_CLOSED) {
                c->close_pending = true;
                lws_callback_on_writable(c->wsi);
            }
        }
    }
}

/* ---------- the lws callback ---------- */

static int bench_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                          size_t len)
{
    (void)user;
    struct bench_worker *w = lws_context_user(lws_get_context(wsi));
    struct bench_conn *c;

    switch (reason) {
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        bench_phase_changed(w);
        return 0;

    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        c = lws_get_opaque_user_data(wsi);
        if (c) {
            c->wsi = NULL;
            bench_conn_failed(c, in ? (const char *)in : "connection error");
        }
        return 0;

    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        c = lws_get_opaque_user_data(wsi);
        if (!c)
            return -1;
        c->wsi = wsi;
        c->state = CONN_WELCOMING;
        w->in_flight--;
        w->open_count++;
        if (w->seen_phase == BENCH_PHASE_STOP) { /* finished connecting too late: just close */
            c->close_pending = true;
            lws_callback_on_writable(wsi);
            return 0;
        }
        bench_connect_next(w);
        return 0;

    case LWS_CALLBACK_CLIENT_RECEIVE:
        c = lws_get_opaque_user_data(wsi);
        return c ? bench_receive(c, in, len) : 0;

    case LWS_CALLBACK_CLIENT_WRITEABLE:
        c = lws_get_opaque_user_data(wsi);
        return c ? bench_writable(c) : 0;

    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        if (len >= 2 && atomic_load(&w->b->phase) != BENCH_PHASE_STOP) {
            const unsigned char *p = in;
            char name[32];
            int n = snprintf(name, sizeof(name), "close %u", (unsigned)(p[0] << 8 | p[1]));
            bench_error_count(&w->st, name, (size_t)n);
        }
        return 0;

    case LWS_CALLBACK_CLIENT_CLOSED:
        c = lws_get_opaque_user_data(wsi);
        if (!c)
            return 0;
        lws_set_opaque_user_data(wsi, NULL);
        if (c->state != CONN_CLOSED && c->state != CONN_FAILED) {
            if (atomic_load(&w->b->phase) != BENCH_PHASE_STOP) {
                w->st.disconnects++;
                if (c->state != CONN_READY) /* closed during the handshake / join */
                    bench_conn_failed(c, "closed before ready");
            }
        }
        if (c->state != CONN_FAILED)
            c->state = CONN_CLOSED;
        c->wsi = NULL;
        w->open_count--;
        atomic_fetch_add_explicit(&w->closed, 1, memory_order_relaxed);
        return 0;

    default:
        break;
    }
    return 0;
}

static const struct lws_protocols bench_protocols[] = {
    {
        .name = "chat-bench",
        .callback = bench_callback,
        .per_session_data_size = 0,
        .rx_buffer_size = 4096,
    },
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

int bench_worker_init(struct bench_worker *w)
{
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = bench_protocols;
    info.user = w;
    info.timeout_secs = (unsigned)w->b->opt.connect_timeout_s;
    info.connect_timeout_secs = (unsigned)w->b->opt.connect_timeout_s;
    for (int i = 0; i < w->b->opt.url_count; i++)
        if (w->b->opt.urls[i].tls)
            info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    w->ctx = lws_create_context(&info);
    return w->ctx ? 0 : -1;
}

void bench_worker_wake(struct bench_worker *w)
{
    if (w->ctx)
        lws_cancel_service(w->ctx);
}

void *bench_worker_main(void *arg)
{
    struct bench_worker *w = arg;
    bench_connect_next(w);
    for (;;) {
        bench_phase_changed(w); /* in case a wake-up merged with other events */
        if (w->seen_phase == BENCH_PHASE_STOP &&
            ((w->open_count == 0 && w->in_flight == 0) || bench_now_ns() > w->stop_deadline_ns))
            break;
        if (lws_service(w->ctx, 100) < 0)
            break;
    }
    return NULL;
}
