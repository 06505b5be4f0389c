/*
 * typing — when a `typing` frame is worth sending.
 *
 * The server relays at most one `state:true` per interval and drops the rest (PROTOCOL.md §2),
 * and every typing frame draws from a request budget: so the client sends `true` at most once
 * per interval per room while the user keeps typing, and `false` only when it ends a `true`.
 * Sending a message ends the typing state (the server and the other members treat the message
 * as the end of it), and resets the throttle: typing again right after sending is announced
 * at once instead of being swallowed by the previous announcement's window.
 */
export class TypingThrottle {
    #rooms = new Map(); // room → time the last `true` was sent

    constructor({ intervalMs, now }) {
        this.intervalMs = intervalMs;
        this.now = now;
    }

    /** Whether `typing:true` should be sent for room now (and records it if so). */
    start(room) {
        const last = this.#rooms.get(room);
        const t = this.now();
        if (last !== undefined && t - last < this.intervalMs) return false;
        this.#rooms.set(room, t);
        return true;
    }

    /** Whether `typing:false` should be sent for room (only to end an announced `true`). */
    stop(room) {
        return this.#rooms.delete(room);
    }

    /** A message was sent to room: typing ends there without a frame of its own. */
    messageSent(room) {
        this.#rooms.delete(room);
    }

    /** The connection ended: the server forgets typing state with it. */
    clear() {
        this.#rooms.clear();
    }
}
