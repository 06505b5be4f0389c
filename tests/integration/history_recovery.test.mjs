// PROTOCOL.md §2: `history` returns a room's stored messages (oldest first, limit/before), and
// `join` with `since {offset, epoch}` replays exactly the missed messages, in order, then
// `joined` with recovered:true — gap-free and duplicate-free even while the room keeps getting
// new messages; a different epoch (history lost in Redis) answers recovered:false.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { redisCommand, startCluster, stopAll } from './lib/harness.mjs';
import { connect, token } from './lib/client.mjs';

let cluster;
let A;
let B;

before(async () => {
    // Rate limits lifted: the continuous-publishing test publishes as fast as acks come back.
    cluster = await startCluster({ nodes: 2, args: ['--rate', '100000', '--rate-burst', '100000'] });
    [A, B] = cluster.nodes;
});

after(stopAll);


const open = (node, sub) => connect(node.url, { token: token({ sub, name: sub.toUpperCase() }), label: sub });

async function publishN(client, room, n, prefix = 'm') {
    const acks = [];
    for (let i = 0; i < n; i++) acks.push(await client.request({ type: 'publish', room, text: `${prefix}${i}` }));
    for (const a of acks) assert.equal(a.type, 'ack', JSON.stringify(a));
    return acks;
}

describe('history', () => {
    it('returns the newest messages oldest first, honours limit and before', async () => {
        const room = 'hist-1';
        const p = await open(A, 'hp');
        const r = await open(B, 'hr');
        assert.equal((await p.request({ type: 'join', room })).type, 'joined');
        assert.equal((await r.request({ type: 'join', room })).type, 'joined');
        await publishN(p, room, 6);

        const all = await r.request({ type: 'history', room });
        assert.equal(all.type, 'history');
        assert.equal(all.room, room);
        assert.deepEqual(all.messages.map((m) => m.offset), [1, 2, 3, 4, 5, 6]);
        assert.deepEqual(all.messages.map((m) => m.text), ['m0', 'm1', 'm2', 'm3', 'm4', 'm5']);
        for (const m of all.messages) {
            assert.equal(m.type, 'message');
            assert.equal(m.from.user, 'hp');
            assert.equal(typeof m.ts, 'number');
        }
        const newest = await r.request({ type: 'history', room, limit: 2 });
        assert.deepEqual(newest.messages.map((m) => m.offset), [5, 6]);
        const older = await r.request({ type: 'history', room, limit: 2, before: 5 });
        assert.deepEqual(older.messages.map((m) => m.offset), [3, 4]);
        const none = await r.request({ type: 'history', room, before: 1 });
        assert.deepEqual(none.messages, []);
    });

    it('needs the room to be joined', async () => {
        const c = await open(A, 'hx');
        const e = await c.request({ type: 'history', room: 'hist-other' });
        assert.equal(e.type, 'error');
        assert.equal(e.code, 'not_joined');
    });
});

