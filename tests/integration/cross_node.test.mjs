// PROTOCOL.md §2: a room spans nodes. A publish on one node is acked to the sender with the
// room's next offset and delivered as a `message` to every other member on every node; the
// sender never gets its own message; joined.offset is the last offset at join time and a
// later joiner gets exactly the messages after it.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster, stopAll } from './lib/harness.mjs';
import { connect, token } from './lib/client.mjs';

const ROOM = 'r1';
let cluster;
let A;
let B;

// One top-level suite holds the hooks: root-level before/after are unreliable on Node 18.
describe('cross-node rooms (§2)', () => {
    before(async () => {
        cluster = await startCluster({ nodes: 2 });
        [A, B] = cluster.nodes;
    });

    after(stopAll);

    const isMessage = (offset) => {
        const fn = (f) => f.type === 'message' && f.room === ROOM && f.offset === offset;
        fn.description = `message ${ROOM}#${offset}`;
        return fn;
    };

    function assertMessage(frame, { offset, user, name, text }) {
        assert.equal(frame.type, 'message');
        assert.equal(frame.room, ROOM);
        assert.equal(frame.offset, offset);
        assert.equal(typeof frame.ts, 'number');
        assert.ok(frame.ts > 1.6e12, `ts ${frame.ts} is not milliseconds since the epoch`);
        assert.equal(typeof frame.from, 'object');
        assert.equal(frame.from.user, user);
        if (name === undefined) assert.ok(frame.from.name == null, `unexpected from.name ${frame.from.name}`);
        else assert.equal(frame.from.name, name);
        assert.equal(frame.text, text);
    }

    async function joinRoom(client, room = ROOM) {
        const joined = await client.request({ type: 'join', room });
        assert.equal(joined.type, 'joined', `join answered ${JSON.stringify(joined)}`);
        assert.equal(joined.room, room);
        assert.equal(typeof joined.offset, 'number');
        assert.equal(typeof joined.epoch, 'string');
        assert.ok(joined.epoch.length > 0);
        return joined;
    }

    describe('room messages across two nodes', () => {
        let alice; // node A, has a display name, publisher
        let bob; // node A
        let carol; // node B, has a display name
        let dave; // node B, no display name
        let epoch;
        let lastOffset = 0;

        before(async () => {
            [alice, bob, carol, dave] = await Promise.all([
                connect(A.url, { token: token({ sub: 'alice', name: 'Alice' }), label: 'alice@A' }),
                connect(A.url, { token: token({ sub: 'bob', name: 'Bob' }), label: 'bob@A' }),
                connect(B.url, { token: token({ sub: 'carol', name: 'Carol' }), label: 'carol@B' }),
                connect(B.url, { token: token({ sub: 'dave' }), label: 'dave@B' }),
            ]);
            assert.equal(alice.welcome.node, 'n1');
            assert.equal(carol.welcome.node, 'n2');
        });

        it('every member joins; a fresh room reports offset 0 and one epoch everywhere', async () => {
            const joins = [];
            for (const c of [alice, bob, carol, dave]) joins.push(await joinRoom(c));
            for (const j of joins) assert.equal(j.offset, 0, `joined ${JSON.stringify(j)}`);
            epoch = joins[0].epoch;
            for (const j of joins) assert.equal(j.epoch, epoch, 'all members see the same epoch');
        });

        it('publish from node A: ack (same id, offset 1) to the sender, message to every other member on both nodes', async () => {
            const ack = await alice.request({ type: 'publish', room: ROOM, text: 'hello', id: 'pub-1' });
            assert.equal(ack.type, 'ack', `publish answered ${JSON.stringify(ack)}`);
            assert.equal(ack.id, 'pub-1');
            assert.equal(ack.room, ROOM);
            assert.equal(ack.offset, 1);
            assert.equal(typeof ack.ts, 'number');
            for (const c of [bob, carol, dave]) {
                const m = await c.next(isMessage(1));
                assertMessage(m, { offset: 1, user: 'alice', name: 'Alice', text: 'hello' });
            }
            lastOffset = 1;
        });

        it('publish from node B by a user without a name: from.name absent', async () => {
            const ack = await dave.request({ type: 'publish', room: ROOM, text: 'from B', id: 7 });
            assert.equal(ack.type, 'ack', JSON.stringify(ack));
            assert.equal(ack.id, 7);
            assert.equal(ack.offset, 2);
            for (const c of [alice, bob, carol]) {
                assertMessage(await c.next(isMessage(2)), { offset: 2, user: 'dave', name: undefined, text: 'from B' });
            }
            lastOffset = 2;
        });

        it('the sender never receives its own message', async () => {
            // Alice publishes; once everyone else has it, Bob publishes: per-room order means any
            // echo of Alice's message would reach Alice before Bob's message.
            const ack = await alice.request({ type: 'publish', room: ROOM, text: 'not for me' });
            assert.equal(ack.offset, lastOffset + 1);
            for (const c of [bob, carol, dave]) await c.next(isMessage(ack.offset));
            const ack2 = await bob.request({ type: 'publish', room: ROOM, text: 'barrier' });
            assert.equal(ack2.offset, ack.offset + 1);
            await alice.next(isMessage(ack2.offset));
            for (const c of [carol, dave]) await c.next(isMessage(ack2.offset));
            lastOffset = ack2.offset;
            const aliceOwn = alice.messages(ROOM).filter((m) => m.from?.user === 'alice');
            assert.deepEqual(aliceOwn, [], 'alice got her own messages back');
            const bobOwn = bob.messages(ROOM).filter((m) => m.from?.user === 'bob');
            assert.deepEqual(bobOwn, [], 'bob got his own message back');
            const daveOwn = dave.messages(ROOM).filter((m) => m.from?.user === 'dave');
            assert.deepEqual(daveOwn, [], 'dave got his own message back');
        });

        it('offsets are strictly +1 across publishers on both nodes, seen identically by every member', async () => {
            const publishers = [alice, carol, bob, dave];
            const start = lastOffset;
            for (let i = 0; i < 12; i++) {
                const p = publishers[i % publishers.length];
                const ack = await p.request({ type: 'publish', room: ROOM, text: `seq ${i}` });
                assert.equal(ack.type, 'ack', JSON.stringify(ack));
                assert.equal(ack.offset, start + i + 1, `publish #${i} acked offset ${ack.offset}`);
            }
            lastOffset = start + 12;
            for (const c of [alice, bob, carol, dave]) {
                // each member gets the messages of the other three publishers, in offset order
                const self = c.welcome.user;
                const expected = [];
                for (let i = 0; i < 12; i++) if (publishers[i % 4].welcome.user !== self) expected.push(start + i + 1);
                await c.next(isMessage(expected[expected.length - 1]));
                const got = c
                    .messages(ROOM)
                    .map((m) => m.offset)
                    .filter((o) => o > start);
                assert.deepEqual(got, expected, `${c.label} offsets`);
            }
            // Whole-history view per member: strictly increasing, no duplicates.
            for (const c of [alice, bob, carol, dave]) {
                const offs = c.messages(ROOM).map((m) => m.offset);
                for (let i = 1; i < offs.length; i++) assert.ok(offs[i] > offs[i - 1], `${c.label}: ${offs.join(',')}`);
            }
        });

        it('a later joiner (on either node) gets joined.offset = last offset and exactly the messages after it', async () => {
            const erin = await connect(B.url, { token: token({ sub: 'erin', name: 'Erin' }), label: 'erin@B' });
            const frank = await connect(A.url, { token: token({ sub: 'frank' }), label: 'frank@A' });
            const je = await joinRoom(erin);
            assert.equal(je.offset, lastOffset, `erin joined at ${je.offset}, last offset is ${lastOffset}`);
            assert.equal(je.epoch, epoch);
            const jf = await joinRoom(frank);
            assert.equal(jf.offset, lastOffset);
            assert.equal(jf.epoch, epoch);
            const base = lastOffset;
            const texts = ['after-1', 'after-2', 'after-3', 'after-4'];
            const pubs = [alice, carol, alice, carol];
            for (let i = 0; i < texts.length; i++) {
                const ack = await pubs[i].request({ type: 'publish', room: ROOM, text: texts[i] });
                assert.equal(ack.offset, base + i + 1);
            }
            lastOffset = base + texts.length;
            for (const c of [erin, frank]) {
                await c.next(isMessage(lastOffset));
                // a ping round trip after the last message: nothing else is queued behind it
                const pong = await c.request({ type: 'ping' });
                assert.equal(pong.type, 'pong');
                const msgs = c.messages(ROOM);
                assert.deepEqual(
                    msgs.map((m) => m.offset),
                    texts.map((_, i) => base + i + 1),
                    `${c.label} got ${msgs.map((m) => m.offset).join(',')}`,
                );
                assert.deepEqual(msgs.map((m) => m.text), texts);
                assert.deepEqual(msgs.map((m) => m.from.user), ['alice', 'carol', 'alice', 'carol']);
                assert.equal(msgs[0].from.name, 'Alice');
            }
        });

        it('a member on another room does not receive r1 messages', async () => {
            const gina = await connect(B.url, { token: token({ sub: 'gina' }), label: 'gina@B' });
            const jg = await joinRoom(gina, 'r2');
            assert.equal(jg.offset, 0, 'r2 is a fresh room');
            const ack = await alice.request({ type: 'publish', room: ROOM, text: 'r1 only' });
            lastOffset = ack.offset;
            await carol.next(isMessage(ack.offset));
            const pong = await gina.request({ type: 'ping' });
            assert.equal(pong.type, 'pong');
            assert.deepEqual(gina.messages(), []);
        });
    });
});
