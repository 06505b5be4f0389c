/*
 * app.js — the browser demo: sign in by name (dev token) or with a pasted token, join rooms,
 * chat, see who is online and who is typing, and which node you are on. All protocol work is
 * done by chat-client.js; this file only keeps per-room view state and the DOM.
 *
 * Degrades gracefully on servers without `presence` or `typing`: the online list is then built
 * from user_joined/user_left and from who sends messages, and typing frames stop being sent.
 * Every piece of user-provided text reaches the page through textContent, never innerHTML.
 */
import { ChatClient } from './chat-client.js';

const $ = (id) => document.getElementById(id);
const SESSION_KEY = 'chat-demo-session';
const ROOMS_KEY = 'chat-demo-rooms';
const MAX_MESSAGES_PER_ROOM = 500;
const TYPING_SEND_EVERY_MS = 2000; // the server relays at most one per 2 s anyway
const TYPING_IDLE_MS = 3000; // after this without keystrokes we say we stopped
const TYPING_SHOW_MS = 6000; // a typing indicator without refresh fades after this

let client = null;
let session = null; // {token, user, name, viaDevToken}
let currentRoom = null;
let lastNode = null;
const rooms = new Map(); // room → view state, see roomState()

/* ---------- small helpers ---------- */

function el(tag, className, text) {
    const e = document.createElement(tag);
    if (className) e.className = className;
    if (text !== undefined) e.textContent = text;
    return e;
}

const timeOf = (ts) =>
    new Date(ts ?? Date.now()).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });

/** A user id from a display name: "Zoë Smith" → "zoe-smith". */
function userIdFor(name) {
    const id = name
        .normalize('NFKD')
        .replace(/[\u0300-\u036f]/g, '')
        .toLowerCase()
        .replace(/[^a-z0-9_.-]+/g, '-')
        .replace(/^-+|-+$/g, '')
        .slice(0, 48);
    return id || `user-${Math.random().toString(36).slice(2, 8)}`;
}

function jwtClaims(token) {
    try {
        const b64 = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
        const bytes = Uint8Array.from(atob(b64.padEnd(b64.length + ((4 - (b64.length % 4)) % 4), '=')), (c) =>
            c.charCodeAt(0),
        );
        return JSON.parse(new TextDecoder().decode(bytes));
    } catch {
        return null;
    }
}

function displayName(room, user, name) {
    if (user === session?.user) return 'you';
    return name || rooms.get(room)?.online.get(user)?.name || user;
}

/* ---------- sign in ---------- */

async function fetchDevToken(user, name) {
    const url = `/dev/token?sub=${encodeURIComponent(user)}&name=${encodeURIComponent(name)}&ttl=3600`;
    const res = await fetch(url, { cache: 'no-store' });
    if (res.status === 404) {
        const err = new Error('This cluster does not hand out dev tokens (DEV_TOKENS=0). Paste a token instead.');
        err.noDevTokens = true;
        throw err;
    }
    const body = await res.json().catch(() => ({}));
    if (!res.ok || !body.token) throw new Error(body.message || `token request failed (HTTP ${res.status})`);
    return body.token;
}

async function signInWithName(event) {
    event.preventDefault();
    const name = $('name').value.trim();
    if (!name) return;
    $('signin-problem').textContent = '';
    $('signin-button').disabled = true;
    try {
        const user = userIdFor(name);
        const token = await fetchDevToken(user, name);
        start({ token, user, name, viaDevToken: true });
    } catch (err) {
        $('signin-problem').textContent = err.message;
        if (err.noDevTokens) $('token-box').open = true;
    } finally {
        $('signin-button').disabled = false;
    }
}

function signInWithToken() {
    const token = $('token').value.trim();
    const claims = jwtClaims(token);
    if (!claims || typeof claims.sub !== 'string') {
        $('signin-problem').textContent = 'That does not look like a JWT with a "sub" claim.';
        return;
    }
    start({ token, user: claims.sub, name: claims.name || claims.sub, viaDevToken: false });
}

function signOut() {
    client?.close(1000, 'signed out');
    client = null;
    session = null;
    sessionStorage.removeItem(SESSION_KEY);
    sessionStorage.removeItem(ROOMS_KEY);
    rooms.clear();
    currentRoom = null;
    lastNode = null;
    $('rooms').replaceChildren();
    $('messages').replaceChildren(el('div', 'empty', 'Join a room to start chatting.'));
    $('chat').hidden = true;
    $('signin').hidden = false;
    for (const id of ['node-info', 'me-info', 'signout', 'retry']) $(id).hidden = true;
    showState({ state: 'idle' });
}

