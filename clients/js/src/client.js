/*
 * client — ChatClient, the public face of the package: one method per request of the wire
 * protocol (PROTOCOL.md v1.1), typed events for everything the server pushes, and the glue
 * between the parts that do the work:
 *   connection.js      sockets, reconnect policy, refusal probe, liveness
 *   requests.js        ids, replies, timeouts, the bounded offline queue
 *   rooms.js           per-room offsets/epochs for `since` recovery, duplicate filtering
 *   token-refresh.js   `refresh` before `exp`
 *   read-markers.js    coalesced `read`
 *   typing.js          typing throttle
 *
 * Readiness: after `welcome`, every remembered room is re-joined (with `since`) before any
 * queued request goes out, so a publish written while offline lands after the recovery and a
 * history request sees the room joined. `ready` is true from then until the connection drops.
 * Joins asked for while offline are not queued: the room is remembered and its join promise
 * settles with the re-join after the next `welcome`.
 */
import { Connection } from './connection.js';
import { Emitter } from './emitter.js';
import { ChatError } from './errors.js';
import { ReadMarkers } from './read-markers.js';
import { CLOSE, backoffDelay } from './reconnect-policy.js';
import { RequestTable } from './requests.js';
import { PERMANENT_JOIN_ERRORS, RoomTracker } from './rooms.js';
import { TokenRefresher } from './token-refresh.js';
import { TypingThrottle } from './typing.js';

const TRANSIENT_JOIN_ERRORS = new Set(['unavailable', 'rate_limited', 'internal', 'timeout']);
const REJOIN_RETRIES = 5;

export const DEFAULTS = Object.freeze({
    tokenIn: 'query', // 'query' (browsers) or 'header' (Node with `ws`: keeps the token out of URLs)
    requestTimeoutMs: 10000, // from sending a request to its reply
    queueTimeoutMs: 60000, // longest wait in the offline queue (and for an offline join)
    queueLimit: 100, // requests that may wait for the connection; more fail with queue_full
    connectTimeoutMs: 10000, // from opening a socket to `welcome`
    probeTimeoutMs: 5000, // the GET /ws that asks why a handshake failed
    initialDelayMs: 500, // first backoff step (before jitter)
    maxDelayMs: 30000, // backoff cap
    drainDelayMs: 250, // largest random delay before reconnecting after 1001 (node draining)
    abuseDelayMs: 60000, // wait after a 1008 abuse close
    refreshBeforeMs: 60000, // refresh the token this long before exp (at most half its life)
    typingIntervalMs: 2000, // send typing:true at most this often per room
    liveness: true, // ping after two silent heartbeat periods, drop the socket if still silent
});

export class ChatClient {
    #events = new Emitter();
    #rooms = new RoomTracker();
    #ready = false;
    #joinWaiters = new Map(); // room → [{resolve, reject, timer}]: joins asked for while offline
    #rejoinTimers = new Set(); // re-joins waiting to be retried after a transient refusal
    #conn;
    #requests;
    #refresher;
    #typing;
    #markers;

