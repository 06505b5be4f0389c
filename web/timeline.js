/*
 * timeline — the messages of one conversation, as DOM, ordered by offset.
 *
 * A room's messages reach the page three ways: live (`message` events), replayed after a
 * reconnect (the client's `since` recovery, also as `message` events), and from `history` (on
 * join, after a reload, when paging back on scroll, to fill a gap the server could not
 * replay). They can overlap and arrive out of order, so every message is keyed by its offset:
 * a second copy of an offset is dropped, and each is inserted where its offset belongs. Our
 * own message is shown at once as "sending…" and gets its offset from the ack.
 *
 * "Seen by" (read markers, PROTOCOL.md §8): the last `read` offset of each other member is
 * kept; one line under the newest message names those whose marker reached it.
 */
import { el, timeOf } from './dom.js';

const MAX_MESSAGES = 500; // per conversation in the DOM; older ones are dropped (and re-pageable)

export class Timeline {
    byOffset = new Map(); // offset → element
    oldest = null; // lowest offset shown
    newest = null; // highest offset shown
    noOlder = false; // history has nothing before `oldest`
    loadingOlder = false;
    seen = new Map(); // user → read offset (others only)

    /** key: room name or "@user"; who: {me, nameOf(user, name)}. */
    constructor(key, who) {
        this.key = key;
        this.who = who;
        this.list = el('div', 'room-messages');
        this.list.dataset.conversation = key;
        this.top = el('div', 'sys top', '');
        this.seenLine = el('div', 'seen');
        this.seenLine.hidden = true;
        this.empty = el('div', 'empty', key.startsWith('@') ? `No direct messages with ${key.slice(1)} yet.` : `No messages in #${key} yet. Say hello!`);
        this.list.append(this.top, this.empty, this.seenLine);
    }

    #element({ user, name, text, ts, offset, mine }) {
        const m = el('div', mine ? 'msg mine' : 'msg');
        m.dataset.from = user ?? '';
        if (offset !== undefined) m.dataset.offset = String(offset);
        m.append(el('span', 'who', mine ? 'you' : this.who.nameOf(user, name)), el('span', 'meta', ts ? timeOf(ts) : 'sending…'));
        m.append(el('div', 'msg-text', text));
        return m;
    }

    /** The element after which nothing with a higher offset comes: where `offset` goes. */
    #place(m, offset) {
        this.empty.remove();
        if (offset === undefined || this.newest === null || offset > this.newest) {
            this.list.insertBefore(m, this.seenLine);
        } else {
            const after = [...this.byOffset.keys()].filter((o) => o > offset).sort((a, b) => a - b)[0];
            this.list.insertBefore(m, after === undefined ? this.seenLine : this.byOffset.get(after));
        }
        if (offset !== undefined) {
            this.byOffset.set(offset, m);
            this.oldest = this.oldest === null ? offset : Math.min(this.oldest, offset);
            this.newest = this.newest === null ? offset : Math.max(this.newest, offset);
        }
    }

    /** Adds a message frame (room message or direct); false when its offset is already shown. */
    addMessage(f) {
        if (typeof f.offset === 'number' && this.byOffset.has(f.offset)) return false;
        const user = f.from?.user;
        const text = f.text ?? JSON.stringify(f.data);
        this.#place(this.#element({ user, name: f.from?.name, text, ts: f.ts, offset: f.offset, mine: user === this.who.me }), f.offset);
        this.#trim();
        this.renderSeen();
        return true;
    }

    /** Our message, shown before the server has it. Returns a handle for ack/fail. */
    addPending(text) {
        const m = this.#element({ user: this.who.me, text, mine: true });
        m.classList.add('pending');
        this.empty.remove();
        this.list.insertBefore(m, this.seenLine);
        return m;
    }

    acked(m, ack) {
        m.classList.remove('pending');
        m.querySelector('.meta').textContent = timeOf(ack.ts);
        if (typeof ack.offset !== 'number') return;
        if (this.byOffset.has(ack.offset)) {
            m.remove(); // history or a replay got there first
            return;
        }
        m.dataset.offset = String(ack.offset);
        m.remove();
        this.#place(m, ack.offset);
        this.renderSeen();
    }

    failed(m, err, retry) {
        m.classList.remove('pending');
        m.classList.add('failed');
        m.querySelector('.meta').textContent = `not sent: ${err.message} — click to retry`;
        m.addEventListener('click', () => {
            m.remove();
            retry();
        }, { once: true });
    }

    addSystem(text, kind = '') {
        this.empty.remove();
        this.list.insertBefore(el('div', `sys ${kind}`, `${timeOf()} · ${text}`), this.seenLine);
    }

    /** Adds a page of history (oldest first); returns how many were new. */
    addHistory(messages) {
        let added = 0;
        for (const f of messages) if (this.addMessage(f)) added++;
        return added;
    }

    /** Drops everything shown (the room's history was reset on the server). */
    clear() {
        for (const m of this.byOffset.values()) m.remove();
        this.byOffset.clear();
        this.oldest = this.newest = null;
        this.noOlder = false;
        this.seen.clear();
        this.renderSeen();
    }

    setTop(text) {
        this.top.textContent = text;
        this.top.hidden = !text;
    }

    #trim() {
        while (this.byOffset.size > MAX_MESSAGES) {
            this.byOffset.get(this.oldest).remove();
            this.byOffset.delete(this.oldest);
            this.oldest = Math.min(...this.byOffset.keys());
            this.noOlder = false;
        }
    }

    /** Another member's read marker moved. */
    markSeen(user, offset) {
        this.seen.set(user, Math.max(this.seen.get(user) ?? 0, offset));
        this.renderSeen();
    }

    renderSeen() {
        const names = [...this.seen].filter(([, o]) => this.newest !== null && o >= this.newest).map(([u]) => this.who.nameOf(u));
        this.seenLine.textContent = names.length ? `Seen by ${names.join(', ')}` : '';
        this.seenLine.hidden = names.length === 0;
        if (this.seenLine.nextSibling) this.list.append(this.seenLine);
    }
}
