/*
 * typing — both directions of the typing indicator.
 * Out: keystrokes call client.typing(room, true), which the client throttles (one frame per
 * interval, see clients/js/src/typing.js); after TYPING_IDLE_MS without keys, or when the input
 * is emptied or loses focus, typing ends. Sending a message ends it too, without a frame:
 * client.publish() resets the throttle, so typing again right after sending is announced at
 * once.
 * In: who is typing per room, each entry fading after TYPING_SHOW_MS unless renewed, and
 * removed when that person's message arrives.
 */
import { $ } from './dom.js';

const TYPING_IDLE_MS = 3000;
const TYPING_SHOW_MS = 6000;

export class TypingSender {
    #room = null;
    #idle = null;

    constructor(client) {
        this.client = client;
    }

    input(room, text) {
        if (!room || text === '') {
            this.stop();
            return;
        }
        if (this.#room && this.#room !== room) this.stop();
        this.#room = room;
        this.client.typing(room, true);
        clearTimeout(this.#idle);
        this.#idle = setTimeout(() => this.stop(), TYPING_IDLE_MS);
    }

    /** A message was sent: the typing state ended with it (no frame needed). */
    sent() {
        clearTimeout(this.#idle);
        this.#room = null;
    }

    stop() {
        clearTimeout(this.#idle);
        if (this.#room) this.client.typing(this.#room, false);
        this.#room = null;
    }
}

export class TypingView {
    rooms = new Map(); // room → Map user → timer

    /** nameOf(user); currentRoom() → the room shown. */
    constructor(nameOf, currentRoom) {
        this.nameOf = nameOf;
        this.currentRoom = currentRoom;
    }

    event(f) {
        if (!this.rooms.has(f.room)) this.rooms.set(f.room, new Map());
        const typing = this.rooms.get(f.room);
        clearTimeout(typing.get(f.user));
        typing.delete(f.user);
        if (f.state) typing.set(f.user, setTimeout(() => this.stopped(f.room, f.user), TYPING_SHOW_MS));
        this.render();
    }

    stopped(room, user) {
        const typing = this.rooms.get(room);
        if (!typing?.has(user)) return;
        clearTimeout(typing.get(user));
        typing.delete(user);
        this.render();
    }

    clear() {
        for (const typing of this.rooms.values()) for (const t of typing.values()) clearTimeout(t);
        this.rooms.clear();
        this.render();
    }

    render() {
        const names = [...(this.rooms.get(this.currentRoom()) ?? new Map()).keys()].map((u) => this.nameOf(u));
        let text = '';
        if (names.length === 1) text = `${names[0]} is typing…`;
        else if (names.length === 2) text = `${names[0]} and ${names[1]} are typing…`;
        else if (names.length > 2) text = `${names.length} people are typing…`;
        $('typing').textContent = text;
    }
}
