/*
 * chat-client.js — a reusable browser client for the chat gateway's wire protocol v1
 * (docs/protocol.md). No dependencies, no build step: import it as an ES module.
 *
 *   import { ChatClient } from './chat-client.js';
 *   const chat = new ChatClient({ url: 'wss://chat.example/ws', getToken: async () => token });
 *   chat.on('message', (m) => console.log(m.room, m.from.user, m.text));
 *   chat.on('state', ({ state }) => console.log(state));
 *   chat.connect();
 *   await chat.join('general');            // resolves with the `joined` frame
 *   await chat.publish('general', 'hi');   // resolves with the `ack` frame
 *
 * What it does for you:
 *  - Reconnects by itself after any close it did not ask for, with capped exponential backoff
 *    and jitter (so a thousand browsers do not come back in lockstep after a node restart). A
 *    1001 close (node draining) retries almost at once: the load balancer sends the new
 *    connection to another node.
 *  - Re-joins every room it was in, passing since:{offset, epoch} from the last message it saw,
 *    so the server can replay what was missed (`joined.recovered` tells whether it could; when
 *    not, a 'gap' event lets the app fetch history). Messages are handed to the app once: a
 *    replayed offset it already delivered is dropped.
 *  - Pairs requests with replies by id: request() returns a promise that resolves with the
 *    reply, or rejects with a ChatError carrying the server's error code, or `timeout`, or
 *    `disconnected`. Requests made while disconnected wait (bounded) until the connection is
 *    back and its rooms are re-joined.
 *  - Fetches a fresh token through getToken() before reconnecting when the old one has expired
 *    or the server closed with 1008 (token expired).
 *
 * Events (chat.on(type, fn) returns an unsubscribe function): 'state' {state, attempt, delayMs,
 * code, reason}, 'welcome', 'joined' {…frame, rejoin}, 'left', 'message', 'direct',
 * 'user_joined', 'user_left', 'typing', 'gap' {room, epochChanged}, 'error' (error frames with
 * no pending request), 'frame' (every frame received), 'close' {code, reason, wasClean}.
 * States: idle → connecting → open → (reconnecting → connecting → open)* → closed.
 */

export class ChatError extends Error {
    constructor(code, message, frame) {
        super(message || code);
        this.name = 'ChatError';
        this.code = code;
        this.frame = frame;
    }
}

const DEFAULTS = {
    initialDelayMs: 500, // first retry after a failure (before jitter)
    maxDelayMs: 15000, // backoff cap
    drainDelayMs: 150, // first retry after a 1001 "going away" close
    connectTimeoutMs: 10000, // from new WebSocket() to `welcome`
    requestTimeoutMs: 10000, // from request() to its reply, including time spent waiting to reconnect
    typingUnsupportedAfter: 1, // typing errors before the client stops sending typing frames
};

/** Decodes a JWT's payload (no verification: only to read exp for refresh timing). */
function jwtPayload(token) {
    try {
        const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
        const json = decodeURIComponent(
            [...atob(part.padEnd(part.length + ((4 - (part.length % 4)) % 4), '='))]
                .map((c) => '%' + c.charCodeAt(0).toString(16).padStart(2, '0'))
                .join(''),
        );
        return JSON.parse(json);
    } catch {
        return null;
    }
}

export class ChatClient {
    /**
     * options: url (ws:// or wss:// …/ws, required), token (string) and/or getToken (async
     * function returning a token; called for the first connect when token is absent and
     * whenever a fresh one is needed), plus any of DEFAULTS. The token travels in the `token`
     * query parameter, which is how browsers authenticate a WebSocket.
     */
    constructor(options) {
        if (!options || !options.url) throw new TypeError('ChatClient: url is required');
        this.options = { ...DEFAULTS, ...options };
        this.url = options.url;
        this.token = options.token || null;
        this.getToken = options.getToken || null;
        this.state = 'idle';
        this.welcome = null;
        this.attempt = 0; // consecutive failed connection attempts
        this.ws = null;
        this.listeners = new Map();
        this.pending = new Map(); // id → {resolve, reject, timer, frame}
        this.waiting = []; // requests made while not ready: {frame, resolve, reject, timer}
        this.rooms = new Map(); // room → {offset, epoch}: rooms to be in, and what we saw last
        this.fireAndForget = new Set(); // ids of typing frames (no reply unless an error)
        this.typingErrors = 0;
        this.seq = 0;
        this.retryTimer = null;
        this.connectTimer = null;
        this.ready = false; // open, welcomed, and every remembered room re-joined
    }

