/*
 * connection — one WebSocket at a time, and the decision of when to open the next one.
 *
 * States: idle → connecting → open → (reconnecting → connecting → open)* → closed. `open`
 * means the server's `welcome` arrived (the socket's own open event only means the upgrade
 * succeeded). What ends a connection is judged by reconnect-policy.js; a socket that fails
 * before it opens is judged by the server's answer to a plain GET /ws (refusal.js), because a
 * browser cannot see why an upgrade was refused.
 *
 * Invariants:
 *  - every socket belongs to a generation; events of an older generation are ignored, so a
 *    late close or message of a replaced socket cannot touch the current one;
 *  - at most one timer of each kind (retry, connect, liveness) exists, and stop() or a final
 *    refusal clears them all: a closed client leaves nothing scheduled;
 *  - a token is fetched (getToken) only when there is none, it expires within
 *    TOKEN_MIN_LIFE_MS, or the server said it expired; a failed getToken() is retried with
 *    backoff, never in a tight loop.
 *  - liveness: browsers do not expose WebSocket pings, so a half-open TCP connection (a laptop
 *    that slept, a phone that changed networks) would look open forever. After two heartbeat
 *    periods without any frame the client sends a JSON ping; with still nothing one period
 *    later, it drops the socket and reconnects.
 */
import { ChatError } from './errors.js';
import { CLOSE, backoffDelay, planAfterClose, planAfterRefusal } from './reconnect-policy.js';
import { probeRefusal } from './refusal.js';
import { tokenExpiry } from './token.js';

const TOKEN_MIN_LIFE_MS = 5000; // a token closer than this to exp is replaced before a handshake
const LIVENESS_ID = '__liveness';
const OPEN = 1; // WebSocket.OPEN, the same in browsers and `ws`

export class Connection {
    state = 'idle';
    attempt = 0; // consecutive failures; backoff grows with it, `welcome` resets it
    welcome = null; // the current connection's welcome frame (null until it arrives)
    token;
    #ws = null;
    #generation = 0;
    #opened = false; // the current socket fired `open`
    #welcomed = false;
    #stopped = false;
    #tokenFresh = false; // the token was fetched for the current attempt
    #needFreshToken = false;
    #lastFrameAt = 0;
    #pingSentAt = null;
    #timers = { retry: null, connect: null, liveness: null };

    /** o: the client's options; hooks: onState, onWelcome, onFrame, onDown, onFinal, onError. */
    constructor(o, hooks) {
        this.o = o;
        this.hooks = hooks;
        this.token = o.token || null;
    }

    get generation() {
        return this.#generation;
    }

    /** True while a welcomed socket is open: frames may be sent. */
    get welcomed() {
        return this.#welcomed && this.#ws?.readyState === OPEN;
    }

    start() {
        if (this.state === 'connecting' || this.state === 'open') return;
        if (this.state === 'reconnecting') {
            this.retryNow();
            return;
        }
        this.#stopped = false;
        this.attempt = 0;
        this.#open();
    }

    retryNow() {
        if (this.state !== 'reconnecting') return;
        this.#clearTimer('retry');
        this.#open();
    }

    /** Closes for good: no reconnect, nothing left scheduled. */
    stop(code = CLOSE.NORMAL, reason = '') {
        if (this.state === 'closed' || this.state === 'idle') {
            this.#stopped = true;
            return;
        }
        this.#halt(code, reason);
        this.#setState('closed', { code, reason, final: false });
    }

    /** Sends frame on the welcomed socket; false when there is none. */
    send(frame) {
        if (!this.welcomed) return false;
        this.#ws.send(JSON.stringify(frame));
        return true;
    }

    /** Uses token for future handshakes (a refreshed token). */
    adoptToken(token) {
        this.token = token;
    }

