/*
 * conversations — the list on the left (a strip on phones): the rooms joined and the direct
 * message threads, which one is shown, and an unread badge on each. A room is keyed by its
 * name, a direct thread by "@" + the other user's id (room names cannot contain "@", so the
 * two never collide). The rooms and the selection survive a reload (sessionStorage, per tab,
 * so two tabs can be two people); direct threads do not, as the server does not store directs.
 */
import { $, el } from './dom.js';

const ROOMS_KEY = 'chat-demo-rooms';
const CURRENT_KEY = 'chat-demo-current';

export const dmKey = (user) => `@${user}`;
export const isDm = (key) => key.startsWith('@');

export class Conversations {
    items = new Map(); // key → {key, kind, label, li, unread}
    current = null;

    /** hooks: onSelect(key), onClose(key). */
    constructor(hooks) {
        this.hooks = hooks;
    }

    has(key) {
        return this.items.has(key);
    }

    /** Adds a conversation (idempotent); kind 'room' or 'dm'. */
    add(key, kind, label) {
        let c = this.items.get(key);
        if (c) return c;
        c = { key, kind, label, unread: 0, li: el('li') };
        c.li.dataset[kind === 'room' ? 'room' : 'dm'] = kind === 'room' ? key : key.slice(1);
        const close = el('button', 'leave', '×');
        close.title = kind === 'room' ? `Leave #${label}` : `Close the conversation with ${label}`;
        close.addEventListener('click', (e) => {
            e.stopPropagation();
            this.hooks.onClose(key);
        });
        c.li.append(el('span', 'name', kind === 'room' ? `#${label}` : `@${label}`), el('span', 'unread'), close);
        c.li.addEventListener('click', () => this.select(key));
        this.items.set(key, c);
        $('rooms').append(c.li);
        this.save();
        return c;
    }

    remove(key) {
        const c = this.items.get(key);
        if (!c) return;
        c.li.remove();
        this.items.delete(key);
        if (this.current === key) this.select(this.items.keys().next().value ?? null);
        this.save();
    }

    select(key) {
        this.current = key;
        for (const c of this.items.values()) c.li.classList.toggle('current', c.key === key);
        this.items.get(key)?.li.scrollIntoView({ block: 'nearest', inline: 'nearest' }); // the strip on phones
        if (key) this.setUnread(key, 0);
        this.save();
        this.hooks.onSelect(key);
    }

    setUnread(key, n) {
        const c = this.items.get(key);
        if (!c) return;
        c.unread = Math.max(0, n);
        c.li.querySelector('.unread').textContent = c.unread ? String(c.unread) : '';
    }

    bumpUnread(key) {
        const c = this.items.get(key);
        if (c) this.setUnread(key, c.unread + 1);
    }

    rooms() {
        return [...this.items.values()].filter((c) => c.kind === 'room').map((c) => c.key);
    }

    save() {
        sessionStorage.setItem(ROOMS_KEY, JSON.stringify(this.rooms()));
        if (this.current && !isDm(this.current)) sessionStorage.setItem(CURRENT_KEY, this.current);
    }

    /** The rooms (and the selected one) saved by this tab, default ["general"]. */
    static saved() {
        const rooms = JSON.parse(sessionStorage.getItem(ROOMS_KEY) || '["general"]');
        return { rooms, current: sessionStorage.getItem(CURRENT_KEY) ?? rooms[0] ?? null };
    }

    static forget() {
        sessionStorage.removeItem(ROOMS_KEY);
        sessionStorage.removeItem(CURRENT_KEY);
    }

    clear() {
        for (const c of this.items.values()) c.li.remove();
        this.items.clear();
        this.current = null;
    }
}