    /* ---------- events ---------- */

    on(type, fn) {
        if (!this.listeners.has(type)) this.listeners.set(type, new Set());
        this.listeners.get(type).add(fn);
        return () => this.listeners.get(type)?.delete(fn);
    }

    emit(type, detail) {
        for (const fn of this.listeners.get(type) || []) {
            try {
                fn(detail);
            } catch (err) {
                console.error(`chat-client: ${type} listener failed`, err);
            }
        }
    }

    setState(state, extra = {}) {
        this.state = state;
        this.emit('state', { state, attempt: this.attempt, ...extra });
    }

    /* ---------- connection ---------- */

    /** Starts connecting (again); a no-op while connecting or open. */
    connect() {
        if (this.state === 'connecting' || this.state === 'open') return;
        clearTimeout(this.retryTimer);
        this.retryTimer = null;
        this.closedByUser = false;
        this.open();
    }

    /** Closes for good (no reconnect) and fails every pending request. */
    close(code = 1000, reason = 'bye') {
        this.closedByUser = true;
        clearTimeout(this.retryTimer);
        clearTimeout(this.connectTimer);
        this.retryTimer = null;
        if (this.ws) {
            try {
                this.ws.close(code, reason);
            } catch {
                /* already closing */
            }
        }
        this.failAll('closed', 'the client was closed');
        this.setState('closed', { code, reason });
    }

    /** Skips the current backoff wait. */
    retryNow() {
        if (this.state === 'reconnecting') {
            clearTimeout(this.retryTimer);
            this.retryTimer = null;
            this.open();
        }
    }

    /** True when the token's exp is less than marginMs away (false when it has none). */
    tokenExpiresWithin(marginMs) {
        const exp = this.token && jwtPayload(this.token)?.exp;
        return typeof exp === 'number' && exp * 1000 < Date.now() + marginMs;
    }

    async open() {
        this.setState('connecting');
        try {
            if ((!this.token || this.tokenExpiresWithin(5000) || this.needFreshToken) && this.getToken) {
                this.token = await this.getToken();
                this.needFreshToken = false;
            }
        } catch (err) {
            this.scheduleReconnect({ code: 0, reason: `no token: ${err.message}` });
            return;
        }
        if (this.closedByUser) return;
        if (!this.token) {
            this.close(1000, 'no token');
            return;
        }
        if (!this.getToken && this.tokenExpiresWithin(0)) {
            // The server would answer 401, which a browser only reports as close 1006: retrying
            // could never succeed.
            this.close(1000, 'token expired');
            return;
        }
        const sep = this.url.includes('?') ? '&' : '?';
        let ws;
        try {
            ws = new WebSocket(`${this.url}${sep}token=${encodeURIComponent(this.token)}`);
        } catch (err) {
            this.scheduleReconnect({ code: 0, reason: err.message });
            return;
        }
        this.ws = ws;
        this.welcome = null;
        this.connectTimer = setTimeout(() => {
            if (this.ws === ws && !this.welcome) ws.close(4100, 'no welcome in time');
        }, this.options.connectTimeoutMs);
        ws.onmessage = (ev) => this.receive(ws, ev.data);
        ws.onclose = (ev) => this.onClose(ws, ev);
        ws.onerror = () => {
            /* a close event always follows; it carries what little the browser tells us */
        };
    }

    onClose(ws, ev) {
        if (this.ws !== ws) return;
        clearTimeout(this.connectTimer);
        this.ws = null;
        this.ready = false;
        const info = { code: ev.code, reason: ev.reason, wasClean: ev.wasClean };
        this.emit('close', info);
        this.failPending('disconnected', `connection closed (${ev.code}${ev.reason ? ' ' + ev.reason : ''})`);
        if (this.closedByUser) return;
        if (ev.code === 1008) this.needFreshToken = true; // token expired (or abuse)
        if (ev.code === 1008 && !this.getToken) {
            this.failAll('closed', 'the server refused this token');
            this.setState('closed', info);
            return;
        }
        this.scheduleReconnect(info);
    }

    scheduleReconnect(info) {
        const o = this.options;
        // A node that drains (1001) is going away on purpose: come back quickly, elsewhere.
        const base = info.code === 1001 && this.attempt === 0 ? o.drainDelayMs : o.initialDelayMs;
        const ceiling = Math.min(o.maxDelayMs, base * 2 ** this.attempt);
        const delayMs = Math.round(ceiling / 2 + Math.random() * (ceiling / 2)); // "equal jitter"
        this.attempt++;
        this.setState('reconnecting', { ...info, delayMs, retryAt: Date.now() + delayMs });
        clearTimeout(this.retryTimer);
        this.retryTimer = setTimeout(() => {
            this.retryTimer = null;
            this.open();
        }, delayMs);
    }