/* ---------- the connection ---------- */

function wsUrl() {
    const override = new URLSearchParams(location.search).get('ws');
    if (override) return override;
    return `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/ws`;
}

function start(s) {
    session = s;
    sessionStorage.setItem(SESSION_KEY, JSON.stringify(s));
    $('signin').hidden = true;
    $('chat').hidden = false;
    $('me').textContent = s.name === s.user ? s.user : `${s.name} (${s.user})`;
    $('me-info').hidden = false;
    $('signout').hidden = false;

    client = new ChatClient({
        url: wsUrl(),
        token: s.token,
        // A dev token can be re-minted when it runs out; a pasted one cannot.
        getToken: s.viaDevToken ? () => fetchDevToken(s.user, s.name) : undefined,
    });
    window.chatDemo = { client }; // for the curious, in the devtools console
    client.on('state', showState);
    client.on('welcome', onWelcome);
    client.on('joined', (f) => onJoined(f.room, f));
    client.on('message', onMessage);
    client.on('user_joined', (f) => onPresenceChange(f, true));
    client.on('user_left', (f) => onPresenceChange(f, false));
    client.on('typing', onTyping);
    client.on('direct', onDirect);
    client.on('gap', ({ room, epochChanged }) =>
        systemLine(room, epochChanged ? 'The room history was reset on the server.' : 'Some messages sent while you were away could not be recovered.', 'warn'),
    );
    client.on('error', (err) => console.warn('chat error', err.code, err.message));
    client.connect();

    const saved = JSON.parse(sessionStorage.getItem(ROOMS_KEY) || '["general"]');
    for (const room of saved) joinRoom(room, { select: room === saved[0] });
}

let countdown = null;
function showState({ state, attempt, retryAt, code, reason }) {
    const pill = $('state');
    pill.dataset.state = state;
    clearInterval(countdown);
    $('retry').hidden = state !== 'reconnecting';
    const texts = { idle: 'not connected', connecting: 'connecting…', open: 'connected', closed: 'disconnected' };
    if (state === 'reconnecting') {
        const tick = () => {
            const left = Math.max(0, (retryAt - Date.now()) / 1000);
            pill.textContent = `reconnecting in ${left.toFixed(1)} s (try ${attempt})`;
        };
        tick();
        countdown = setInterval(tick, 200);
        if (code === 1001) for (const room of rooms.keys()) systemLine(room, `${lastNode} is going away; moving to another node…`);
    } else if (state === 'closed' && reason && reason !== 'signed out') {
        pill.textContent = `disconnected: ${reason}`;
    } else {
        pill.textContent = texts[state] || state;
    }
}

function onWelcome(f) {
    $('node').textContent = f.node;
    $('node-info').hidden = false;
    if (lastNode !== null) {
        for (const room of rooms.keys()) {
            systemLine(room, lastNode === f.node ? `Reconnected to ${f.node}.` : `Reconnected: now on ${f.node} (was ${lastNode}).`);
        }
    }
    lastNode = f.node;
}

/* ---------- rooms ---------- */

function roomState(room) {
    let r = rooms.get(room);
    if (!r) {
        r = {
            name: room,
            list: el('div', 'room-messages'),
            count: 0,
            unread: 0,
            online: new Map(), // user → {name}
            presenceKnown: false,
            typing: new Map(), // user → timer
            item: null,
        };
        r.list.append(el('div', 'empty', `No messages in #${room} yet. Say hello!`));
        rooms.set(room, r);
        renderRoomList();
    }
    return r;
}

function saveRooms() {
    const names = [...rooms.keys()];
    if (currentRoom) names.sort((a, b) => (a === currentRoom ? -1 : b === currentRoom ? 1 : 0));
    sessionStorage.setItem(ROOMS_KEY, JSON.stringify(names));
}

async function joinRoom(room, { select = true } = {}) {
    $('room-problem').textContent = '';
    const r = roomState(room);
    if (select) selectRoom(room);
    try {
        const joined = await client.join(room);
        onJoined(room, joined);
        saveRooms();
    } catch (err) {
        if (err.code === 'disconnected' || err.code === 'timeout') {
            systemLine(room, 'Not joined yet: will join when the connection is back.', 'warn');
            return;
        }
        $('room-problem').textContent = `#${room}: ${err.message}`;
        rooms.delete(room);
        r.item?.remove();
        if (currentRoom === room) selectRoom(rooms.keys().next().value ?? null);
        saveRooms();
    }
}

