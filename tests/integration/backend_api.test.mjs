// PROTOCOL.md §6: POST /api/publish and /api/direct with the API key push events to rooms and
// users through the same path as client publishes (same offsets, same history), sender
// "@server"; wrong key 401, bad body 400, no key configured 404, Redis down 503.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster, startGateway, stopAll } from './lib/harness.mjs';
import { connect, token } from './lib/client.mjs';

const KEY = 'backend-key-1';
let cluster;
let A;
let B;

before(async () => {
    cluster = await startCluster({ nodes: 2, args: ['--api-key', KEY] });
    [A, B] = cluster.nodes;
});

after(stopAll);

async function post(node, path, body, key = KEY) {
    const headers = { 'content-type': 'application/json' };
    if (key !== null) headers.authorization = `Bearer ${key}`;
    const res = await fetch(`http://127.0.0.1:${node.port}${path}`, {
        method: 'POST',
        headers,
        body: typeof body === 'string' ? body : JSON.stringify(body),
        signal: AbortSignal.timeout(5000),
    });
    return { status: res.status, body: await res.json() };
}

const open = (node, sub) => connect(node.url, { token: token({ sub }), label: `${sub}@${node.port}` });

describe('backend API', () => {
    it('publishes to a room with the same offsets and history as clients', async () => {
        const room = 'api-room';
        const member = await open(B, 'm1');
        const writer = await open(A, 'w1');
        assert.equal((await member.request({ type: 'join', room })).type, 'joined');
        assert.equal((await writer.request({ type: 'join', room })).type, 'joined');

        const r1 = await post(A, '/api/publish', { room, text: 'task.created' });
        assert.equal(r1.status, 200);
        assert.equal(r1.body.offset, 1);
        assert.equal(typeof r1.body.ts, 'number');
        const m1 = await member.next((f) => f.type === 'message' && f.offset === 1);
        assert.deepEqual(m1.from, { user: '@server' });
        assert.equal(m1.text, 'task.created');

        const r2 = await post(B, '/api/publish', { room, data: { kind: 'task.created', id: 42 } });
        assert.equal(r2.status, 200);
        assert.equal(r2.body.offset, 2);
        const m2 = await member.next((f) => f.type === 'message' && f.offset === 2);
        assert.deepEqual(m2.data, { kind: 'task.created', id: 42 });
        assert.equal(m2.text, undefined);

        const ack = await writer.request({ type: 'publish', room, text: 'from a client' });
        assert.equal(ack.offset, 3, 'client and API publishes share the room offsets');
        const h = await member.request({ type: 'history', room });
        assert.deepEqual(h.messages.map((m) => m.offset), [1, 2, 3]);
    });

    it('sends a direct to every connection of a user', async () => {
        const u1 = await open(A, 'target');
        const u2 = await open(B, 'target');
        // The user channel is subscribed when the connection arrives: retry (bounded) until the
        // first direct lands on both, which proves both nodes' subscriptions are live.
        const deadline = Date.now() + 5000;
        let got = false;
        for (let i = 0; !got && Date.now() < deadline; i++) {
            const r = await post(A, '/api/direct', { to: 'target', text: `ping-${i}` });
            assert.equal(r.status, 200);
            assert.equal(typeof r.body.ts, 'number');
            try {
                await Promise.all([u1, u2].map((c) => c.next((f) => f.type === 'direct' && f.text === `ping-${i}`, 300)));
                got = true;
            } catch {
                /* not subscribed yet */
            }
        }
        assert.ok(got, 'a backend direct reached both connections');
        const d = u1.frames.find((f) => f.type === 'direct');
        assert.deepEqual(d.from, { user: '@server' });
        assert.equal(d.to, 'target');
    });

    it('refuses wrong keys and bad bodies with JSON errors', async () => {
        const noKey = await post(A, '/api/publish', { room: 'x', text: 'y' }, null);
        assert.equal(noKey.status, 401);
        assert.equal(typeof noKey.body.error, 'string');
        assert.equal(typeof noKey.body.message, 'string');
        assert.equal((await post(A, '/api/publish', { room: 'x', text: 'y' }, 'wrong')).status, 401);
        for (const body of [
            'not json',
            '[]',
            { text: 'no room' },
            { room: 'bad room!', text: 'x' },
            { room: 'x', text: 'a', data: 1 },
            { room: 'x' },
            { room: 'x', text: 'y'.repeat(4097) },
        ]) {
            const r = await post(A, '/api/publish', body);
            assert.equal(r.status, 400, `body ${JSON.stringify(body).slice(0, 60)} → ${r.status}`);
            assert.equal(typeof r.body.error, 'string');
        }
        assert.equal((await post(A, '/api/direct', { to: '@admin', text: 'x' })).status, 400);
        assert.equal((await post(A, '/api/direct', { to: 'bob', text: 'x', data: {} })).status, 400);
        const big = await post(A, '/api/publish', JSON.stringify({ room: 'x', data: 'z'.repeat(70000) }));
        assert.equal(big.status, 413);
    });

    it('is off (404) without a configured key', async () => {
        const plain = await startGateway({ redisPort: cluster.redis.port, nodeId: 'nokey' });
        assert.equal((await post(plain, '/api/publish', { room: 'x', text: 'y' })).status, 404);
    });

    it('answers 503 while Redis is down', async () => {
        await cluster.redis.kill('SIGKILL');
        const deadline = Date.now() + 10000;
        let status = 0;
        while (Date.now() < deadline && status !== 503) {
            status = (await post(A, '/api/publish', { room: 'api-down', text: 'x' })).status;
        }
        assert.equal(status, 503);
    });
});
