/*
 * presence — who is online in each room, and the "joined"/"left" lines, by display name.
 *
 * Names: `user_left` carries no name, so every name seen (user_joined, presence answers,
 * messages, directs) is remembered per user id, and lines always use it.
 * Debounce: a reload or a move to another node makes the server announce a leave and then a
 * join of the same user a moment later. A leave is therefore held LEAVE_GRACE_MS; a join of
 * the same user in that time cancels both, and nobody sees a left/joined pair. The online list
 * keeps the user meanwhile.
 * The list comes from `presence` after each join; only when the server answers that it does
 * not know `presence` is the list built from events instead (and the page says so) — never
 * merely because the connection is down.
 */
import { $, el } from './dom.js';

const LEAVE_GRACE_MS = 3000;

export class Presence {
    names = new Map(); // user → display name
    rooms = new Map(); // room → {online: Map user → true, answered: bool|null}
    #leaving = new Map(); // `${room}\n${user}` → timer

    /** hooks: me, myName, line(room, text), changed(room), onDirect(user). */
    constructor(hooks) {
        this.hooks = hooks;
        this.rememberName(hooks.me, hooks.myName);
    }

    rememberName(user, name) {
        if (user && name) this.names.set(user, name);
    }

    nameOf(user, name) {
        if (name) this.rememberName(user, name);
        return this.names.get(user) ?? user ?? '?';
    }

    room(room) {
        let r = this.rooms.get(room);
        if (!r) this.rooms.set(room, (r = { online: new Map([[this.hooks.me, true]]), answered: null }));
        return r;
    }

    /** The answer to `presence` after a join. */
    setOnline(room, users) {
        const r = this.room(room);
        r.online = new Map([[this.hooks.me, true]]);
        for (const u of users) {
            this.rememberName(u.user, u.name);
            r.online.set(u.user, true);
        }
        r.answered = true;
        this.hooks.changed(room);
    }

    /** The server answered `presence` with an error: build the list from events. */
    unsupported(room) {
        this.room(room).answered = false;
        this.hooks.changed(room);
    }

    /** Someone sent a message: they are here (matters only without presence answers). */
    sawSender(room, user, name) {
        this.rememberName(user, name);
        const r = this.room(room);
        if (user && !user.startsWith('@') && !r.online.has(user)) {
            r.online.set(user, true);
            this.hooks.changed(room);
        }
    }

    joined(f) {
        this.rememberName(f.user, f.name);
        const key = `${f.room}\n${f.user}`;
        const r = this.room(f.room);
        if (this.#leaving.has(key)) {
            clearTimeout(this.#leaving.get(key)); // back within the grace period: no lines at all
            this.#leaving.delete(key);
        } else {
            this.hooks.line(f.room, `${this.nameOf(f.user)} joined.`);
        }
        r.online.set(f.user, true);
        this.hooks.changed(f.room);
    }

    left(f) {
        const key = `${f.room}\n${f.user}`;
        clearTimeout(this.#leaving.get(key));
        this.#leaving.set(
            key,
            setTimeout(() => {
                this.#leaving.delete(key);
                this.room(f.room).online.delete(f.user);
                this.hooks.line(f.room, `${this.nameOf(f.user)} left.`);
                this.hooks.changed(f.room);
            }, LEAVE_GRACE_MS),
        );
    }

    forgetRoom(room) {
        this.rooms.delete(room);
        for (const [key, timer] of this.#leaving) {
            if (key.startsWith(`${room}\n`)) {
                clearTimeout(timer);
                this.#leaving.delete(key);
            }
        }
    }

    clear() {
        for (const t of this.#leaving.values()) clearTimeout(t);
        this.#leaving.clear();
        this.rooms.clear();
    }

    /** Renders the online list of room (or of a direct thread's peer: {user, online}). */
    render(room, dm = null) {
        const ul = $('online');
        ul.replaceChildren();
        $('online-hint').textContent = '';
        if (dm) {
            const li = el('li', dm.online ? '' : 'offline', `${this.nameOf(dm.user)} ${dm.online === null ? '' : dm.online ? '(online)' : '(offline)'}`.trim());
            li.dataset.user = dm.user;
            ul.append(li);
            return;
        }
        const r = room ? this.rooms.get(room) : null;
        if (!r) return;
        const me = this.hooks.me;
        const users = [...r.online.keys()].sort((a, b) => (a === me ? -1 : b === me ? 1 : this.nameOf(a).localeCompare(this.nameOf(b))));
        for (const user of users) {
            const li = el('li', user === me ? 'me' : 'other', user === me ? `${this.nameOf(me)} (you)` : this.nameOf(user));
            li.dataset.user = user;
            if (user !== me) {
                li.title = `Send ${this.nameOf(user)} a direct message`;
                li.tabIndex = 0;
                li.addEventListener('click', () => this.hooks.onDirect(user));
                li.addEventListener('keydown', (e) => e.key === 'Enter' && this.hooks.onDirect(user));
            }
            ul.append(li);
        }
        if (r.answered === false) $('online-hint').textContent = 'Seen since you joined (this server does not answer presence).';
    }
}