    #halt(code, reason) {
        this.#stopped = true;
        this.#generation++;
        for (const k of Object.keys(this.#timers)) this.#clearTimer(k);
        const ws = this.#detach();
        try {
            ws?.close(code, reason);
        } catch {
            /* already closing */
        }
    }

    #clearTimer(kind) {
        if (this.#timers[kind] !== null) this.o.timers.clearTimeout(this.#timers[kind]);
        this.#timers[kind] = null;
    }

    #setTimer(kind, fn, ms) {
        this.#clearTimer(kind);
        this.#timers[kind] = this.o.timers.setTimeout(() => {
            this.#timers[kind] = null;
            fn();
        }, ms);
    }

    #setState(state, detail = {}) {
        const previous = this.state;
        this.state = state;
        this.hooks.onState({ state, previous, attempt: this.attempt, ...detail });
    }

    async #open() {
        const gen = ++this.#generation;
        this.#setState('connecting');
        if (!(await this.#ensureToken(gen)) || gen !== this.#generation) return;
        const WS = this.o.WebSocket;
        if (typeof WS !== 'function') {
            const hint = 'no WebSocket implementation: pass options.WebSocket (on Node < 22, install the `ws` package)';
            this.#final({ code: 'no_websocket', message: hint });
            return;
        }
        let ws;
        try {
            ws = this.o.tokenIn === 'header'
                ? new WS(this.o.url, [], { headers: { Authorization: `Bearer ${this.token}` } })
                : new WS(this.#queryUrl());
        } catch (err) {
            this.#schedule(planAfterClose({ code: CLOSE.ABNORMAL }, this.#ctx(), this.o, this.o.random), { reason: err.message });
            return;
        }
        this.#ws = ws;
        this.#opened = false;
        this.#welcomed = false;
        this.welcome = null;
        this.#setTimer('connect', () => this.#abandon(gen, CLOSE.CLIENT_TIMEOUT, 'no welcome in time'), this.o.connectTimeoutMs);
        ws.onopen = () => {
            if (gen === this.#generation) this.#opened = true;
        };
        ws.onmessage = (ev) => this.#receive(gen, ev.data);
        ws.onclose = (ev) => this.#closed(gen, ev.code, ev.reason, ev.wasClean);
        ws.onerror = () => {}; // a close event always follows, with what little there is to know
    }

    #queryUrl() {
        const sep = this.o.url.includes('?') ? '&' : '?';
        return `${this.o.url}${sep}token=${encodeURIComponent(this.token)}`;
    }

    #ctx() {
        return { attempt: this.attempt, canGetToken: Boolean(this.o.getToken), tokenWasFresh: this.#tokenFresh };
    }

    /** Makes sure a usable token is at hand; false when this attempt ended (rescheduled or final). */
    async #ensureToken(gen) {
        const o = this.o;
        const exp = tokenExpiry(this.token);
        const expiring = exp !== null && exp - o.now() < TOKEN_MIN_LIFE_MS;
        this.#tokenFresh = false;
        if (o.getToken && (!this.token || expiring || this.#needFreshToken)) {
            const reason = !this.token ? 'connect' : this.#needFreshToken ? 'expired' : 'expiring';
            try {
                const token = await o.getToken({ reason });
                if (gen !== this.#generation) return false;
                if (typeof token !== 'string' || token === '') throw new Error('getToken() returned no token');
                this.token = token;
                this.#tokenFresh = true;
                this.#needFreshToken = false;
            } catch (err) {
                if (gen !== this.#generation) return false;
                this.hooks.onError(new ChatError('token_unavailable', `getToken() failed: ${err?.message ?? err}`));
                const delayMs = backoffDelay(this.attempt, o, o.random);
                this.#schedule({ kind: 'token_unavailable', final: false, delayMs, nextAttempt: this.attempt + 1 }, {});
                return false;
            }
        } else if (!this.token) {
            this.#final({ code: 'invalid_token', message: 'no token: pass options.token or options.getToken' });
            return false;
        } else if (!o.getToken && exp !== null && exp <= o.now()) {
            // The server would refuse it, and nothing can produce another one.
            this.#final({ code: 'invalid_token', message: 'token expired' });
            return false;
        }
        return true;
    }

    #receive(gen, data) {
        if (gen !== this.#generation) return;
        this.#lastFrameAt = this.o.now();
        let f;
        try {
            f = JSON.parse(data);
        } catch {
            return; // not ours to judge: the server never sends anything else
        }
        if (!f || typeof f !== 'object') return;
        if (!this.#welcomed) {
            if (f.type !== 'welcome') return;
            this.#welcomed = true;
            this.welcome = f;
            this.attempt = 0;
            this.#clearTimer('connect');
            this.#armLiveness(gen, Number(f.heartbeat) * 1000);
            this.#setState('open', { node: f.node });
            this.hooks.onWelcome(f);
            return;
        }
        if (f.id === LIVENESS_ID) return;
        this.hooks.onFrame(f);
    }

    #closed(gen, code, reason = '', wasClean = false) {
        if (gen !== this.#generation) return;
        const opened = this.#opened;
        const welcomed = this.#welcomed;
        this.#detach();
        this.hooks.onDown({ code, reason, wasClean, welcomed });
        if (this.#stopped) return;
        if (!opened) {
            this.#judgeRefusal(gen);
            return;
        }
        this.#schedule(planAfterClose({ code, reason }, this.#ctx(), this.o, this.o.random), { code, reason });
    }

    async #judgeRefusal(gen) {
        const headers = this.o.tokenIn === 'header' ? { Authorization: `Bearer ${this.token}` } : {};
        const probe = await probeRefusal({
            fetch: this.o.fetch,
            url: this.o.tokenIn === 'header' ? this.o.url : this.#queryUrl(),
            headers,
            timers: this.o.timers,
            timeoutMs: this.o.probeTimeoutMs,
        });
        if (gen !== this.#generation || this.#stopped) return;
        const plan = planAfterRefusal(probe, this.#ctx(), this.o, this.o.random);
        this.#schedule(plan, { code: CLOSE.ABNORMAL, status: probe.status, reason: probe.message });
    }

    /** Drops the current socket as if it had closed with code (it may never say so itself). */
    #abandon(gen, code, reason) {
        if (gen !== this.#generation) return;
        const ws = this.#ws;
        this.#closed(gen, code, reason, false);
        try {
            ws?.close(code, reason);
        } catch {
            /* already closing */
        }
    }

    /** Forgets the current socket (its handlers become no-ops); returns it. */
    #detach() {
        const ws = this.#ws;
        this.#ws = null;
        this.#opened = false;
        this.#welcomed = false;
        this.#pingSentAt = null;
        this.#clearTimer('connect');
        this.#clearTimer('liveness');
        if (ws) ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
        return ws;
    }

    #schedule(plan, info) {
        if (plan.final) {
            this.#final(plan);
            return;
        }
        this.attempt = plan.nextAttempt;
        if (plan.freshToken) this.#needFreshToken = true;
        const gen = this.#generation;
        this.#setState('reconnecting', { ...info, kind: plan.kind, delayMs: plan.delayMs, retryAt: this.o.now() + plan.delayMs });
        this.#setTimer('retry', () => gen === this.#generation && this.#open(), plan.delayMs);
    }

    /** Stops for good because of plan ({code, message, status?}): the app learns why. */
    #final(plan) {
        this.#halt(CLOSE.NORMAL, 'client stopped');
        const err = new ChatError(plan.code, plan.message, { status: plan.status });
        this.hooks.onFinal(err);
        this.#setState('closed', { code: plan.code, reason: plan.message, status: plan.status, final: true });
    }

    #armLiveness(gen, periodMs) {
        if (!this.o.liveness || !(periodMs > 0)) return;
        const check = () => {
            if (gen !== this.#generation) return;
            const now = this.o.now();
            if (this.#pingSentAt !== null) {
                if (this.#lastFrameAt < this.#pingSentAt) {
                    this.#abandon(gen, CLOSE.CLIENT_TIMEOUT, 'the connection went silent');
                    return;
                }
                this.#pingSentAt = null;
            }
            if (now - this.#lastFrameAt >= 2 * periodMs && this.send({ type: 'ping', id: LIVENESS_ID })) this.#pingSentAt = now;
            this.#setTimer('liveness', check, periodMs);
        };
        this.#setTimer('liveness', check, periodMs);
    }
}