    /* ---------- receiving ---------- */

    receive(ws, data) {
        if (this.ws !== ws) return;
        let f;
        try {
            f = JSON.parse(data);
        } catch {
            console.warn('chat-client: a frame that is not JSON', data);
            return;
        }
        this.emit('frame', f);
        if (f.type === 'welcome') {
            this.onWelcome(f);
            return;
        }
        if (f.id !== undefined && f.id !== null && f.type !== 'message') {
            if (this.fireAndForget.delete(f.id)) {
                if (f.type === 'error') this.typingErrors++;
                return;
            }
            const p = this.pending.get(f.id);
            if (p) {
                this.pending.delete(f.id);
                clearTimeout(p.timer);
                if (f.type === 'error') p.reject(new ChatError(f.code, f.message, f));
                else p.resolve(f);
                this.afterReply(p.frame, f);
                return;
            }
        }
        switch (f.type) {
            case 'message':
                this.onMessage(f);
                break;
            case 'error':
                this.emit('error', new ChatError(f.code, f.message, f));
                break;
            default:
                this.emit(f.type, f);
        }
    }

    onWelcome(f) {
        clearTimeout(this.connectTimer);
        this.welcome = f;
        this.attempt = 0;
        this.setState('open', { node: f.node });
        this.emit('welcome', f);
        this.rejoinAll();
    }

    /** Re-joins every remembered room (with since), then releases requests that waited. */
    async rejoinAll() {
        const ws = this.ws;
        const joins = [...this.rooms.entries()].map(([room, seen]) => {
            const frame = { type: 'join', room };
            if (seen.epoch && seen.offset !== undefined) {
                frame.since = { offset: seen.offset, epoch: seen.epoch };
                seen.replaying = true; // until `joined`: replayed offsets we already have are dropped
            }
            return this.send(frame, { force: true })
                .then((joined) => this.emit('joined', { ...joined, rejoin: true }))
                .catch((err) => {
                    if (err.code === 'forbidden' || err.code === 'invalid_room') this.rooms.delete(room);
                    this.emit('error', err);
                });
        });
        await Promise.all(joins);
        if (this.ws !== ws || this.state !== 'open') return;
        this.ready = true;
        for (const w of this.waiting.splice(0)) {
            clearTimeout(w.timer);
            this.send(w.frame, { force: true }).then(w.resolve, w.reject);
        }
    }

    onMessage(f) {
        const seen = this.rooms.get(f.room);
        if (seen && typeof f.offset === 'number') {
            // Only a replay can repeat an offset. Outside one a lower offset is legitimate: the
            // room's history was lost and its offsets restarted from 1.
            if (seen.replaying && seen.offset !== undefined && f.offset <= seen.offset) return;
            seen.offset = f.offset;
            this.advanceOverAcks(seen);
        }
        this.emit('message', f);
    }

    /** Our own messages are acked, never received: count them as seen once contiguous. */
    advanceOverAcks(seen) {
        if (!seen.acked) return;
        while (seen.acked.has(seen.offset + 1)) seen.acked.delete(++seen.offset);
        for (const o of seen.acked) if (o <= seen.offset) seen.acked.delete(o);
    }

    /** Keeps the per-room position in step with what the server answered. */
    afterReply(request, reply) {
        if (reply.type === 'joined') {
            const seen = this.rooms.get(reply.room) || {};
            const epochChanged = seen.epoch && reply.epoch !== seen.epoch;
            const hadPosition = seen.offset !== undefined;
            if (request.since && reply.recovered === false) {
                this.emit('gap', { room: reply.room, epochChanged: Boolean(epochChanged), from: seen.offset, to: reply.offset });
            }
            // Replayed messages (if any) already advanced seen.offset; otherwise start here.
            if (!hadPosition || reply.recovered !== true || epochChanged) {
                seen.offset = reply.offset;
                seen.acked = new Set();
            }
            seen.epoch = reply.epoch;
            seen.replaying = false;
            this.rooms.set(reply.room, seen);
        } else if (reply.type === 'left') {
            this.rooms.delete(reply.room);
        } else if (reply.type === 'ack' && request.type === 'publish') {
            const seen = this.rooms.get(request.room);
            if (seen && typeof reply.offset === 'number' && seen.offset !== undefined) {
                (seen.acked ||= new Set()).add(reply.offset);
                this.advanceOverAcks(seen);
            }
        }
    }

