// PROTOCOL.md §2: per room, offsets are assigned once cluster-wide, strictly +1 from 1, and
// every member sees the room's messages in offset order with no gaps or duplicates, whichever
// node it is on — here under two concurrent publishers on different nodes.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster, stopAll } from './lib/harness.mjs';
import { connect, token } from './lib/client.mjs';

const ROOM = 'order';
const PER_PUBLISHER = 250;
const TOTAL = 2 * PER_PUBLISHER;

let cluster;

// One top-level suite holds the hooks: root-level before/after are unreliable on Node 18.
describe('ordering under concurrent publishers (§2)', () => {
    before(async () => {
        // lift the default 20/s (burst 40) publish rate limit
        cluster = await startCluster({ nodes: 2, args: ['--rate', '100000', '--rate-burst', '100000'] });
    });

    after(stopAll);

    describe('two concurrent publishers on two nodes', () => {
        it('every member on both nodes receives all 500 messages in identical offset order 1..500', { timeout: 50000 }, async () => {
            const [A, B] = cluster.nodes;
            const p1 = await connect(A.url, { token: token({ sub: 'p1' }), label: 'p1@A' });
            const p2 = await connect(B.url, { token: token({ sub: 'p2' }), label: 'p2@B' });
            const members = [
                await connect(A.url, { token: token({ sub: 'm1' }), label: 'm1@A' }),
                await connect(A.url, { token: token({ sub: 'm2' }), label: 'm2@A' }),
                await connect(B.url, { token: token({ sub: 'm3' }), label: 'm3@B' }),
                await connect(B.url, { token: token({ sub: 'm4' }), label: 'm4@B' }),
            ];
            for (const c of [p1, p2, ...members]) {
                const j = await c.request({ type: 'join', room: ROOM });
                assert.equal(j.type, 'joined', `${c.label}: ${JSON.stringify(j)}`);
                assert.equal(j.offset, 0);
            }

            // Fire both publishers' frames without waiting for replies (ids carry the sequence).
            const publish = (p, name) => {
                for (let i = 0; i < PER_PUBLISHER; i++) {
                    p.send({ type: 'publish', room: ROOM, text: `${name}-${i}`, id: `${name}-${i}` });
                }
            };
            publish(p1, 'p1');
            publish(p2, 'p2');

            const isAckOrError = (f) => f.type === 'ack' || f.type === 'error';
            const isMsg = (f) => f.type === 'message' && f.room === ROOM;
            const [acks1, acks2, ...received] = await Promise.all([
                p1.collect(isAckOrError, PER_PUBLISHER, 40000),
                p2.collect(isAckOrError, PER_PUBLISHER, 40000),
                ...members.map((m) => m.collect(isMsg, TOTAL, 40000)),
            ]);

            // Acks: no errors, ids in send order, offsets strictly increasing per publisher.
            for (const [name, acks] of [['p1', acks1], ['p2', acks2]]) {
                const errors = acks.filter((a) => a.type !== 'ack');
                assert.deepEqual(errors, [], `${name} got errors`);
                for (let i = 1; i < acks.length; i++) {
                    assert.ok(acks[i].offset > acks[i - 1].offset, `${name} ack #${i} offset ${acks[i].offset} <= ${acks[i - 1].offset}`);
                }
            }
            const ackOffsets = [...acks1, ...acks2].map((a) => a.offset).sort((x, y) => x - y);
            assert.deepEqual(ackOffsets, Array.from({ length: TOTAL }, (_, i) => i + 1), 'acks cover 1..500 exactly once');

            // Members: offsets 1..500 in order, and the same sequence (offset, sender, text) for all.
            const expectedOffsets = Array.from({ length: TOTAL }, (_, i) => i + 1);
            const signature = (msgs) => msgs.map((m) => `${m.offset}|${m.from?.user}|${m.text}`);
            for (let k = 0; k < members.length; k++) {
                assert.deepEqual(
                    received[k].map((m) => m.offset),
                    expectedOffsets,
                    `${members[k].label}: offsets not 1..500 in order`,
                );
            }
            const reference = signature(received[0]);
            for (let k = 1; k < members.length; k++) {
                assert.deepEqual(signature(received[k]), reference, `${members[k].label} differs from ${members[0].label}`);
            }

            // The message at each offset is the one the ack for that offset acknowledged.
            const byOffset = new Map([...acks1, ...acks2].map((a) => [a.offset, a.id]));
            for (const m of received[0]) assert.equal(m.text, byOffset.get(m.offset), `offset ${m.offset}`);

            // Beyond the letter of §2, what any chat user expects: a connection's requests are
            // answered in the order sent, and one sender's messages keep its sending order.
            for (const [name, acks] of [['p1', acks1], ['p2', acks2]]) {
                assert.deepEqual(
                    acks.map((a) => a.id),
                    Array.from({ length: PER_PUBLISHER }, (_, i) => `${name}-${i}`),
                    `${name}: acks arrive in request order`,
                );
            }
            for (const name of ['p1', 'p2']) {
                const seq = received[0].filter((m) => m.from.user === name).map((m) => m.text);
                assert.deepEqual(seq, Array.from({ length: PER_PUBLISHER }, (_, i) => `${name}-${i}`));
            }

            // Publishers see only the other publisher's messages, in offset order.
            for (const [p, other] of [[p1, 'p2'], [p2, 'p1']]) {
                const got = await p.collect(isMsg, PER_PUBLISHER, 20000);
                assert.ok(got.every((m) => m.from.user === other), `${p.label} received its own messages`);
                for (let i = 1; i < got.length; i++) assert.ok(got[i].offset > got[i - 1].offset);
            }

            // Nothing more after a round trip: no duplicates trailing behind.
            for (const c of [p1, p2, ...members]) {
                const pong = await c.request({ type: 'ping' });
                assert.equal(pong.type, 'pong');
                const count = c.messages(ROOM).length;
                assert.equal(count, c === p1 || c === p2 ? PER_PUBLISHER : TOTAL, `${c.label} got ${count} messages`);
            }
        });
    });
});
