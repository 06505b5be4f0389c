/*
 * fakes — a virtual clock, a scriptable WebSocket and fetch, for driving ChatClient through its
 * state machine in unit tests without a network or real time. Everything the client schedules
 * goes through FakeClock, so a test can also assert that nothing is left scheduled.
 */
import { ChatClient } from '../../src/index.js';

/** Lets every promise chain that is already resolvable run. */
export const settle = () => new Promise((resolve) => setImmediate(resolve));

export class FakeClock {
    t = 1_800_000_000_000;
    #pending = new Map(); // id → {at, fn}
    #seq = 0;
    now = () => this.t;
    timers = {
        setTimeout: (fn, ms) => {
            const id = ++this.#seq;
            this.#pending.set(id, { at: this.t + Math.max(0, ms ?? 0), fn });
            return id;
        },
        clearTimeout: (id) => {
            this.#pending.delete(id);
        },
    };

    /** Timers still scheduled. */
    get scheduled() {
        return this.#pending.size;
    }

    /** The delay until the earliest timer (Infinity when none). */
    get nextDelay() {
        let at = Infinity;
        for (const p of this.#pending.values()) at = Math.min(at, p.at);
        return at - this.t;
    }

    /** Moves time forward by ms, running every timer that falls due, in order. */
    async advance(ms) {
        const end = this.t + ms;
        for (;;) {
            await settle();
            let next = null;
            for (const [id, p] of this.#pending) if (p.at <= end && (!next || p.at < next[1].at)) next = [id, p];
            if (!next) break;
            this.#pending.delete(next[0]);
            this.t = next[1].at;
            next[1].fn();
        }
        this.t = end;
        await settle();
    }
}

/** An unsigned JWT-shaped token with the given claims (the client never verifies tokens). */
export function fakeToken(claims) {
    const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
    return `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}.sig`;
}

/** A WebSocket class whose instances the test drives; `sockets` lists them in creation order. */
export function fakeWebSocket() {
    const sockets = [];
    class FakeWebSocket {
        static OPEN = 1;
        readyState = 0;
        sent = [];
        constructor(url, protocols, options) {
            this.url = url;
            this.options = options;
            sockets.push(this);
        }
        send(text) {
            if (this.readyState !== 1) throw new Error('send on a socket that is not open');
            this.sent.push(JSON.parse(text));
        }
        close(code, reason) {
            this.closedWith = { code, reason };
            this.readyState = 3;
        }
        /* ---- the server's side ---- */
        open() {
            this.readyState = 1;
            this.onopen?.({});
        }
        receive(frame) {
            this.onmessage?.({ data: JSON.stringify(frame) });
        }
        welcome(extra = {}) {
            this.open();
            this.receive({ type: 'welcome', conn: `c${sockets.indexOf(this)}`, user: 'me', node: `n${sockets.indexOf(this)}`, ts: 0, heartbeat: 25, ...extra });
        }
        /** The server (or the network) ends the connection. */
        end(code, reason = '') {
            this.readyState = 3;
            this.onclose?.({ code, reason, wasClean: code !== 1006 });
        }
        /** Frames sent so far of a type, or the last one. */
        sentOf(type) {
            return this.sent.filter((f) => f.type === type);
        }
        last(type) {
            return this.sentOf(type).at(-1);
        }
        /** Answers every unanswered join with joined (room → {offset, epoch, ...}). */
        answerJoins(rooms = {}) {
            for (const f of this.sentOf('join')) {
                if (f.answered) continue;
                f.answered = true;
                const r = rooms[f.room] ?? {};
                this.receive({ type: 'joined', room: f.room, id: f.id, offset: 0, epoch: 'e1', ...r });
            }
        }
    }
    return { FakeWebSocket, sockets };
}

/** A fetch that answers with the queued responses ({status, body}) or rejects ({error}). */
export function fakeFetch(responses = []) {
    const calls = [];
    const fn = async (url, init) => {
        calls.push({ url, init });
        const r = responses.length > 1 ? responses.shift() : responses[0];
        if (!r || r.error) throw new TypeError(r?.error ?? 'fetch failed');
        return { status: r.status, text: async () => (typeof r.body === 'string' ? r.body : JSON.stringify(r.body ?? {})) };
    };
    fn.calls = calls;
    return fn;
}

/**
 * A client on fakes. opts go to ChatClient; `random` defaults to 0.5 so backoff delays are
 * predictable. Returns {client, clock, sockets, fetch, events, socket()} where events records
 * every event by type and socket() is the latest socket.
 */
export function makeClient(opts = {}) {
    const clock = new FakeClock();
    const { FakeWebSocket, sockets } = fakeWebSocket();
    const fetch = opts.fetch ?? fakeFetch([{ status: 426, body: { error: 'upgrade_required', message: 'use a WebSocket' } }]);
    const client = new ChatClient({
        url: 'ws://gw.test/ws',
        token: opts.getToken ? undefined : fakeToken({ sub: 'me', exp: Math.floor(clock.t / 1000) + 3600 }),
        WebSocket: FakeWebSocket,
        timers: clock.timers,
        now: clock.now,
        random: () => 0.5,
        ...opts,
        fetch,
    });
    const events = {};
    const types = ['state', 'welcome', 'ready', 'joined', 'left', 'message', 'direct', 'user_joined', 'user_left', 'typing', 'read', 'reset', 'gap', 'refreshed', 'error', 'close'];
    for (const t of types) client.on(t, (e) => (events[t] ??= []).push(e));
    return { client, clock, sockets, fetch, events, socket: () => sockets.at(-1) };
}

/** Connects, welcomes, answers the re-joins; resolves once the client is ready. */
export async function connectReady(h, rooms = {}) {
    if (h.client.state === 'idle') h.client.connect();
    await settle();
    const ws = h.socket();
    ws.welcome();
    ws.answerJoins(rooms);
    await settle();
    return ws;
}