async function onJoined(room, joined) {
    const r = roomState(room);
    r.online.set(session.user, { name: session.name });
    if (!joined.rejoin) systemLine(room, `You joined #${room}.`);
    try {
        const users = await client.presence(room);
        r.online = new Map(users.map((u) => [u.user, { name: u.name }]));
        r.online.set(session.user, { name: session.name });
        r.presenceKnown = true;
    } catch {
        // No presence on this server: keep building the list from events and senders.
        r.presenceKnown = false;
    }
    if (room === currentRoom) renderOnline();
}

async function leaveRoom(room) {
    try {
        await client.leave(room);
    } catch (err) {
        console.warn('leave', room, err.message);
    }
    const r = rooms.get(room);
    for (const t of r?.typing.values() || []) clearTimeout(t);
    rooms.delete(room);
    r?.item?.remove();
    if (currentRoom === room) selectRoom(rooms.keys().next().value ?? null);
    saveRooms();
}

function selectRoom(room) {
    currentRoom = room;
    const r = room ? rooms.get(room) : null;
    const title = $('room-title');
    title.replaceChildren(document.createTextNode(room ? `#${room}` : 'No room yet'), el('span', 'sub'));
    if (r) {
        r.unread = 0;
        $('messages').replaceChildren(r.list);
        scrollToEnd(true);
    } else {
        $('messages').replaceChildren(el('div', 'empty', 'Join a room to start chatting.'));
    }
    $('text').disabled = !room;
    $('send').disabled = !room;
    renderRoomList();
    renderOnline();
    renderTyping();
    saveRooms();
    if (room) $('text').focus();
}

function renderRoomList() {
    const ul = $('rooms');
    for (const r of rooms.values()) {
        if (!r.item) {
            r.item = el('li');
            r.item.dataset.room = r.name;
            const name = el('span', 'name', `#${r.name}`);
            const unread = el('span', 'unread');
            const leave = el('button', 'leave', '×');
            leave.title = `Leave #${r.name}`;
            leave.addEventListener('click', (e) => {
                e.stopPropagation();
                leaveRoom(r.name);
            });
            r.item.append(name, unread, leave);
            r.item.addEventListener('click', () => selectRoom(r.name));
        }
        r.item.classList.toggle('current', r.name === currentRoom);
        r.item.querySelector('.unread').textContent = r.unread ? String(r.unread) : '';
        if (r.item.parentNode !== ul) ul.append(r.item);
    }
}

/* ---------- messages ---------- */

function scrollToEnd(force) {
    const box = $('messages');
    const nearEnd = box.scrollHeight - box.scrollTop - box.clientHeight < 120;
    if (force || nearEnd) box.scrollTop = box.scrollHeight;
}

function append(room, node) {
    const r = roomState(room);
    r.list.querySelector('.empty')?.remove();
    r.list.append(node);
    while (r.list.childElementCount > MAX_MESSAGES_PER_ROOM) r.list.firstElementChild.remove();
    if (room === currentRoom) scrollToEnd(false);
}

function systemLine(room, text, kind = '') {
    if (!rooms.has(room)) return;
    append(room, el('div', `sys ${kind}`, `${timeOf()} · ${text}`));
}

function messageElement({ room, user, name, text, ts, offset, mine }) {
    const m = el('div', mine ? 'msg mine' : 'msg');
    m.dataset.room = room;
    m.dataset.from = user;
    if (offset !== undefined) m.dataset.offset = String(offset);
    m.append(el('span', 'who', mine ? 'you' : name || user), el('span', 'meta', ts ? timeOf(ts) : 'sending…'));
    m.append(el('div', 'msg-text', text));
    return m;
}

function onMessage(f) {
    const r = rooms.get(f.room);
    if (!r) return;
    const user = f.from?.user ?? '?';
    const text = f.text ?? JSON.stringify(f.data);
    if (user !== session.user && !user.startsWith('@') && !r.online.has(user)) {
        r.online.set(user, { name: f.from?.name });
        if (f.room === currentRoom) renderOnline();
    }
    stopTypingOf(r, user);
    append(f.room, messageElement({ room: f.room, user, name: f.from?.name, text, ts: f.ts, offset: f.offset }));
    if (f.room !== currentRoom) {
        r.unread++;
        renderRoomList();
    }
}

function onDirect(f) {
    const room = currentRoom;
    if (!room) return;
    const from = f.from?.user === session.user ? `you → ${f.to}` : `${displayName(room, f.from?.user, f.from?.name)} (direct)`;
    append(room, messageElement({ room, user: f.from?.user, name: from, text: f.text ?? '', ts: f.ts }));
}

