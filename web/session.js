/*
 * session — one signed-in person: the ChatClient (web/chat-client.js, the @chat-gateway/client
 * package's build) and the views it feeds. The client does the protocol (reconnects, `since`
 * recovery, token refresh, read markers); this file decides what the page shows:
 *  - history on join and after a reload (the newest HISTORY_PAGE messages up to the join's
 *    offset), earlier pages when scrolled to the top, and the gap the server could not replay
 *    after a reconnect; every message is keyed by offset, so nothing shows twice;
 *  - unread badges (from `joined.unread` when the server has read markers, else counted
 *    live), and our read marker moved whenever the newest message is in view;
 *  - "seen by" from other members' `read` events; direct-message threads; presence lines.
 */
import { $, atEnd, el } from './dom.js';
import { Conversations, dmKey, isDm } from './conversations.js';
import { ChatClient } from './chat-client.js';
import { fetchDevToken } from './signin.js';
import { showNode, showState } from './header.js';
import { Presence } from './presence.js';
import { Timeline } from './timeline.js';
import { TypingSender, TypingView } from './typing.js';

const HISTORY_PAGE = 50;
const GAP_FILL_MAX = 200; // a larger gap starts the room over from its newest page

export function wsUrl() {
    const override = new URLSearchParams(location.search).get('ws');
    if (override) return override;
    return `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/ws`;
}

export class ChatSession {
    timelines = new Map(); // conversation key → Timeline
    lastNode = null;
    readSupported = true;