    /* ---------- requests ---------- */

    /**
     * Sends frame with a fresh id and resolves with the reply (rejects with ChatError). While
     * the connection is down (or its rooms are being re-joined) the request waits, bounded by
     * requestTimeoutMs.
     */
    request(frame, { timeoutMs } = {}) {
        return this.send(frame, { timeoutMs });
    }

    send(frame, { timeoutMs = this.options.requestTimeoutMs, force = false } = {}) {
        if (this.state === 'closed' || this.state === 'idle') {
            return Promise.reject(new ChatError('disconnected', 'not connected: call connect() first'));
        }
        const canSend = this.ws && this.ws.readyState === WebSocket.OPEN && this.welcome && (this.ready || force);
        if (!canSend) {
            return new Promise((resolve, reject) => {
                const w = { frame, resolve, reject };
                w.timer = setTimeout(() => {
                    const i = this.waiting.indexOf(w);
                    if (i >= 0) this.waiting.splice(i, 1);
                    reject(new ChatError('timeout', `not connected within ${timeoutMs} ms`));
                }, timeoutMs);
                this.waiting.push(w);
            });
        }
        const id = `r${++this.seq}`;
        const out = { ...frame, id };
        return new Promise((resolve, reject) => {
            const timer = setTimeout(() => {
                this.pending.delete(id);
                reject(new ChatError('timeout', `no reply to ${frame.type} within ${timeoutMs} ms`));
            }, timeoutMs);
            this.pending.set(id, { resolve, reject, timer, frame: out });
            this.ws.send(JSON.stringify(out));
        });
    }

    failPending(code, message) {
        for (const [id, p] of this.pending) {
            clearTimeout(p.timer);
            p.reject(new ChatError(code, message));
            this.pending.delete(id);
        }
        this.fireAndForget.clear();
    }

    failAll(code, message) {
        this.failPending(code, message);
        for (const w of this.waiting.splice(0)) {
            clearTimeout(w.timer);
            w.reject(new ChatError(code, message));
        }
    }

    /* ---------- the protocol, one method per request ---------- */

    /** Joins room (and remembers it, to re-join after a reconnect). Resolves with `joined`. */
    async join(room) {
        if (!this.rooms.has(room)) this.rooms.set(room, {});
        try {
            return await this.send({ type: 'join', room });
        } catch (err) {
            // Refused for good: forget the room. Timeouts and disconnects keep it, so the
            // next reconnect joins it.
            if (['forbidden', 'invalid_room', 'limit_exceeded', 'bad_request'].includes(err.code)) this.rooms.delete(room);
            throw err;
        }
    }

    /** Leaves room and forgets it. Resolves with `left`. */
    async leave(room) {
        try {
            return await this.send({ type: 'leave', room });
        } finally {
            this.rooms.delete(room);
        }
    }

    /** Publishes text to room; resolves with the `ack` (its offset is the message's). */
    publish(room, text) {
        return this.send({ type: 'publish', room, text });
    }

    /** Sends a direct message to user; resolves with the `ack`. */
    direct(to, text) {
        return this.send({ type: 'direct', to, text });
    }

    /** Resolves with the users online in room ([{user, name}]), cluster-wide. */
    async presence(room) {
        const reply = await this.send({ type: 'presence', room });
        return reply.users || [];
    }

    /** Resolves with up to limit messages of room before offset `before` (oldest first). */
    async history(room, { limit = 50, before } = {}) {
        const frame = { type: 'history', room, limit };
        if (before !== undefined) frame.before = before;
        const reply = await this.send(frame);
        return reply.messages || [];
    }

    /** Round trip in milliseconds. */
    async ping() {
        const t0 = performance.now();
        await this.send({ type: 'ping' });
        return performance.now() - t0;
    }

    /** Tells room whether we are typing. Fire and forget; silently off when unsupported. */
    typing(room, state = true) {
        if (!this.ready || this.typingErrors >= this.options.typingUnsupportedAfter) return false;
        const id = `t${++this.seq}`;
        this.fireAndForget.add(id);
        if (this.fireAndForget.size > 100) this.fireAndForget.delete(this.fireAndForget.values().next().value);
        this.ws.send(JSON.stringify({ type: 'typing', room, state: Boolean(state), id }));
        return true;
    }

    get typingSupported() {
        return this.typingErrors < this.options.typingUnsupportedAfter;
    }

    /** The rooms this client is in (or will re-join). */
    get joinedRooms() {
        return [...this.rooms.keys()];
    }
}
