/*
 * rooms — the client's knowledge of each room it is in (or will re-join): where it is in the
 * room's offset sequence, and the read marker. Pure: frames in, decisions out; no I/O.
 *
 * Invariants, per room:
 *  - `offset` is the highest offset up to which the app has been handed every message (or
 *    knows it: its own publishes are acked, never echoed). It is what `since` sends on a
 *    re-join, so the server replays exactly what is missing.
 *  - Our own publishes can be acked out of order with what we receive (ack for 8 before the
 *    message 7 arrives): acked offsets wait in `acked` until contiguous.
 *  - During a replay (join with since, until `joined`), a message at or below `offset`, or one
 *    of our own acked ones, is a duplicate and is dropped. Outside a replay a lower offset is
 *    legitimate on an old server that restarts offsets without `reset`, so it is delivered.
 *  - `epoch` changes only through `joined` or `reset`; with it, the since state goes.
 */

/** Errors after which a room must not be re-joined: the server will never accept it. */
export const PERMANENT_JOIN_ERRORS = new Set(['forbidden', 'invalid_room', 'limit_exceeded', 'bad_request']);

export class RoomTracker {
    #rooms = new Map(); // room → {offset, epoch, acked: Set, replaying, read}

    /** Remembers room (idempotent) and returns its entry. */
    want(room) {
        let r = this.#rooms.get(room);
        if (!r) {
            r = { offset: undefined, epoch: undefined, acked: new Set(), replaying: false, read: undefined };
            this.#rooms.set(room, r);
        }
        return r;
    }

    has(room) {
        return this.#rooms.has(room);
    }

    forget(room) {
        this.#rooms.delete(room);
    }

    names() {
        return [...this.#rooms.keys()];
    }

    /** The join frame for room: with since when a position in the room's epoch is known. */
    joinFrame(room) {
        const r = this.want(room);
        const frame = { type: 'join', room };
        if (r.epoch !== undefined && r.offset !== undefined) {
            frame.since = { offset: r.offset, epoch: r.epoch };
            r.replaying = true;
        }
        return frame;
    }

    /** Whether a `message` frame goes to the app; advances the room's offset. */
    accept(f) {
        const r = this.#rooms.get(f.room);
        if (!r || typeof f.offset !== 'number') return true;
        if (r.acked.delete(f.offset)) {
            this.#advance(r);
            return false; // our own message, replayed: the app has it from the ack
        }
        if (r.replaying && r.offset !== undefined && f.offset <= r.offset) return false;
        r.offset = f.offset;
        this.#advance(r);
        return true;
    }

    /** Our publish to room was acked with offset. */
    acked(room, offset) {
        const r = this.#rooms.get(room);
        if (!r || typeof offset !== 'number' || r.offset === undefined || offset <= r.offset) return;
        r.acked.add(offset);
        this.#advance(r);
    }

    #advance(r) {
        while (r.acked.has(r.offset + 1)) r.acked.delete(++r.offset);
        for (const o of r.acked) if (o <= r.offset) r.acked.delete(o);
    }

    /**
     * The server answered `request` (a join) with `reply` (joined). Returns the gap the app
     * should know about — {room, epochChanged, from, to} when a re-join could not recover —
     * or null.
     */
    joined(request, reply) {
        const r = this.want(reply.room);
        const epochChanged = r.epoch !== undefined && reply.epoch !== r.epoch;
        let gap = null;
        if (request.since && reply.recovered === false) {
            gap = { room: reply.room, epochChanged, from: request.since.offset, to: reply.offset };
        }
        // Replayed messages (if any) already advanced offset; otherwise start at the join.
        if (r.offset === undefined || reply.recovered !== true || epochChanged) {
            r.offset = reply.offset;
            r.acked.clear();
        }
        r.epoch = reply.epoch;
        r.replaying = false;
        if (typeof reply.read === 'number') r.read = epochChanged ? reply.read : Math.max(r.read ?? 0, reply.read);
        return gap;
    }

    /** A `reset`: the room's history was lost; its new epoch starts at f.offset. */
    reset(f) {
        const r = this.#rooms.get(f.room);
        if (!r) return;
        r.epoch = f.epoch;
        r.offset = f.offset;
        r.acked.clear();
        r.replaying = false;
        r.read = undefined;
    }

    /** Our read marker for room is now at least offset (read_ok, our own `read` event, unread). */
    readMarker(room, offset) {
        const r = this.#rooms.get(room);
        if (r && typeof offset === 'number') r.read = Math.max(r.read ?? 0, offset);
    }

    /** {offset, epoch, read, unread} of room, or null when not tracked. */
    info(room) {
        const r = this.#rooms.get(room);
        if (!r) return null;
        const unread = r.read === undefined || r.offset === undefined ? undefined : Math.max(0, r.offset - r.read);
        return { offset: r.offset, epoch: r.epoch, read: r.read, unread };
    }
}
