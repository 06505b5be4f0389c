/*
 * read-markers — moves the user's read marker per room (PROTOCOL.md §8) without flooding.
 *
 * An app calls read(room, offset) whenever the user sees a newer message, possibly many times
 * a second; `read` draws from a budget of 10/s shared with typing and history. So per room at
 * most one `read` is in flight; calls meanwhile only raise the offset the next one will carry,
 * and calls that would not move the marker forward send nothing. Every call's promise settles
 * with the reply that covered its offset.
 */
export class ReadMarkers {
    #rooms = new Map(); // room → {known, inFlight: offset|0, wanted, waiters: [{resolve, reject}]}

    /** send(room, offset) → Promise<read_ok frame>; known(room) → the marker as last reported. */
    constructor({ send, known }) {
        this.send = send;
        this.known = known;
    }

    mark(room, offset) {
        let s = this.#rooms.get(room);
        if (!s) this.#rooms.set(room, (s = { inFlight: 0, wanted: 0, waiters: [] }));
        const known = this.known(room) ?? 0;
        if (offset <= Math.max(known, s.inFlight, s.wanted)) {
            if (!s.inFlight) return Promise.resolve({ type: 'read_ok', room, offset: Math.max(known, s.wanted) });
            return new Promise((resolve, reject) => s.waiters.push({ resolve, reject }));
        }
        s.wanted = offset;
        const p = new Promise((resolve, reject) => s.waiters.push({ resolve, reject }));
        if (!s.inFlight) this.#flush(room, s);
        return p;
    }

    #flush(room, s) {
        const offset = s.wanted;
        const waiters = s.waiters.splice(0);
        s.inFlight = offset;
        s.wanted = 0;
        this.send(room, offset).then(
            (reply) => {
                s.inFlight = 0;
                for (const w of waiters) w.resolve(reply);
                this.#next(room, s);
            },
            (err) => {
                s.inFlight = 0;
                for (const w of waiters) w.reject(err);
                this.#next(room, s);
            },
        );
    }

    #next(room, s) {
        if (s.wanted > (this.known(room) ?? 0)) this.#flush(room, s);
        else if (s.waiters.length) {
            const reply = { type: 'read_ok', room, offset: this.known(room) ?? 0 };
            for (const w of s.waiters.splice(0)) w.resolve(reply);
            s.wanted = 0;
        } else if (!s.inFlight) this.#rooms.delete(room);
    }

    /** Forget room (left). Waiting callers still get their answer from the request in flight. */
    forget(room) {
        const s = this.#rooms.get(room);
        if (s && !s.inFlight) this.#rooms.delete(room);
    }
}
