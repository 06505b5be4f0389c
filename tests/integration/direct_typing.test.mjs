// PROTOCOL.md §2: `direct` reaches every connection of the target user on every node and the
// sender's other connections (never the sending connection), acked with id and ts; `typing` is
// relayed to the room's other connections, state:true throttled per --typing-interval (extra
// ones dropped, not delayed), state:false always relayed, never stored.
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

const open = (node, sub, label) =>
    connect(node.url, { token: token({ sub, name: sub.toUpperCase() }), label: label || `${sub}@${node.port}` });

/* Sends directs from x to its own user until y (same user, other node) receives one; bounded. */
async function waitDelivered(x, y, text) {
    const deadline = Date.now() + 5000;
    for (let i = 0; Date.now() < deadline; i++) {
        assert.equal((await x.request({ type: 'direct', to: x.welcome.user, text: `${text}-${i}` })).type, 'ack');
        try {
            await y.next((f) => f.type === 'direct' && f.text === `${text}-${i}`, 200);
            return;
        } catch {
            /* not subscribed yet: try again */
        }
    }
    throw new Error(`no direct reached ${y.label} within 5 s`);
}

describe('direct', () => {
    it('reaches every connection of the target on both nodes and the sender\'s other connections', async () => {
        const alice1 = await open(A, 'alice');
        const alice2 = await open(B, 'alice');
        const bob1 = await open(A, 'bob');
        const bob2 = await open(B, 'bob');
        const carol = await open(B, 'carol');
        // User channels are subscribed when a user's first connection on a node arrives. Barrier:
        // a direct to oneself from each node reaches the connection on the other node only once
        // that node's subscription is live.
        for (const [x, y] of [[alice1, alice2], [alice2, alice1], [bob1, bob2], [bob2, bob1]]) {
            const text = `sync-${Math.random()}`;
            await waitDelivered(x, y, text);
        }

        const ack = await alice1.request({ type: 'direct', to: 'bob', text: 'hi bob', id: 'd1' });
        assert.equal(ack.type, 'ack');
        assert.equal(ack.id, 'd1');
        assert.equal(typeof ack.ts, 'number');
        assert.equal(ack.room, undefined);

        const isDirect = (f) => f.type === 'direct' && f.text === 'hi bob';
        for (const c of [bob1, bob2, alice2]) {
            const d = await c.next(isDirect);
            assert.equal(d.from.user, 'alice');
            assert.equal(d.from.name, 'ALICE');
            assert.equal(d.to, 'bob');
            assert.equal(typeof d.ts, 'number');
        }
        // barrier: a second direct reaches bob1; by then the first would have reached everyone
        await alice1.request({ type: 'direct', to: 'bob', text: 'second' });
        await bob1.next((f) => f.type === 'direct' && f.text === 'second');
        await alice2.next((f) => f.type === 'direct' && f.text === 'second');
        assert.equal(
            alice1.frames.filter((f) => f.type === 'direct' && !f.text.startsWith('sync-')).length,
            0,
            'sender got its own direct',
        );
        assert.equal(carol.frames.filter((f) => f.type === 'direct').length, 0, 'a bystander got a direct');
    });

    it('rejects reserved and malformed targets', async () => {
        const c = await open(A, 'dave');
        const e1 = await c.request({ type: 'direct', to: '@server', text: 'x' });
        assert.equal(e1.type, 'error');
        assert.equal(e1.code, 'bad_request');
        const e2 = await c.request({ type: 'direct', text: 'no target' });
        assert.equal(e2.code, 'bad_request');
    });
});

describe('typing', () => {
    it('relays to the other connections of the room, throttles state:true, always relays state:false', async () => {
        const room = 'typing-1';
        const erin1 = await open(A, 'erin');
        const erin2 = await open(B, 'erin');
        const frank = await open(B, 'frank');
        for (const c of [erin1, erin2, frank]) assert.equal((await c.request({ type: 'join', room })).type, 'joined');

        erin1.send({ type: 'typing', room, state: true });
        const t = await frank.next((f) => f.type === 'typing');
        assert.deepEqual(t, { type: 'typing', room, user: 'erin', state: true });
        await erin2.next((f) => f.type === 'typing' && f.state === true);

        // Inside the throttle window: a second state:true is dropped, state:false goes through.
        erin1.send({ type: 'typing', room, state: true });
        erin1.send({ type: 'typing', room, state: false });
        const next = await frank.next((f) => f.type === 'typing');
        assert.equal(next.state, false, 'the throttled state:true was relayed');
        await erin2.next((f) => f.type === 'typing' && f.state === false);
        assert.equal(erin1.frames.filter((f) => f.type === 'typing').length, 0, 'sender got its own typing');

        // Never stored: history holds no typing.
        const h = await frank.request({ type: 'history', room });
        assert.equal(h.type, 'history');
        assert.deepEqual(h.messages, []);
    });

    it('needs the room to be joined', async () => {
        const c = await open(A, 'gina');
        c.send({ type: 'typing', room: 'typing-x', state: true, id: 't1' });
        const e = await c.next((f) => f.id === 't1');
        assert.equal(e.type, 'error');
        assert.equal(e.code, 'not_joined');
    });
});