async function send(event) {
    event.preventDefault();
    const input = $('text');
    const text = input.value;
    const room = currentRoom;
    if (!room || !text.trim()) return;
    input.value = '';
    stopTyping();
    const m = messageElement({ room, user: session.user, text, mine: true });
    m.classList.add('pending');
    append(room, m);
    scrollToEnd(true);
    try {
        const ack = await client.publish(room, text);
        m.classList.remove('pending');
        m.dataset.offset = String(ack.offset);
        m.querySelector('.meta').textContent = timeOf(ack.ts);
    } catch (err) {
        m.classList.remove('pending');
        m.classList.add('failed');
        const meta = m.querySelector('.meta');
        meta.textContent = `not sent: ${err.message} — click to retry`;
        m.style.cursor = 'pointer';
        m.addEventListener(
            'click',
            () => {
                m.remove();
                $('text').value = text;
                $('text').focus();
            },
            { once: true },
        );
    }
}

/* ---------- who is online ---------- */

function onPresenceChange(f, joined) {
    const r = rooms.get(f.room);
    if (!r) return;
    if (joined) r.online.set(f.user, { name: f.name });
    else r.online.delete(f.user);
    if (!joined) stopTypingOf(r, f.user);
    systemLine(f.room, `${f.name || f.user} ${joined ? 'joined' : 'left'}.`);
    if (f.room === currentRoom) renderOnline();
}

function renderOnline() {
    const ul = $('online');
    const r = currentRoom ? rooms.get(currentRoom) : null;
    ul.replaceChildren();
    if (!r) return;
    const users = [...r.online.entries()].sort(([a], [b]) => (a === session.user ? -1 : b === session.user ? 1 : a.localeCompare(b)));
    for (const [user, { name }] of users) {
        const li = el('li', user === session.user ? 'me' : '', user === session.user ? `${session.name} (you)` : name || user);
        li.dataset.user = user;
        ul.append(li);
    }
    $('online-hint').textContent = r.presenceKnown ? '' : 'Seen since you joined (this server does not answer presence).';
}

/* ---------- typing ---------- */

let typingSentAt = 0;
let typingIdle = null;
let typingRoom = null;

function onInput() {
    const room = currentRoom;
    if (!room || !client) return;
    if ($('text').value === '') {
        stopTyping();
        return;
    }
    const now = Date.now();
    if (now - typingSentAt > TYPING_SEND_EVERY_MS || typingRoom !== room) {
        if (client.typing(room, true)) {
            typingSentAt = now;
            typingRoom = room;
        }
    }
    clearTimeout(typingIdle);
    typingIdle = setTimeout(stopTyping, TYPING_IDLE_MS);
}

function stopTyping() {
    clearTimeout(typingIdle);
    if (typingRoom && client) client.typing(typingRoom, false);
    typingRoom = null;
    typingSentAt = 0;
}

function onTyping(f) {
    const r = rooms.get(f.room);
    if (!r || f.user === session.user) return;
    stopTypingOf(r, f.user, false);
    if (f.state) r.typing.set(f.user, setTimeout(() => stopTypingOf(r, f.user), TYPING_SHOW_MS));
    if (f.room === currentRoom) renderTyping();
}

function stopTypingOf(r, user, render = true) {
    const t = r.typing.get(user);
    if (t === undefined) return;
    clearTimeout(t);
    r.typing.delete(user);
    if (render && r.name === currentRoom) renderTyping();
}

function renderTyping() {
    const r = currentRoom ? rooms.get(currentRoom) : null;
    const names = r ? [...r.typing.keys()].map((u) => displayName(r.name, u)) : [];
    let text = '';
    if (names.length === 1) text = `${names[0]} is typing…`;
    else if (names.length === 2) text = `${names[0]} and ${names[1]} are typing…`;
    else if (names.length > 2) text = `${names.length} people are typing…`;
    $('typing').textContent = text;
}

/* ---------- wiring ---------- */

$('signin').addEventListener('submit', signInWithName);
$('token-button').addEventListener('click', signInWithToken);
$('signout').addEventListener('click', signOut);
$('retry').addEventListener('click', () => client?.retryNow());
$('join-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const room = $('room-input').value.trim();
    if (!room) return;
    if (rooms.has(room)) selectRoom(room);
    else joinRoom(room);
    $('room-input').value = '';
});
$('composer').addEventListener('submit', send);
$('text').addEventListener('input', onInput);
$('text').addEventListener('blur', stopTyping);

// A reload keeps you signed in (per tab: sessionStorage), so two tabs can be two people.
const saved = JSON.parse(sessionStorage.getItem(SESSION_KEY) || 'null');
if (saved?.token) start(saved);
