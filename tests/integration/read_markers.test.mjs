// PROTOCOL.md §8 (issue 15): read markers and unread counts. A user's marker per room moves
// forward only, never past the room's last offset, is shared by all of the user's connections
// on every node, and is stored in Redis with the room's history (so it survives a Redis restart
// with AOF). Other members get `read` events, at most one per user and room per second, the
// final value never lost. `joined` carries read/unread; `unread` lists every joined room.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { outputDir, startGateway, startRedis, stopAll } from './lib/harness.mjs';
import { connect, token } from './lib/client.mjs';

let redis;
let A;
let B;

before(async () => {
    const dir = path.join(outputDir(), 'aof');
    fs.mkdirSync(dir, { recursive: true });
    redis = await startRedis({ args: ['--appendonly', 'yes', '--appendfsync', 'always', '--dir', dir] });
    // A short history, for the trimming case; a large request burst, so 50 quick reads are all
    // served (budgets are tested elsewhere).
    const args = ['--history-size', '5', '--request-burst', '100'];
    [A, B] = await Promise.all([
        startGateway({ redisPort: redis.port, nodeId: 'a', args }),
        startGateway({ redisPort: redis.port, nodeId: 'b', args }),
    ]);
});

after(stopAll);

const open = (node, sub) => connect(node.url, { token: token({ sub }), label: `${sub}@${node.nodeId}` });

async function publish(c, room, n) {
    let last;
    for (let i = 0; i < n; i++) last = await c.request({ type: 'publish', room, text: `m${i}` });
    return last.offset;
}

describe('read markers', () => {
    it('move forward only, never past the last offset, shared across nodes', async () => {
        const room = 'rm-basic';
        const alice = await open(A, 'alice');
        const alice2 = await open(B, 'alice');
        const bob = await open(B, 'bob');
        for (const c of [alice, alice2, bob]) assert.equal((await c.request({ type: 'join', room })).type, 'joined');
        const last = await publish(bob, room, 4);
        let r = await alice.request({ type: 'read', room, offset: 2 });
        assert.deepEqual([r.type, r.room, r.offset], ['read_ok', room, 2]);
        r = await alice2.request({ type: 'read', room, offset: 1 });
        assert.equal(r.offset, 2, 'a marker never moves back, and is one per user');
        r = await alice2.request({ type: 'read', room, offset: 99 });
        assert.equal(r.offset, last, 'never past the last offset');
        const ev = await bob.next((f) => f.type === 'read' && f.user === 'alice' && f.offset === last, 5000);
        assert.equal(ev.room, room);
        assert.equal(typeof ev.ts, 'number');
        const e = await bob.request({ type: 'read', room: 'elsewhere', offset: 1 });
        assert.equal(e.code, 'not_joined');
    });

    it('joined carries read and unread; unread lists every joined room', async () => {
        const c = await open(A, 'carol');
        const w = await open(B, 'writer');
        for (const room of ['rm-u1', 'rm-u2']) {
            await w.request({ type: 'join', room });
            await publish(w, room, 3);
        }
        const j1 = await c.request({ type: 'join', room: 'rm-u1' });
        assert.deepEqual([j1.offset, j1.read, j1.unread], [3, 0, 3]);
        await c.request({ type: 'read', room: 'rm-u1', offset: 2 });
        await c.request({ type: 'join', room: 'rm-u2' });
        await publish(w, 'rm-u1', 1);
        const u = await c.request({ type: 'unread' });
        assert.equal(u.type, 'unread');
        const byRoom = Object.fromEntries(u.rooms.map((x) => [x.room, x]));
        assert.deepEqual(byRoom['rm-u1'], { room: 'rm-u1', offset: 4, read: 2, unread: 2 });
        assert.deepEqual(byRoom['rm-u2'], { room: 'rm-u2', offset: 3, read: 0, unread: 3 });
        // A second connection of carol on the other node sees the same marker at join.
        const c2 = await open(B, 'carol');
        const j = await c2.request({ type: 'join', room: 'rm-u1' });
        assert.deepEqual([j.read, j.unread], [2, 2]);
    });

    it('50 quick reads reach other members as at most 2 events, the last with the final offset', async () => {
        const room = 'rm-coalesce';
        const reader = await open(A, 'reader');
        const watcher = await open(B, 'watcher');
        await reader.request({ type: 'join', room });
        await watcher.request({ type: 'join', room });
        const last = await publish(watcher, room, 30); // under the publish burst
        const oks = await Promise.all(
            Array.from({ length: 50 }, (_, i) => reader.request({ type: 'read', room, offset: Math.min(i + 1, last) })),
        );
        assert.equal(oks.at(-1).offset, last);
        const final = await watcher.next((f) => f.type === 'read' && f.user === 'reader' && f.offset === last, 4000);
        assert.ok(final);
        // Anything after the final value would show up within the next coalescing second.
        await new Promise((resolve) => setTimeout(resolve, 1300));
        const events = watcher.frames.filter((f) => f.type === 'read' && f.user === 'reader');
        assert.ok(events.length <= 2, `${events.length} read events`);
        assert.equal(events.at(-1).offset, last);
    });

    it('unread after history trimming is last - marker, never negative', async () => {
        const room = 'rm-trim';
        const w = await open(A, 'trimmer');
        await w.request({ type: 'join', room });
        await publish(w, room, 12); // history keeps 5
        await w.request({ type: 'read', room, offset: 3 });
        const c = await open(B, 'trimmer');
        const j = await c.request({ type: 'join', room });
        assert.deepEqual([j.offset, j.read, j.unread], [12, 3, 9]);
        const u = await c.request({ type: 'unread' });
        assert.ok(u.rooms.every((x) => x.unread >= 0 && x.unread === x.offset - x.read));
    });

    it('markers survive a Redis restart with AOF on', async () => {
        const room = 'rm-aof';
        const c = await open(A, 'dora');
        await c.request({ type: 'join', room });
        await publish(c, room, 4);
        assert.equal((await c.request({ type: 'read', room, offset: 3 })).offset, 3);
        await c.close();
        await redis.restart();
        const deadline = Date.now() + 10000;
        let j;
        while (Date.now() < deadline) {
            try {
                const d = await open(B, 'dora');
                j = await d.request({ type: 'join', room });
                if (j.type === 'joined') break;
            } catch {
                /* the node is not ready again yet */
            }
            await new Promise((resolve) => setTimeout(resolve, 200));
        }
        assert.equal(j.type, 'joined');
        assert.deepEqual([j.offset, j.read, j.unread], [4, 3, 1]);
    });
});
