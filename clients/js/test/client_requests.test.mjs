// ChatClient's requests on a fake socket: ids and replies, timeouts, errors, the bounded
// offline queue, no re-send of what may have been applied, typing throttle, history paging.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ChatError } from '../src/index.js';
import { connectReady, makeClient, settle } from './support/fakes.mjs';

describe('requests', () => {
    it('pair replies by id, reject with the server code, time out', async () => {
        const h = makeClient({ requestTimeoutMs: 1000 });
        const ws = await connectReady(h);
        const p1 = h.client.presence('a');
        const p2 = h.client.publish('a', 'hi');
        const p3 = h.client.ping();
        p3.catch(() => {}); // rejects during advance(), before assert.rejects looks at it
        const [f1, f2] = ws.sent;
        assert.notEqual(f1.id, f2.id);
        ws.receive({ type: 'error', id: f2.id, code: 'not_joined', message: 'join first' });
        ws.receive({ type: 'presence', id: f1.id, room: 'a', users: [{ user: 'bob', name: 'Bob' }] });
        assert.deepEqual(await p1, [{ user: 'bob', name: 'Bob' }]);
        await assert.rejects(p2, (err) => err instanceof ChatError && err.code === 'not_joined' && err.message === 'join first');
        await h.clock.advance(1000);
        await assert.rejects(p3, { code: 'timeout' });
        ws.receive({ type: 'pong', id: ws.last('ping').id, ts: 1 }); // late: dropped quietly
        assert.equal(h.events.error, undefined);
        h.client.close();
    });

    it('queue while offline (before connect too), in order, after the re-joins', async () => {
        const h = makeClient();
        const early = h.client.publish('a', 'before connect');
        h.client.connect();
        await settle();
        h.client.join('a');
        const later = h.client.publish('a', 'while connecting');
        const ws = h.socket();
        ws.welcome();
        assert.deepEqual(ws.sent.map((f) => f.type), ['join'], 'nothing before the re-joins are answered');
        ws.answerJoins();
        await settle();
        assert.deepEqual(ws.sent.map((f) => f.text ?? f.type), ['join', 'before connect', 'while connecting']);
        for (const f of ws.sentOf('publish')) ws.receive({ type: 'ack', id: f.id, room: 'a', offset: 1, ts: 1 });
        await Promise.all([early, later]);
        h.client.close();
    });

    it('the offline queue is bounded and its waits expire', async () => {
        const h = makeClient({ queueLimit: 2, queueTimeoutMs: 5000 });
        h.client.connect();
        const a = h.client.publish('r', '1');
        const b = h.client.publish('r', '2');
        for (const p of [a, b]) p.catch(() => {});
        await assert.rejects(h.client.publish('r', '3'), { code: 'queue_full' });
        await h.clock.advance(5000);
        await assert.rejects(a, { code: 'timeout' });
        await assert.rejects(b, { code: 'timeout' });
        h.client.close();
    });

    it('a publish in flight when the connection drops fails and is never re-sent', async () => {
        const h = makeClient();
        let ws = await connectReady(h);
        const p = h.client.publish('a', 'maybe stored');
        ws.end(1006);
        await assert.rejects(p, (err) => err.code === 'disconnected' && err.request.text === 'maybe stored');
        await h.clock.advance(h.events.state.at(-1).delayMs);
        ws = await connectReady(h);
        assert.equal(ws.sentOf('publish').length, 0);
        h.client.close();
    });

    it('history returns the page and whether the server has more', async () => {
        const h = makeClient();
        const ws = await connectReady(h);
        const page = h.client.history('a', { limit: 100, before: 500 });
        const f = ws.last('history');
        assert.deepEqual([f.limit, f.before], [100, 500]);
        ws.receive({ type: 'history', id: f.id, room: 'a', messages: [{ type: 'message', room: 'a', offset: 420 }], more: true });
        assert.deepEqual(await page, { messages: [{ type: 'message', room: 'a', offset: 420 }], more: true });
        const old = h.client.history('a');
        ws.receive({ type: 'history', id: ws.last('history').id, room: 'a', messages: [] });
        assert.deepEqual(await old, { messages: [], more: false });
        h.client.close();
    });

    it('direct, online, unread', async () => {
        const h = makeClient();
        const ws = await connectReady(h);
        const d = h.client.direct('bob', 'psst');
        assert.deepEqual([ws.last('direct').to, ws.last('direct').text], ['bob', 'psst']);
        ws.receive({ type: 'ack', id: ws.last('direct').id, ts: 5 });
        assert.equal((await d).ts, 5);
        const o = h.client.online('bob');
        ws.receive({ type: 'presence', id: ws.last('presence').id, user: 'bob', online: true });
        assert.equal(await o, true);
        h.client.close();
    });
});

describe('typing', () => {
    it('sends true at most once per interval, false only to end a true, and a message resets it', async () => {
        const h = makeClient();
        const ws = await connectReady(h);
        const typing = () => ws.sentOf('typing').map((f) => f.state);
        assert.equal(h.client.typing('a', false), true);
        assert.deepEqual(typing(), [], 'nothing to end');
        h.client.typing('a', true);
        h.client.typing('a', true);
        assert.deepEqual(typing(), [true]);
        await h.clock.advance(2000);
        h.client.typing('a', true);
        assert.deepEqual(typing(), [true, true]);
        h.client.publish('a', 'sent').catch(() => {}); // never answered here
        h.client.typing('a', true);
        assert.deepEqual(typing(), [true, true, true], 'typing right after sending is announced again');
        h.client.typing('a', false);
        assert.deepEqual(typing(), [true, true, true, false]);
        h.client.close();
    });

    it('is not sent while offline', async () => {
        const h = makeClient();
        h.client.connect();
        await settle();
        assert.equal(h.client.typing('a', true), false);
        h.client.close();
    });
});