    /** session: {token, user, name, viaDevToken}; onRefused(reason): the server refused the token. */
    constructor(session, { onRefused }) {
        this.me = session;
        this.onRefused = onRefused;
        this.client = new ChatClient({
            url: wsUrl(),
            token: session.token,
            // A dev token can be minted again (refresh, reconnect); a pasted one cannot.
            getToken: session.viaDevToken ? () => fetchDevToken(session.user, session.name) : undefined,
        });
        this.conversations = new Conversations({ onSelect: (key) => this.#show(key), onClose: (key) => this.close(key) });
        this.presence = new Presence({
            me: session.user,
            myName: session.name,
            line: (room, text) => this.timelines.get(room)?.addSystem(text),
            changed: (room) => room === this.conversations.current && this.presence.render(room),
            onDirect: (user) => this.openDirect(user),
        });
        this.typingOut = new TypingSender(this.client);
        this.typingIn = new TypingView((u) => this.presence.nameOf(u), () => this.conversations.current);
    }

    start(saved) {
        const c = this.client;
        c.on('state', (st) => this.#onState(st));
        c.on('welcome', (w) => this.#onWelcome(w));
        c.on('joined', (j) => this.#onJoined(j));
        c.on('message', (m) => this.#onMessage(m));
        c.on('direct', (d) => this.#onDirect(d));
        c.on('user_joined', (f) => this.presence.joined(f));
        c.on('user_left', (f) => this.presence.left(f));
        c.on('typing', (f) => f.user !== this.me.user && this.typingIn.event(f));
        c.on('read', (f) => this.#onRead(f));
        c.on('gap', (g) => this.#onGap(g));
        c.on('reset', (f) => this.#onReset(f));
        c.on('error', (err) => console.warn('chat:', err.code, err.message));
        c.connect();
        for (const room of saved.rooms) this.join(room, { select: false });
        this.conversations.select(saved.rooms.includes(saved.current) ? saved.current : (saved.rooms[0] ?? null));
    }

    stop() {
        this.client.close(1000, 'signed out');
        this.presence.clear();
        this.typingIn.clear();
        this.conversations.clear();
        this.timelines.clear();
    }

    #timeline(key) {
        let t = this.timelines.get(key);
        if (!t) {
            t = new Timeline(key, { me: this.me.user, nameOf: (u, n) => this.presence.nameOf(u, n) });
            this.timelines.set(key, t);
        }
        return t;
    }

    /* ---------- what the person does ---------- */

    join(room, { select = true } = {}) {
        $('room-problem').textContent = '';
        if (this.conversations.has(room)) {
            this.conversations.select(room);
            return;
        }
        this.#timeline(room);
        this.conversations.add(room, 'room', room);
        if (select) this.conversations.select(room);
        this.client.join(room).catch((err) => {
            if (err.code === 'closed') return;
            $('room-problem').textContent = `#${room}: ${err.message}`;
            this.#drop(room);
        });
    }

    close(key) {
        if (!isDm(key)) this.client.leave(key).catch((err) => console.warn('leave', key, err.message));
        this.#drop(key);
    }

    #drop(key) {
        this.presence.forgetRoom(key);
        this.timelines.delete(key);
        this.conversations.remove(key);
        this.conversations.save();
    }

    openDirect(user) {
        const key = dmKey(user);
        this.#timeline(key);
        this.conversations.add(key, 'dm', this.presence.nameOf(user));
        this.conversations.select(key);
    }

    send(text) {
        const key = this.conversations.current;
        if (!key || !text.trim()) return;
        this.typingOut.sent();
        const t = this.#timeline(key);
        const m = t.addPending(text);
        this.#scrollToEnd();
        const sent = isDm(key) ? this.client.direct(key.slice(1), text) : this.client.publish(key, text);
        sent.then(
            (ack) => {
                t.acked(m, ack);
                if (!isDm(key)) this.markRead(key);
            },
            (err) =>
                t.failed(m, err, () => {
                    $('text').value = text;
                    $('text').focus();
                }),
        );
    }

    input(text) {
        const key = this.conversations.current;
        this.typingOut.input(key && !isDm(key) ? key : null, text);
    }

    /** The message list was scrolled: page back at the top, mark read at the end. */
    scrolled() {
        const key = this.conversations.current;
        if (!key || isDm(key)) return;
        if ($('messages').scrollTop < 80) this.#loadOlder(key);
        this.markRead(key);
    }

    /** Moves our read marker to the newest message of room if the person can see it. */
    markRead(room) {
        const t = this.timelines.get(room);
        if (!this.readSupported || !t || t.newest === null || room !== this.conversations.current) return;
        if (document.visibilityState !== 'visible' || !atEnd($('messages'))) return;
        this.client.read(room, t.newest).catch((err) => {
            if (err.code === 'unknown_type') this.readSupported = false; // a server without §8
        });
    }

    /* ---------- what the server tells ---------- */

    #onState(st) {
        showState(st);
        if (st.state === 'reconnecting' && st.code === 1001 && this.lastNode) {
            for (const key of this.conversations.rooms()) this.timelines.get(key)?.addSystem(`${this.lastNode} is going away; moving to another node…`);
        }
        if (st.state === 'closed' && st.final) this.onRefused(st.reason);
    }

    #onWelcome(w) {
        showNode(w.node);
        if (this.lastNode !== null) {
            const text = this.lastNode === w.node ? `Reconnected to ${w.node}.` : `Reconnected: now on ${w.node} (was ${this.lastNode}).`;
            for (const key of this.conversations.rooms()) this.timelines.get(key)?.addSystem(text);
        }
        this.lastNode = w.node;
    }

    #onJoined(j) {
        const t = this.timelines.get(j.room);
        if (!t) return;
        // The line follows the history it loads, which is older than the join.
        if (!j.rejoin) this.#loadRecent(j.room, j.offset).then(() => t.addSystem(`You joined #${j.room}.`));
        else if (t.newest === null) this.#loadRecent(j.room, j.offset);
        this.client.presence(j.room).then(
            (users) => this.presence.setOnline(j.room, users),
            (err) => err.frame && this.presence.unsupported(j.room), // the server said no; not a mere disconnect
        );
        if (typeof j.unread === 'number' && j.room !== this.conversations.current) this.conversations.setUnread(j.room, j.unread);
    }

    async #loadRecent(room, offset) {
        const t = this.timelines.get(room);
        try {
            const page = await this.client.history(room, { limit: HISTORY_PAGE, before: offset + 1 });
            if (this.timelines.get(room) !== t) return;
            const wasAtEnd = atEnd($('messages'));
            t.addHistory(page.messages);
            this.#pagedTo(t, page, HISTORY_PAGE);
            if (room === this.conversations.current && wasAtEnd) this.#scrollToEnd();
            this.markRead(room);
        } catch (err) {
            t.addSystem(`Could not load earlier messages: ${err.message}`, 'warn');
        }
    }

    async #loadOlder(room) {
        const t = this.timelines.get(room);
        if (!t || t.noOlder || t.loadingOlder || t.oldest === null) return;
        t.loadingOlder = true;
        t.setTop('Loading earlier messages…');
        try {
            const page = await this.client.history(room, { limit: HISTORY_PAGE, before: t.oldest });
            const box = $('messages');
            const before = box.scrollHeight;
            t.addHistory(page.messages);
            if (room === this.conversations.current) box.scrollTop += box.scrollHeight - before; // keep the view still
            this.#pagedTo(t, page, HISTORY_PAGE);
        } catch (err) {
            t.setTop(`Could not load earlier messages: ${err.message}`);
        } finally {
            t.loadingOlder = false;
        }
    }

    /** Whether anything older exists after a page came back. */
    #pagedTo(t, page, limit) {
        const first = page.messages[0]?.offset;
        t.noOlder = first === undefined || first <= 1 || (!page.more && page.messages.length < limit);
        t.setTop(t.noOlder ? `This is the beginning of #${t.key}.` : '');
    }

    #onMessage(f) {
        const t = this.timelines.get(f.room);
        if (!t) return;
        this.presence.sawSender(f.room, f.from?.user, f.from?.name);
        this.typingIn.stopped(f.room, f.from?.user);
        const wasAtEnd = atEnd($('messages'));
        if (!t.addMessage(f)) return;
        if (f.room !== this.conversations.current) {
            this.conversations.bumpUnread(f.room);
            return;
        }
        if (wasAtEnd) this.#scrollToEnd();
        this.markRead(f.room);
    }

    #onDirect(f) {
        const peer = f.from?.user === this.me.user ? f.to : f.from?.user;
        if (!peer) return;
        const key = dmKey(peer);
        this.presence.rememberName(f.from?.user, f.from?.name);
        this.#timeline(key).addMessage(f);
        this.conversations.add(key, 'dm', this.presence.nameOf(peer));
        if (key !== this.conversations.current) this.conversations.bumpUnread(key);
        else this.#scrollToEnd();
    }