    constructor(options) {
        if (!options || typeof options.url !== 'string') throw new TypeError('ChatClient: options.url is required');
        if (!options.token && typeof options.getToken !== 'function') {
            throw new TypeError('ChatClient: options.token or options.getToken is required');
        }
        const o = { ...DEFAULTS, ...options };
        o.timers ??= { setTimeout: (fn, ms) => setTimeout(fn, ms), clearTimeout: (t) => clearTimeout(t) };
        o.now ??= () => Date.now();
        o.random ??= Math.random;
        o.fetch ??= typeof globalThis.fetch === 'function' ? globalThis.fetch.bind(globalThis) : undefined;
        o.WebSocket ??= globalThis.WebSocket;
        this.options = o;
        this.#conn = new Connection(o, {
            onState: (s) => this.#events.emit('state', s),
            onWelcome: (f) => this.#onWelcome(f),
            onFrame: (f) => this.#onFrame(f),
            onDown: (info) => this.#onDown(info),
            onFinal: (err) => this.#onFinal(err),
            onError: (err) => this.#events.emit('error', err),
        });
        this.#requests = new RequestTable({ ...o, transmit: (f) => this.#conn.send(f) });
        this.#typing = new TypingThrottle({ intervalMs: o.typingIntervalMs, now: o.now });
        this.#markers = new ReadMarkers({
            send: (room, offset) => this.request({ type: 'read', room, offset }),
            known: (room) => this.#rooms.info(room)?.read,
        });
        this.#refresher = new TokenRefresher({
            ...o,
            fetchToken: () => o.getToken({ reason: 'refresh' }),
            send: (token) => this.#requests.request({ type: 'refresh', token }, { canSend: this.#conn.welcomed }),
            adopt: (token) => this.#conn.adoptToken(token),
            onRefreshed: (f) => this.#events.emit('refreshed', f),
            onError: (err) => this.#events.emit('error', err instanceof ChatError ? err : new ChatError('token_unavailable', err?.message)),
        });
    }

    /* ---------- state ---------- */

    get state() {
        return this.#conn.state;
    }

    /** True when open and every remembered room has been re-joined. */
    get ready() {
        return this.#ready;
    }

    /** The node serving this connection, or null while not connected. */
    get node() {
        return this.#conn.state === 'open' ? (this.#conn.welcome?.node ?? null) : null;
    }

    get welcome() {
        return this.#conn.welcome;
    }

    /** The rooms this client is in or will re-join. */
    get rooms() {
        return this.#rooms.names();
    }

    /** {offset, epoch, read, unread} as this client knows them, or null. */
    roomInfo(room) {
        return this.#rooms.info(room);
    }

    get token() {
        return this.#conn.token;
    }

    on(type, fn) {
        return this.#events.on(type, fn);
    }

    once(type, fn) {
        return this.#events.once(type, fn);
    }

    off(type, fn) {
        this.#events.off(type, fn);
    }

    /* ---------- lifecycle ---------- */

    /** Starts connecting (again after close()); a no-op while connecting or open. */
    connect() {
        this.#conn.start();
        return this;
    }

    /** Skips the current backoff wait. */
    retryNow() {
        this.#conn.retryNow();
    }

    /**
     * Closes for good: the socket, every timer, every request (they fail with `closed`). The
     * list of rooms is kept, so a later connect() re-joins them.
     */
    close(code = CLOSE.NORMAL, reason = '') {
        this.#teardown();
        this.#conn.stop(code, reason);
        this.#requests.failAll('closed', 'the client was closed');
        this.#rejectJoinWaiters(null, new ChatError('closed', 'the client was closed'));
    }

    #teardown() {
        this.#ready = false;
        for (const t of this.#rejoinTimers) this.options.timers.clearTimeout(t);
        this.#rejoinTimers.clear();
        this.#refresher.disarm();
        this.#typing.clear();
    }

    /* ---------- requests ---------- */

    /**
     * Sends any request frame (an id is added) and resolves with its reply. Before connect()
     * and while not ready, it waits in the offline queue. Rejects with ChatError.
     */
    request(frame, { timeoutMs } = {}) {
        if (this.#conn.state === 'closed') return Promise.reject(new ChatError('closed', 'the client is closed'));
        return this.#requests.request(frame, { canSend: this.#ready, timeoutMs });
    }

    /** Joins room and keeps it joined across reconnects. Resolves with `joined`. */
    async join(room) {
        this.#rooms.want(room);
        try {
            if (this.#conn.welcomed) {
                const rejoin = this.#rooms.info(room).epoch !== undefined;
                try {
                    return await this.#requests.request(this.#rooms.joinFrame(room), { canSend: true, meta: { rejoin } });
                } catch (err) {
                    // The room is still wanted: the re-join after the reconnect answers.
                    if (err.code !== 'disconnected' || !this.#rooms.has(room)) throw err;
                }
            }
            if (this.#conn.state === 'closed') throw new ChatError('closed', 'the client is closed');
            return await this.#waitForRejoin(room);
        } catch (err) {
            if (PERMANENT_JOIN_ERRORS.has(err.code)) this.#rooms.forget(room);
            throw err;
        }
    }

    /** Leaves room and forgets it (no re-join). Resolves with `left`. */
    async leave(room) {
        this.#rooms.forget(room);
        this.#markers.forget(room);
        if (this.#typing.stop(room)) this.#conn.send({ type: 'typing', room, state: false });
        this.#rejectJoinWaiters(room, new ChatError('not_joined', 'left before the join completed'));
        if (!this.#conn.welcomed) return { type: 'left', room };
        try {
            return await this.#requests.request({ type: 'leave', room }, { canSend: true });
        } catch (err) {
            if (err.code === 'not_joined' || err.code === 'disconnected') return { type: 'left', room };
            throw err;
        }
    }

    /** Publishes text to room; resolves with the `ack` (its offset is the message's). */
    publish(room, text) {
        this.#typing.messageSent(room);
        return this.request({ type: 'publish', room, text });
    }

    /** Sends text to every connection of user `to`; resolves with the `ack`. */
    direct(to, text) {
        return this.request({ type: 'direct', to, text });
    }

    /** Users in room, cluster-wide: [{user, name}]. */
    async presence(room) {
        return (await this.request({ type: 'presence', room })).users ?? [];
    }

    /** Whether user has a connection anywhere (the gateway's presence-by-user extension). */
    async online(user) {
        return (await this.request({ type: 'presence', user })).online === true;
    }

    /**
     * Up to `limit` messages of room with offsets below `before` (absent: the newest), oldest
     * first. `more` is true when the server stopped early (its page size cap): page on with
     * before = messages[0].offset.
     */
    async history(room, { limit = 50, before } = {}) {
        const frame = { type: 'history', room, limit };
        if (before !== undefined) frame.before = before;
        const reply = await this.request(frame);
        return { messages: reply.messages ?? [], more: reply.more === true };
    }

    /** Round trip in milliseconds. */
    async ping() {
        const t0 = this.options.now();
        await this.request({ type: 'ping' });
        return this.options.now() - t0;
    }

    /** Says whether we are typing in room (throttled; false when it could not be sent). */
    typing(room, state = true) {
        if (!this.#ready) return false;
        if (state ? this.#typing.start(room) : this.#typing.stop(room)) this.#conn.send({ type: 'typing', room, state: Boolean(state) });
        return true;
    }

    /** Moves our read marker in room to offset (coalesced); resolves with `read_ok`. */
    read(room, offset) {
        return this.#markers.mark(room, offset);
    }

    /** Unread counts of every joined room: [{room, offset, read, unread}]. */
    async unread() {
        return (await this.request({ type: 'unread' })).rooms ?? [];
    }

    /** Refreshes the token now (getToken + `refresh`); resolves with `refreshed`. */
    refreshToken() {
        if (typeof this.options.getToken !== 'function') return Promise.reject(new ChatError('invalid_token', 'no getToken callback'));
        return this.#refresher.refresh();
    }

    /* ---------- what the server sends ---------- */

    #onWelcome(welcome) {
        this.#ready = false;
        this.#events.emit('welcome', welcome);
        this.#rejoinAll();
    }

    async #rejoinAll() {
        const gen = this.#conn.generation;
        await Promise.all(this.#rooms.names().map((room) => this.#rejoin(room, 0)));
        if (gen !== this.#conn.generation || !this.#conn.welcomed) return;
        this.#ready = true;
        this.#requests.flush();
        if (typeof this.options.getToken === 'function') this.#refresher.arm(this.#conn.token);
        this.#events.emit('ready', { rooms: this.#rooms.names() });
    }

    /**
     * Re-joins room on the current connection. A transient refusal (Redis unavailable, over
     * the join budget) is retried in the background with backoff, without holding `ready`.
     */
    async #rejoin(room, retry = 0) {
        const gen = this.#conn.generation;
        const rejoin = this.#rooms.info(room)?.epoch !== undefined;
        try {
            const reply = await this.#requests.request(this.#rooms.joinFrame(room), { canSend: true, meta: { rejoin } });
            this.#settleJoinWaiters(room, (w) => w.resolve(reply));
        } catch (err) {
            if (err.code === 'disconnected') return; // the next welcome tries again
            if (PERMANENT_JOIN_ERRORS.has(err.code)) this.#rooms.forget(room);
            this.#events.emit('error', err);
            if (TRANSIENT_JOIN_ERRORS.has(err.code) && retry < REJOIN_RETRIES) {
                const timer = this.options.timers.setTimeout(() => {
                    this.#rejoinTimers.delete(timer);
                    if (gen === this.#conn.generation && this.#conn.welcomed && this.#rooms.has(room)) this.#rejoin(room, retry + 1);
                }, backoffDelay(retry, this.options, this.options.random));
                this.#rejoinTimers.add(timer);
                return;
            }
            this.#settleJoinWaiters(room, (w) => w.reject(err));
        }
    }

    #waitForRejoin(room) {
        return new Promise((resolve, reject) => {
            const w = { resolve, reject };
            w.timer = this.options.timers.setTimeout(() => {
                const list = this.#joinWaiters.get(room) ?? [];
                list.splice(list.indexOf(w), 1);
                reject(new ChatError('timeout', `not connected within ${this.options.queueTimeoutMs} ms`, { room }));
            }, this.options.queueTimeoutMs);
            if (!this.#joinWaiters.has(room)) this.#joinWaiters.set(room, []);
            this.#joinWaiters.get(room).push(w);
        });
    }

    #settleJoinWaiters(room, fn) {
        const list = this.#joinWaiters.get(room);
        if (!list) return;
        this.#joinWaiters.delete(room);
        for (const w of list) {
            this.options.timers.clearTimeout(w.timer);
            fn(w);
        }
    }

    /** Rejects the offline joins of room (all rooms when room is null). */
    #rejectJoinWaiters(room, err) {
        for (const r of room === null ? [...this.#joinWaiters.keys()] : [room]) this.#settleJoinWaiters(r, (w) => w.reject(err));
    }

    #onFrame(f) {
        this.#events.emit('frame', f);
        if (f.id !== undefined && f.id !== null && f.type !== 'message') {
            // A reply; one to a request that timed out already matches nothing and is dropped.
            this.#requests.settle(f, (req, reply, meta) => this.#afterReply(req, reply, meta));
            return;
        }
        switch (f.type) {
            case 'message':
                if (this.#rooms.accept(f)) this.#events.emit('message', f);
                break;
            case 'reset':
                this.#rooms.reset(f);
                this.#events.emit('reset', f);
                break;
            case 'left': // the server removed us (a refreshed token no longer allows the room)
                this.#rooms.forget(f.room);
                this.#events.emit('left', { ...f, byServer: true });
                break;
            case 'read':
                if (f.user === this.#conn.welcome?.user) this.#rooms.readMarker(f.room, f.offset);
                this.#events.emit('read', f);
                break;
            case 'error':
                this.#events.emit('error', new ChatError(f.code, f.message, { frame: f }));
                break;
            default:
                this.#events.emit(f.type, f);
        }
    }

    /** Keeps room state in step with replies, before the request's promise resolves. */
    #afterReply(req, reply, meta) {
        switch (reply.type) {
            case 'joined': {
                const gap = this.#rooms.joined(req, reply);
                this.#events.emit('joined', { ...reply, rejoin: Boolean(meta?.rejoin) });
                if (gap) this.#events.emit('gap', gap);
                break;
            }
            case 'left':
                this.#events.emit('left', { ...reply, byServer: false });
                break;
            case 'ack':
                if (req.type === 'publish') this.#rooms.acked(req.room, reply.offset);
                break;
            case 'read_ok':
                this.#rooms.readMarker(reply.room, reply.offset);
                break;
            case 'unread':
                for (const r of reply.rooms ?? []) this.#rooms.readMarker(r.room, r.read);
                break;
            default:
        }
    }

    #onDown(info) {
        this.#teardown();
        this.#requests.failPending('disconnected', `connection closed (${info.code}${info.reason ? ` ${info.reason}` : ''})`);
        this.#events.emit('close', info);
    }

    #onFinal(err) {
        this.#teardown();
        this.#requests.failAll(err.code, err.message);
        this.#rejectJoinWaiters(null, err);
        this.#events.emit('error', err);
    }
}
