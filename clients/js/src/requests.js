/*
 * requests — pairs each request with its reply, and holds the requests made while the client
 * cannot send (the offline queue).
 *
 * Invariants:
 *  - every request settles exactly once: with its reply, with the server's error, or with a
 *    client error (timeout, disconnected, closed, queue_full); every timer it armed is cleared
 *    when it settles;
 *  - ids are unique per client (a counter), so a late reply to a timed-out request matches
 *    nothing and is dropped by the caller;
 *  - the queue is FIFO and bounded (queueLimit): over the bound a request fails at once with
 *    queue_full instead of growing memory without limit while offline; a queued request also
 *    fails after queueTimeoutMs. A request in flight when the connection drops fails with
 *    `disconnected` and is never re-sent: the server may have applied it (a publish would be
 *    stored twice).
 *  - `settle` calls the caller's hook synchronously, before resolving, so the client's room
 *    state (offsets, epochs) is updated before the next frame is handled.
 */
import { ChatError } from './errors.js';

export class RequestTable {
    #pending = new Map(); // id → {frame, meta, resolve, reject, timer}
    #queue = []; // [{frame, meta, resolve, reject, timer, timeoutMs}]
    #seq = 0;

    /** o: timers, queueLimit, queueTimeoutMs, requestTimeoutMs, transmit(frame) → bool. */
    constructor(o) {
        this.o = o;
    }

    get pendingCount() {
        return this.#pending.size;
    }

    get queuedCount() {
        return this.#queue.length;
    }

    /**
     * Sends frame now (canSend true) or queues it; meta travels to the reply hook. Resolves
     * with the reply frame; rejects with ChatError.
     */
    request(frame, { canSend, timeoutMs = this.o.requestTimeoutMs, meta } = {}) {
        return new Promise((resolve, reject) => {
            const entry = { frame, meta, resolve, reject, timeoutMs };
            if (canSend) {
                this.#dispatch(entry);
                return;
            }
            if (this.#queue.length >= this.o.queueLimit) {
                reject(new ChatError('queue_full', `${this.o.queueLimit} requests already wait for the connection`));
                return;
            }
            entry.timer = this.o.timers.setTimeout(() => {
                this.#queue.splice(this.#queue.indexOf(entry), 1);
                reject(new ChatError('timeout', `not connected within ${this.o.queueTimeoutMs} ms`, { request: entry.frame }));
            }, this.o.queueTimeoutMs);
            this.#queue.push(entry);
        });
    }

    #dispatch(entry) {
        const id = `c${++this.#seq}`;
        const frame = { ...entry.frame, id };
        entry.frame = frame;
        entry.timer = this.o.timers.setTimeout(() => {
            this.#pending.delete(id);
            entry.reject(new ChatError('timeout', `no reply to ${frame.type} within ${entry.timeoutMs} ms`, { request: frame }));
        }, entry.timeoutMs);
        this.#pending.set(id, entry);
        if (!this.o.transmit(frame)) {
            this.#pending.delete(id);
            this.o.timers.clearTimeout(entry.timer);
            entry.reject(new ChatError('disconnected', 'the connection is not open', { request: frame }));
        }
    }

    /** Sends every queued request, oldest first. */
    flush() {
        for (const entry of this.#queue.splice(0)) {
            this.o.timers.clearTimeout(entry.timer);
            this.#dispatch(entry);
        }
    }

    /**
     * Settles the request `reply` answers, if any: hook(requestFrame, reply, meta) runs first.
     * Returns false when no pending request has that id.
     */
    settle(reply, hook) {
        const entry = this.#pending.get(reply.id);
        if (!entry) return false;
        this.#pending.delete(reply.id);
        this.o.timers.clearTimeout(entry.timer);
        if (reply.type === 'error') {
            entry.reject(new ChatError(reply.code, reply.message, { frame: reply, request: entry.frame, room: entry.frame.room }));
            return true;
        }
        try {
            hook?.(entry.frame, reply, entry.meta);
        } finally {
            entry.resolve(reply);
        }
        return true;
    }

    /** Fails every request in flight (the connection dropped); queued ones keep waiting. */
    failPending(code, message) {
        for (const [id, entry] of this.#pending) {
            this.#pending.delete(id);
            this.o.timers.clearTimeout(entry.timer);
            entry.reject(new ChatError(code, message, { request: entry.frame }));
        }
    }

    /** Fails every request, in flight and queued. */
    failAll(code, message) {
        this.failPending(code, message);
        for (const entry of this.#queue.splice(0)) {
            this.o.timers.clearTimeout(entry.timer);
            entry.reject(new ChatError(code, message, { request: entry.frame }));
        }
    }
}