    #onRead(f) {
        if (f.user !== this.me.user) {
            this.timelines.get(f.room)?.markSeen(f.user, f.offset);
            return;
        }
        const unread = this.client.roomInfo(f.room)?.unread; // read in another tab of ours
        if (typeof unread === 'number') this.conversations.setUnread(f.room, f.room === this.conversations.current ? 0 : unread);
    }

    async #onGap({ room, epochChanged, from, to }) {
        const t = this.timelines.get(room);
        if (!t) return;
        if (epochChanged || to - from > GAP_FILL_MAX) {
            t.clear();
            t.addSystem(epochChanged ? 'The room history was reset on the server.' : 'Many messages were sent while you were away; showing the latest.', 'warn');
            this.#loadRecent(room, to);
            return;
        }
        try {
            const page = await this.client.history(room, { limit: to - from, before: to + 1 });
            t.addHistory(page.messages.filter((m) => m.offset > from));
        } catch (err) {
            t.addSystem(`Some messages sent while you were away could not be loaded: ${err.message}`, 'warn');
        }
    }

    #onReset(f) {
        const t = this.timelines.get(f.room);
        if (!t) return;
        t.clear();
        t.addSystem('The room history was lost on the server; it starts over from here.', 'warn');
    }

    /* ---------- the shown conversation ---------- */

    #show(key) {
        const box = $('messages');
        box.replaceChildren(key ? this.#timeline(key).list : el('div', 'empty', 'Join a room to start chatting.'));
        const dm = key && isDm(key) ? key.slice(1) : null;
        const title = !key ? 'No room yet' : dm ? `@${this.presence.nameOf(dm)}` : `#${key}`;
        $('room-title').replaceChildren(document.createTextNode(title), el('span', 'sub', dm ? 'direct messages' : ''));
        $('text').disabled = $('send').disabled = !key;
        $('text').placeholder = dm ? `Message ${this.presence.nameOf(dm)} directly…` : 'Write a message…';
        if (dm) {
            this.presence.render(null, { user: dm, online: null });
            this.client.online(dm).then((online) => this.conversations.current === key && this.presence.render(null, { user: dm, online }), () => {});
        } else {
            this.presence.render(key);
        }
        this.typingIn.render();
        this.#scrollToEnd();
        if (key && !dm) this.markRead(key);
        if (key) $('text').focus();
    }

    #scrollToEnd() {
        const box = $('messages');
        box.scrollTop = box.scrollHeight;
    }
}
