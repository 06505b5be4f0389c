// ChatClient's recovery on a fake socket: re-joins with `since` after every reconnect, hands
// the app each offset once and in order, reports gaps and resets, settles offline joins.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connectReady, makeClient, settle } from './support/fakes.mjs';

const message = (room, offset, text = `m${offset}`) => ({ type: 'message', room, offset, ts: offset, from: { user: 'x' }, text });

describe('recovery', () => {
    it('re-joins every room with since after a drop, drops replayed duplicates, keeps order', async () => {
        const h = makeClient();
        h.client.connect();
        await settle();
        const j1 = h.client.join('a');
        const j2 = h.client.join('b');
        let ws = await connectReady(h, { a: { offset: 2, epoch: 'ea' }, b: { offset: 0, epoch: 'eb' } });
        assert.equal((await j1).offset, 2);
        await j2;
        ws.receive(message('a', 3));
        ws.receive(message('a', 4));
        ws.receive(message('b', 1));
        ws.end(1006);
        await h.clock.advance(h.events.state.at(-1).delayMs);
        ws = h.socket();
        ws.welcome();
        const joins = ws.sentOf('join');
        assert.deepEqual(
            joins.map((j) => [j.room, j.since]),
            [
                ['a', { offset: 4, epoch: 'ea' }],
                ['b', { offset: 1, epoch: 'eb' }],
            ],
        );
        ws.receive(message('a', 4)); // the server replays from since; a duplicate would be dropped
        ws.receive(message('a', 5));
        ws.answerJoins({ a: { offset: 5, epoch: 'ea', recovered: true }, b: { offset: 1, epoch: 'eb', recovered: true } });
        await settle();
        assert.deepEqual(
            h.events.message.map((m) => `${m.room}${m.offset}`),
            ['a3', 'a4', 'b1', 'a5'],
        );
        assert.deepEqual(
            h.events.joined.map((j) => [j.room, j.rejoin]),
            [['a', false], ['b', false], ['a', true], ['b', true]],
        );
        assert.equal(h.events.gap, undefined);
        h.client.close();
    });

    it('emits a gap when the server cannot recover', async () => {
        const h = makeClient();
        h.client.connect();
        await settle();
        h.client.join('a');
        let ws = await connectReady(h, { a: { offset: 10, epoch: 'e1' } });
        ws.end(1001);
        await h.clock.advance(h.events.state.at(-1).delayMs);
        ws = h.socket();
        ws.welcome();
        ws.answerJoins({ a: { offset: 2000, epoch: 'e1', recovered: false } });
        await settle();
        assert.deepEqual(h.events.gap, [{ room: 'a', epochChanged: false, from: 10, to: 2000 }]);
        assert.deepEqual(ws.last('join').since, { offset: 10, epoch: 'e1' });
        h.client.close();
    });

    it('reset: drops the since state of that room and tells the app', async () => {
        const h = makeClient();
        h.client.connect();
        await settle();
        h.client.join('a');
        let ws = await connectReady(h, { a: { offset: 10, epoch: 'e1' } });
        ws.receive({ type: 'reset', room: 'a', epoch: 'e2', offset: 0 });
        ws.receive(message('a', 1));
        assert.deepEqual(h.events.reset, [{ type: 'reset', room: 'a', epoch: 'e2', offset: 0 }]);
        assert.deepEqual(h.client.roomInfo('a'), { offset: 1, epoch: 'e2', read: undefined, unread: undefined });
        ws.end(1006);
        await h.clock.advance(h.events.state.at(-1).delayMs);
        ws = h.socket();
        ws.welcome();
        assert.deepEqual(ws.last('join').since, { offset: 1, epoch: 'e2' });
        h.client.close();
    });

    it('our own message replayed after a drop is not handed to the app again', async () => {
        const h = makeClient();
        h.client.connect();
        await settle();
        h.client.join('a');
        let ws = await connectReady(h, { a: { offset: 0, epoch: 'e1' } });
        const ack = h.client.publish('a', 'mine');
        await settle();
        ws.receive({ type: 'ack', id: ws.last('publish').id, room: 'a', offset: 2, ts: 1 });
        assert.equal((await ack).offset, 2);
        ws.end(1006); // offset 1 (someone else's) was never received
        await h.clock.advance(h.events.state.at(-1).delayMs);
        ws = h.socket();
        ws.welcome();
        assert.deepEqual(ws.last('join').since, { offset: 0, epoch: 'e1' });
        ws.receive(message('a', 1));
        ws.receive(message('a', 2, 'mine'));
        ws.answerJoins({ a: { offset: 2, epoch: 'e1', recovered: true } });
        await settle();
        assert.deepEqual(h.events.message.map((m) => m.offset), [1]);
        h.client.close();
    });

    it('a join in flight when the connection drops settles with the re-join', async () => {
        const h = makeClient();
        let ws = await connectReady(h);
        const joined = h.client.join('a');
        ws.end(1006);
        await h.clock.advance(h.events.state.at(-1).delayMs);
        ws = await connectReady(h, { a: { offset: 3, epoch: 'e' } });
        assert.equal((await joined).offset, 3);
        h.client.close();
    });

    it('a join asked for while offline settles with the join after the next welcome', async () => {
        const h = makeClient();
        h.client.connect();
        await settle();
        const joined = h.client.join('later');
        await settle();
        assert.equal(h.socket().sent.length, 0);
        await connectReady(h, { later: { offset: 7, epoch: 'e' } });
        assert.equal((await joined).offset, 7);
        assert.deepEqual(h.client.rooms, ['later']);
        h.client.close();
    });

    it('forgets a room the server will never accept, keeps it on transient errors', async () => {
        const h = makeClient();
        h.client.connect();
        await settle();
        const forbidden = h.client.join('secret');
        const busy = h.client.join('busy');
        const ws = h.socket();
        ws.welcome();
        const [j1, j2] = ws.sentOf('join');
        ws.receive({ type: 'error', id: j1.id, code: 'forbidden', message: 'not allowed' });
        ws.receive({ type: 'error', id: j2.id, code: 'unavailable', message: 'redis down' });
        await assert.rejects(forbidden, { code: 'forbidden' });
        await settle();
        assert.deepEqual(h.client.rooms, ['busy'], 'kept, and retried (next test)');
        h.client.close();
        await assert.rejects(busy, { code: 'closed' });
    });

    it('a transient refusal of a re-join is retried with backoff, without holding back ready', async () => {
        const h = makeClient();
        h.client.connect();
        await settle();
        const joined = h.client.join('busy');
        const ws = h.socket();
        ws.welcome();
        ws.receive({ type: 'error', id: ws.last('join').id, code: 'unavailable', message: 'redis down' });
        await settle();
        assert.equal(h.client.ready, true);
        await h.clock.advance(500);
        assert.equal(ws.sentOf('join').length, 2);
        ws.receive({ type: 'joined', id: ws.last('join').id, room: 'busy', offset: 4, epoch: 'e' });
        assert.equal((await joined).offset, 4);
        h.client.close();
        assert.equal(h.clock.scheduled, 0);
    });

    it('a room the server removes us from (left without a request) is forgotten', async () => {
        const h = makeClient();
        h.client.connect();
        await settle();
        h.client.join('a');
        const ws = await connectReady(h);
        ws.receive({ type: 'left', room: 'a' });
        assert.deepEqual(h.client.rooms, []);
        assert.equal(h.events.left.at(-1).byServer, true);
        h.client.close();
    });

    it('leave() forgets the room at once, also offline', async () => {
        const h = makeClient();
        h.client.connect();
        await settle();
        h.client.join('a');
        const ws = await connectReady(h);
        const left = h.client.leave('a');
        ws.receive({ type: 'left', room: 'a', id: ws.last('leave').id });
        assert.equal((await left).type, 'left');
        const joinB = h.client.join('b');
        await settle();
        ws.end(1006);
        await settle(); // the join now waits for the re-join
        assert.deepEqual(await h.client.leave('b'), { type: 'left', room: 'b' });
        await assert.rejects(joinB, { code: 'not_joined' });
        assert.deepEqual(h.client.rooms, []);
        h.client.close();
    });
});
