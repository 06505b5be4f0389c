// PROTOCOL.md §2: leave answers `left` and stops delivery to that connection; leaving a room
// not joined answers not_joined; joining twice is idempotent (a fresh `joined`, no duplicate
// delivery). user_joined/user_left are not tested here (not implemented in this phase).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster, stopAll } from './lib/harness.mjs';
import { connect, token } from './lib/client.mjs';

let A;
let B;

// One top-level suite holds the hooks: root-level before/after are unreliable on Node 18.
describe('leave and join idempotence (§2)', () => {
    before(async () => {
        const cluster = await startCluster({ nodes: 2 });
        [A, B] = cluster.nodes;
    });

    after(stopAll);

    const isMessage = (room, offset) => {
        const fn = (f) => f.type === 'message' && f.room === room && f.offset === offset;
        fn.description = `message ${room}#${offset}`;
        return fn;
    };

    async function join(c, room, id) {
        const j = await c.request(id === undefined ? { type: 'join', room } : { type: 'join', room, id });
        assert.equal(j.type, 'joined', `${c.label} join ${room}: ${JSON.stringify(j)}`);
        assert.equal(j.room, room);
        return j;
    }

    async function publish(c, room, text) {
        const ack = await c.request({ type: 'publish', room, text });
        assert.equal(ack.type, 'ack', `${c.label} publish ${room}: ${JSON.stringify(ack)}`);
        return ack;
    }

    describe('leave', () => {
        it('leave → left with the same id; no more messages for that connection', async () => {
            const room = 'lv1';
            const leaver = await connect(A.url, { token: token({ sub: 'leaver' }), label: 'leaver@A' });
            const stayer = await connect(A.url, { token: token({ sub: 'stayer' }), label: 'stayer@A' });
            const pub = await connect(B.url, { token: token({ sub: 'pub' }), label: 'pub@B' });
            for (const c of [leaver, stayer, pub]) await join(c, room);

            const a1 = await publish(pub, room, 'before leave');
            await leaver.next(isMessage(room, a1.offset));
            await stayer.next(isMessage(room, a1.offset));

            const left = await leaver.request({ type: 'leave', room, id: 'leave-1' });
            assert.deepEqual(
                { type: left.type, room: left.room, id: left.id },
                { type: 'left', room, id: 'leave-1' },
                JSON.stringify(left),
            );

            const a2 = await publish(pub, room, 'after leave');
            // barrier: another member on the same node has the message ...
            await stayer.next(isMessage(room, a2.offset));
            // ... and a round trip on the leaver's own connection
            assert.equal((await leaver.request({ type: 'ping' })).type, 'pong');
            assert.deepEqual(
                leaver.messages(room).map((m) => m.offset),
                [a1.offset],
                'the leaver received messages after leaving',
            );
            assert.ok(leaver.isOpen, 'leaving does not close the connection');

            // publishing to a room one has left → not_joined
            const e = await leaver.request({ type: 'publish', room, text: 'x' });
            assert.equal(e.type, 'error');
            assert.equal(e.code, 'not_joined');
        });

        it('leaving a room not joined → error not_joined (with id); so does leaving twice', async () => {
            const c = await connect(A.url, { token: token({ sub: 'nj' }), label: 'nj@A' });
            const e1 = await c.request({ type: 'leave', room: 'never-joined', id: 'l-nj' });
            assert.equal(e1.type, 'error', JSON.stringify(e1));
            assert.equal(e1.code, 'not_joined');
            assert.equal(e1.id, 'l-nj');
            assert.equal(typeof e1.message, 'string');

            await join(c, 'lv2');
            const l = await c.request({ type: 'leave', room: 'lv2' });
            assert.equal(l.type, 'left');
            const e2 = await c.request({ type: 'leave', room: 'lv2', id: 99 });
            assert.equal(e2.type, 'error', JSON.stringify(e2));
            assert.equal(e2.code, 'not_joined');
            assert.equal(e2.id, 99);
            assert.equal((await c.request({ type: 'ping' })).type, 'pong');
        });

        it('after leaving, joining again reports the current offset and resumes delivery', async () => {
            const room = 'lv3';
            const c = await connect(A.url, { token: token({ sub: 'rejoiner' }), label: 'rejoiner@A' });
            const pub = await connect(B.url, { token: token({ sub: 'pub3' }), label: 'pub3@B' });
            await join(c, room);
            await join(pub, room);
            const a1 = await publish(pub, room, 'm1');
            await c.next(isMessage(room, a1.offset));
            assert.equal((await c.request({ type: 'leave', room })).type, 'left');
            const missed = await publish(pub, room, 'm2 (missed)');
            const j = await join(c, room);
            assert.equal(j.offset, missed.offset, 'joined.offset is the last offset at join');
            const a3 = await publish(pub, room, 'm3');
            const m3 = await c.next(isMessage(room, a3.offset));
            assert.equal(m3.text, 'm3');
            assert.equal((await c.request({ type: 'ping' })).type, 'pong');
            assert.deepEqual(
                c.messages(room).map((m) => m.text),
                ['m1', 'm3'],
            );
        });
    });

    describe('join twice', () => {
        it('is idempotent: a fresh joined each time, and no duplicate delivery (same node and across nodes)', async () => {
            const room = 'twice';
            const c = await connect(A.url, { token: token({ sub: 'dbl' }), label: 'dbl@A' });
            const d = await connect(B.url, { token: token({ sub: 'dbl2' }), label: 'dbl2@B' });
            const pub = await connect(B.url, { token: token({ sub: 'pubt' }), label: 'pubt@B' });
            await join(pub, room);

            const j1 = await join(c, room, 'j-1');
            const j2 = await join(c, room, 'j-2');
            assert.equal(j1.id, 'j-1');
            assert.equal(j2.id, 'j-2');
            assert.equal(j2.offset, j1.offset);
            assert.equal(j2.epoch, j1.epoch);
            await join(d, room);
            await join(d, room);

            const a1 = await publish(pub, room, 'once');
            await c.next(isMessage(room, a1.offset));
            await d.next(isMessage(room, a1.offset));

            // join a third time after a message: joined.offset has moved on
            const j3 = await join(c, room, 'j-3');
            assert.equal(j3.offset, a1.offset);
            assert.equal(j3.epoch, j1.epoch);

            // barrier: a second message arrives, so any duplicate of the first would be before it
            const a2 = await publish(pub, room, 'twice?');
            await c.next(isMessage(room, a2.offset));
            await d.next(isMessage(room, a2.offset));
            for (const x of [c, d]) {
                assert.equal((await x.request({ type: 'ping' })).type, 'pong');
                assert.deepEqual(
                    x.messages(room).map((m) => m.offset),
                    [a1.offset, a2.offset],
                    `${x.label} received duplicates`,
                );
            }

            // one leave is enough to stop delivery after any number of joins
            assert.equal((await c.request({ type: 'leave', room })).type, 'left');
            const a3 = await publish(pub, room, 'after single leave');
            await d.next(isMessage(room, a3.offset));
            assert.equal((await c.request({ type: 'ping' })).type, 'pong');
            assert.deepEqual(c.messages(room).map((m) => m.offset), [a1.offset, a2.offset]);
            const e = await c.request({ type: 'leave', room });
            assert.equal(e.code, 'not_joined', 'membership is not counted per join');
        });
    });
});