describe('recovery', () => {
    it('replays exactly the missed messages, then joined recovered:true', async () => {
        const room = 'rec-1';
        const p = await open(A, 'rp');
        let r = await open(B, 'rr');
        assert.equal((await p.request({ type: 'join', room })).type, 'joined');
        const j = await r.request({ type: 'join', room });
        await publishN(p, room, 3);
        const seen = await r.collect((f) => f.type === 'message' && f.room === room, 3);
        assert.deepEqual(seen.map((m) => m.offset), [1, 2, 3]);
        await r.close();
        await publishN(p, room, 4, 'late');

        r = await open(B, 'rr');
        const jid = 'rejoin';
        r.send({ type: 'join', room, id: jid, since: { offset: 3, epoch: j.epoch } });
        const joined = await r.next((f) => f.type === 'joined' && f.id === jid);
        assert.equal(joined.recovered, true);
        assert.equal(joined.offset, 7);
        assert.equal(joined.epoch, j.epoch);
        const replay = r.frames.filter((f) => f.type === 'message' && f.room === room);
        assert.deepEqual(replay.map((m) => m.offset), [4, 5, 6, 7]);
        assert.deepEqual(replay.map((m) => m.text), ['late0', 'late1', 'late2', 'late3']);
        // replayed frames come before `joined`
        const idxJoined = r.frames.indexOf(joined);
        assert.ok(r.frames.indexOf(replay[3]) < idxJoined);
        // and the live stream continues after it
        await publishN(p, room, 1, 'live');
        const live = await r.next((f) => f.type === 'message' && f.room === room && f.offset === 8);
        assert.equal(live.text, 'live0');
    });

    it('answers recovered:false (no replay) for another epoch', async () => {
        const room = 'rec-2';
        const p = await open(A, 'ep');
        assert.equal((await p.request({ type: 'join', room })).type, 'joined');
        await publishN(p, room, 2);
        const r = await open(B, 'er');
        const joined = await r.request({ type: 'join', room, since: { offset: 1, epoch: 'not-the-epoch' } });
        assert.equal(joined.type, 'joined');
        assert.equal(joined.recovered, false);
        assert.equal(joined.offset, 2);
        assert.equal(r.messages(room).length, 0);
    });

    it('is gap-free and duplicate-free while the room keeps publishing', async () => {
        const room = 'rec-live';
        const TOTAL = 400;
        const p = await open(A, 'cp');
        const j0 = await p.request({ type: 'join', room });
        const epoch = j0.epoch;

        // Publish continuously (each publish waits for its ack) while readers on both nodes
        // disconnect and rejoin with `since` several times.
        let published = 0;
        const publisher = (async () => {
            for (; published < TOTAL; published++) {
                const a = await p.request({ type: 'publish', room, text: `c${published}` }, 10000);
                assert.equal(a.type, 'ack');
            }
        })();

        async function reader(node, sub, rejoins) {
            const got = [];
            let last = 0;
            for (let round = 0; round <= rejoins; round++) {
                const c = await open(node, `${sub}`);
                const req = { type: 'join', room, id: `j${round}` };
                if (round > 0) req.since = { offset: last, epoch };
                c.send(req);
                const joined = await c.next((f) => f.type === 'joined' && f.id === `j${round}`, 10000);
                if (round > 0) assert.equal(joined.recovered, true, `round ${round}: ${JSON.stringify(joined)}`);
                // Everything before `joined` is the replay; take a few live ones after it.
                const target = Math.min(TOTAL, joined.offset + 25);
                if (round === rejoins) {
                    await c.next((f) => f.type === 'message' && f.offset === TOTAL, 20000);
                } else if (joined.offset < TOTAL) {
                    await c.next((f) => f.type === 'message' && f.offset >= target, 20000);
                }
                const msgs = c.messages(room).map((m) => m.offset);
                got.push(...msgs);
                if (msgs.length) last = msgs[msgs.length - 1];
                else last = Math.max(last, joined.offset);
                await c.close();
            }
            return got;
        }

        const [g1, g2] = await Promise.all([reader(A, 'ra', 4), reader(B, 'rb', 4), publisher]);
        const expected = Array.from({ length: TOTAL }, (_, i) => i + 1);
        for (const [name, got] of [['node A reader', g1], ['node B reader', g2]]) {
            // Offsets form 1..TOTAL exactly once each, in order — except that the very first
            // connection starts at its joined.offset, so compare from the first offset seen.
            const start = got[0];
            assert.deepEqual(got, expected.slice(start - 1), `${name} saw a gap or a duplicate`);
        }
    });

    it('after Redis lost the history: recovered:false, new epoch, members keep receiving', async () => {
        const room = 'rec-flush';
        const p = await open(A, 'fp');
        const r = await open(B, 'fr');
        const j = await p.request({ type: 'join', room });
        assert.equal((await r.request({ type: 'join', room })).type, 'joined');
        await publishN(p, room, 2);
        await r.collect((f) => f.type === 'message' && f.room === room, 2);

        assert.equal(await redisCommand(cluster.redis.port, 'FLUSHALL'), '+OK');
        const acks = await publishN(p, room, 1, 'after-flush');
        assert.equal(acks[0].offset, 1, 'offsets restart from 1 after the history is lost');
        const m = await r.next((f) => f.type === 'message' && f.room === room && f.text === 'after-flush0');
        assert.equal(m.offset, 1);

        const late = await open(B, 'fl');
        const joined = await late.request({ type: 'join', room, since: { offset: 2, epoch: j.epoch } });
        assert.equal(joined.recovered, false);
        assert.notEqual(joined.epoch, j.epoch);
    });
});
