/*
 * token-refresh — keeps an open connection's token valid (PROTOCOL.md §1, §7).
 *
 * The server closes a connection with 1008 "token expired" when its token's `exp` passes. So
 * while a connection is open, before `exp` (token.js's refreshDelay), this asks the app for a
 * fresh token (getToken) and sends it in a `refresh` frame; `refreshed` extends the
 * connection, and the next refresh is armed from the new `exp`.
 *
 * Failure handling:
 *  - getToken() fails, or the server answers invalid_token: retried at half the time left, as
 *    long as more than a second is left; after that the server's 1008 close and the
 *    reconnect (with a fresh token, or a final refusal) take over;
 *  - the server does not know `refresh` (unknown_type: a gateway older than v1.1): no more
 *    attempts on this connection; the new token is still kept for the next handshake;
 *  - the connection drops: disarm() cancels everything; the next `welcome` arms again.
 */
import { refreshDelay, tokenExpiry } from './token.js';

export class TokenRefresher {
    #timer = null;
    #generation = 0; // bumps on disarm: a refresh in flight from before must not re-arm

    /**
     * o: timers, now, refreshBeforeMs, fetchToken() → Promise<string> (the app's getToken),
     * send(token) → Promise<refreshed frame>, adopt(token) (use it for future handshakes),
     * onRefreshed(frame), onError(err).
     */
    constructor(o) {
        this.o = o;
    }

    /** Arms the refresh of token (no-op without an exp). */
    arm(token) {
        this.disarm();
        const exp = tokenExpiry(token);
        if (exp === null) return;
        this.#schedule(refreshDelay(exp, this.o.now(), this.o.refreshBeforeMs), exp);
    }

    disarm() {
        this.#generation++;
        if (this.#timer !== null) this.o.timers.clearTimeout(this.#timer);
        this.#timer = null;
    }

    #schedule(delayMs, exp) {
        const gen = this.#generation;
        this.#timer = this.o.timers.setTimeout(() => {
            this.#timer = null;
            if (gen === this.#generation) this.refresh(exp).catch(() => {});
        }, delayMs);
    }

    /**
     * Refreshes now. Resolves with the `refreshed` frame; rejects with the failure (also
     * reported through onError). exp: the current token's expiry, for the retry timing.
     */
    async refresh(exp = null) {
        const gen = this.#generation;
        let token;
        try {
            token = await this.o.fetchToken();
            if (gen !== this.#generation) throw Object.assign(new Error('connection changed'), { code: 'disconnected' });
            this.o.adopt(token);
            const reply = await this.o.send(token);
            if (gen === this.#generation) {
                this.o.onRefreshed(reply);
                this.arm(token);
            }
            return reply;
        } catch (err) {
            // unknown_type: a server without `refresh`; it is not an error worth reporting.
            if (gen === this.#generation && !['disconnected', 'closed', 'unknown_type'].includes(err.code)) {
                this.o.onError(err);
                const left = exp === null ? 0 : exp - this.o.now();
                if (left > 2000) this.#schedule(left / 2, exp);
            }
            throw err;
        }
    }
}
