// PROTOCOL.md §2 request budgets (issue 11): typing, presence, history, read and unread draw
// from a bucket of 10/s (burst 20), join and leave from one of 20/s (burst 200); over budget a
// request gets rate_limited (typing is dropped silently) and counts toward the abuse limit
// (1008 after 100 in 10 s). typing state:false is relayed only when it ends a relayed
// state:true. Members must not be flooded by one client's churn.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster, stopAll } from './lib/harness.mjs';
import { connect, token } from './lib/client.mjs';

let A;
let B;

before(async () => {
    const cluster = await startCluster({ nodes: 2 });
    [A, B] = cluster.nodes;
});

after(stopAll);

async function members(room, n) {
    const out = [];
    for (let i = 0; i < n; i++) {
        const c = await connect((i % 2 ? B : A).url, { token: token({ sub: `m${i}-${room}` }) });
        assert.equal((await c.request({ type: 'join', room })).type, 'joined');
        out.push(c);
    }
    return out;
}

/* Waits until a marker published by `via` reached every member: everything sent before the
 * marker has been delivered by then (one room, one order). */
async function settle(room, via, ms) {
    const text = `marker-${Date.now()}`;
    assert.equal((await via.request({ type: 'publish', room, text })).type, 'ack');
    const others = ms.filter((m) => m !== via); /* a sender gets its ack, not its message */
    await Promise.all(others.map((m) => m.next((f) => f.type === 'message' && f.text === text, 8000)));
}

describe('typing', () => {
    it('2,000 state:false frames with nothing to end reach nobody; the flooder is closed 1008', async () => {
        const room = 'typing-flood';
        const ms = await members(room, 5);
        const flooder = await connect(A.url, { token: token({ sub: 'flooder' }) });
        await flooder.request({ type: 'join', room });
        const done = flooder.closedWithin(8000);
        for (let i = 0; i < 2000; i++) flooder.send({ type: 'typing', room, state: false });
        assert.equal((await done).code, 1008);
        await settle(room, ms[0], ms);
        for (const m of ms) assert.equal(m.frames.filter((f) => f.type === 'typing').length, 0);
    });

    it('true then false reaches the others once each; a message ends typing without using the throttle', async () => {
        const room = 'typing-ok';
        const ms = await members(room, 3);
        const t = await connect(A.url, { token: token({ sub: 'typist' }) });
        await t.request({ type: 'join', room });
        t.send({ type: 'typing', room, state: true });
        t.send({ type: 'typing', room, state: true }); /* inside the throttle window: dropped */
        t.send({ type: 'typing', room, state: false });
        t.send({ type: 'typing', room, state: false }); /* nothing left to end: dropped */
        assert.equal((await t.request({ type: 'publish', room, text: 'sent' })).type, 'ack');
        t.send({ type: 'typing', room, state: true }); /* right after sending: relayed */
        await settle(room, t, ms);
        const last = `after-${Date.now()}`;
        await t.request({ type: 'publish', room, text: last });
        await Promise.all(ms.map((m) => m.next((f) => f.type === 'message' && f.text === last)));
        for (const m of ms) {
            const states = m.frames.filter((f) => f.type === 'typing' && f.user === 'typist').map((f) => f.state);
            assert.deepEqual(states, [true, false, true]);
        }
    });
});

describe('join and leave churn', () => {
    it('300 join/leave pairs: at most the burst is announced, the rest is rate_limited', async () => {
        const room = 'churn';
        const ms = await members(room, 4);
        const churner = await connect(A.url, { token: token({ sub: 'churner' }) });
        const done = churner.closedWithin(10000);
        for (let i = 0; i < 300; i++) {
            churner.send({ type: 'join', room, id: `j${i}` });
            churner.send({ type: 'leave', room, id: `l${i}` });
        }
        assert.equal((await done).code, 1008, 'persistent churn hits the abuse limit');
        assert.ok(churner.frames.some((f) => f.type === 'error' && f.code === 'rate_limited'));
        await settle(room, ms[0], ms);
        for (const m of ms) {
            const joins = m.frames.filter((f) => f.type === 'user_joined' && f.user === 'churner').length;
            assert.ok(joins <= 101, `${m.label} saw ${joins} user_joined`);
        }
    });
});

describe('request bucket', () => {
    it('presence over 20 at once gets rate_limited', async () => {
        const room = 'presence-flood';
        const c = await connect(A.url, { token: token({ sub: 'pflood' }) });
        await c.request({ type: 'join', room });
        const replies = await Promise.all(
            Array.from({ length: 40 }, (_, i) => c.request({ type: 'presence', room, id: `p${i}` })),
        );
        const ok = replies.filter((r) => r.type === 'presence').length;
        const limited = replies.filter((r) => r.code === 'rate_limited').length;
        assert.ok(ok >= 20 && ok <= 22, `${ok} answered`);
        assert.equal(ok + limited, 40);
        await c.close();
    });
});
