// ChatClient's read markers (PROTOCOL.md §8) on a fake socket: coalesced `read`, markers from
// joined / read_ok / read events / unread, and unread counts.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connectReady, makeClient, settle } from './support/fakes.mjs';

async function joinedRoom(r = {}) {
    const h = makeClient();
    h.client.connect();
    await settle();
    h.client.join('a');
    const ws = await connectReady(h, { a: { offset: 10, epoch: 'e', read: 4, unread: 6, ...r } });
    return { h, ws };
}

describe('read markers', () => {
    it('joined carries the marker and the unread count', async () => {
        const { h } = await joinedRoom();
        assert.deepEqual(h.client.roomInfo('a'), { offset: 10, epoch: 'e', read: 4, unread: 6 });
        assert.equal(h.events.joined[0].unread, 6);
        h.client.close();
    });

    it('one read in flight per room; later calls raise the next one; nothing for old offsets', async () => {
        const { h, ws } = await joinedRoom();
        const p1 = h.client.read('a', 6);
        const p2 = h.client.read('a', 8);
        const p3 = h.client.read('a', 9);
        assert.deepEqual(ws.sentOf('read').map((f) => f.offset), [6]);
        ws.receive({ type: 'read_ok', id: ws.last('read').id, room: 'a', offset: 6 });
        assert.equal((await p1).offset, 6);
        await settle();
        assert.deepEqual(ws.sentOf('read').map((f) => f.offset), [6, 9]);
        ws.receive({ type: 'read_ok', id: ws.last('read').id, room: 'a', offset: 9 });
        assert.equal((await p2).offset, 9);
        assert.equal((await p3).offset, 9);
        assert.equal((await h.client.read('a', 3)).offset, 9, 'behind the marker: answered locally');
        assert.equal(ws.sentOf('read').length, 2);
        assert.deepEqual(h.client.roomInfo('a'), { offset: 10, epoch: 'e', read: 9, unread: 1 });
        h.client.close();
    });

    it('read events of others are emitted; ours (another tab) move our marker', async () => {
        const { h, ws } = await joinedRoom();
        ws.receive({ type: 'read', room: 'a', user: 'bob', offset: 10, ts: 1 });
        assert.equal(h.client.roomInfo('a').read, 4);
        ws.receive({ type: 'read', room: 'a', user: 'me', offset: 8, ts: 2 });
        assert.equal(h.client.roomInfo('a').read, 8);
        assert.deepEqual(h.events.read.map((e) => e.user), ['bob', 'me']);
        h.client.close();
    });

    it('unread() lists every room and updates the markers', async () => {
        const { h, ws } = await joinedRoom();
        const p = h.client.unread();
        ws.receive({ type: 'unread', id: ws.last('unread').id, rooms: [{ room: 'a', offset: 12, read: 7, unread: 5 }] });
        assert.deepEqual(await p, [{ room: 'a', offset: 12, read: 7, unread: 5 }]);
        assert.equal(h.client.roomInfo('a').read, 7);
        h.client.close();
    });

    it('a server without read markers answers unknown_type, and read() rejects with it', async () => {
        const { h, ws } = await joinedRoom({ read: undefined, unread: undefined });
        const p = h.client.read('a', 10);
        ws.receive({ type: 'error', id: ws.last('read').id, code: 'unknown_type', message: 'unknown type' });
        await assert.rejects(p, { code: 'unknown_type' });
        assert.equal(h.client.roomInfo('a').unread, undefined);
        h.client.close();
    });
});
