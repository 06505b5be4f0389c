// web/chat-client.js — the copy of the @chat-gateway/client package the demo page loads (built
// from clients/js/src by clients/js/scripts/build.mjs) — run in Node against real gateways, with
// npm `ws` as the global WebSocket, as in a browser. Issue 11: Node 18 must load it (web/ has a
// package.json saying its .js files are ES modules). Checked: requests resolve with their
// replies and reject with the server's error code; after its node dies the client reconnects
// by itself with backoff, re-joins its room with since:{offset, epoch}, and hands the app every
// message published meanwhile exactly once and in order; a publish made while disconnected
// waits in the offline queue and is sent after the reconnect.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startGateway, startRedis, stopAll } from './lib/harness.mjs';
import { connect, token } from './lib/client.mjs';
import { nextEvent as nextClientEvent } from './support/js_client_support.mjs';

globalThis.WebSocket = WebSocket;
const { ChatClient, ChatError } = await import('../../web/chat-client.js');

const ROOM = 'client-room';
let redis;
let nodeA;
let nodeB;
let chat;

before(async () => {
    redis = await startRedis();
    [nodeA, nodeB] = await Promise.all([
        startGateway({ redisPort: redis.port, nodeId: 'ca' }),
        startGateway({ redisPort: redis.port, nodeId: 'cb' }),
    ]);
});

after(async () => {
    chat?.close();
    await stopAll();
});

/** The next event of `type` that satisfies pred; bounded (8 s unless said). */
const nextEvent = (client, type, pred = () => true, timeoutMs = 8000) =>
    nextClientEvent(client, type, pred, timeoutMs);

describe('chat-client.js', () => {
    let other;
    const received = [];

    it('connects, joins, publishes, and pairs replies with requests', async () => {
        chat = new ChatClient({
            url: nodeA.url,
            token: token({ sub: 'web-user', name: 'Web' }),
            initialDelayMs: 100,
            maxDelayMs: 400,
        });
        chat.on('message', (m) => received.push(m));
        const welcomed = nextEvent(chat, 'welcome');
        chat.connect();
        assert.equal((await welcomed).node, 'ca');
        assert.equal(chat.state, 'open');

        const joined = await chat.join(ROOM);
        assert.equal(joined.type, 'joined');
        assert.deepEqual(chat.rooms, [ROOM]);
        await assert.rejects(chat.join('bad room!'), (err) => err instanceof ChatError && err.code === 'invalid_room');
        assert.deepEqual(chat.rooms, [ROOM], 'a refused join is forgotten');

        other = await connect(nodeB.url, { token: token({ sub: 'other' }), label: 'other' });
        await other.request({ type: 'join', room: ROOM });
        const ack = await chat.publish(ROOM, 'from the web client');
        assert.equal(ack.type, 'ack');
        const m = await other.next({ type: 'message', room: ROOM, offset: ack.offset });
        assert.equal(m.from.name, 'Web');

        const third = nextEvent(chat, 'message', (f) => f.text === 'before 3'); // listen first
        for (let i = 1; i <= 3; i++) await other.request({ type: 'publish', room: ROOM, text: `before ${i}` });
        await third;
        const page = await chat.history(ROOM, { limit: 2 });
        assert.deepEqual(page.messages.map((x) => x.text), ['before 2', 'before 3']);
    });

    it('reconnects after its node dies, recovers missed messages once, and sends what waited', async () => {
        const states = [];
        chat.on('state', (s) => states.push(s.state));
        const port = nodeA.port;
        const reconnecting = nextEvent(chat, 'state', (s) => s.state === 'reconnecting');
        await nodeA.kill('SIGKILL');
        await reconnecting;

        // Published while the client is away, and a publish the app makes meanwhile.
        for (let i = 1; i <= 3; i++) await other.request({ type: 'publish', room: ROOM, text: `missed ${i}` });
        const queued = chat.publish(ROOM, 'written while offline');

        const gaps = [];
        chat.on('gap', (g) => gaps.push(g));
        const rejoined = nextEvent(chat, 'joined', (j) => j.rejoin && j.room === ROOM, 15000);
        const welcomed = nextEvent(chat, 'welcome', () => true, 15000);
        nodeA = await startGateway({ port, redisPort: redis.port, nodeId: 'ca2' });
        const j = await rejoined;
        assert.equal((await welcomed).node, 'ca2');
        assert.ok(states.includes('connecting') && states.at(-1) === 'open', `states: ${states.join(' → ')}`);

        const ack = await queued;
        assert.equal(ack.type, 'ack');
        const late = await other.next({ type: 'message', room: ROOM, offset: ack.offset });
        assert.equal(late.text, 'written while offline');

        console.log(`# re-joined after reconnect: recovered=${j.recovered}, offset ${j.offset}`);
        const texts = received.map((m) => m.text);
        if (j.recovered === true) {
            assert.deepEqual(texts, ['before 1', 'before 2', 'before 3', 'missed 1', 'missed 2', 'missed 3']);
            assert.deepEqual(gaps, []);
        } else {
            // A server without recovery must say so, and the client reports the gap.
            assert.equal(j.recovered, false, `joined after a reconnect: ${JSON.stringify(j)}`);
            assert.equal(gaps.length, 1);
        }
        const offsets = received.map((m) => m.offset);
        assert.deepEqual(offsets, [...offsets].sort((a, b) => a - b), 'in order');
        assert.equal(new Set(offsets).size, offsets.length, 'no duplicates');
    });

    it('close() stops for good and fails later requests', async () => {
        chat.close();
        assert.equal(chat.state, 'closed');
        await assert.rejects(chat.publish(ROOM, 'x'), (err) => err.code === 'closed');
        await other.close();
    });
});
