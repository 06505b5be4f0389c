// PROTOCOL.md §2/§5: presence is cluster-wide and keyed by user. user_joined goes to the other
// members when a user's first connection enters a room (on any node), user_left when the last
// one leaves; neither goes to the connection that caused it. `presence` lists the users. A node
// killed with SIGKILL leaves no ghosts: its users get user_left within two heartbeat periods
// plus 3 s and vanish from presence.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster, startGateway, stopAll } from './lib/harness.mjs';
import { connect, token } from './lib/client.mjs';

const HEARTBEAT = 1;
let cluster;
let A;
let B;

before(async () => {
    cluster = await startCluster({ nodes: 2, args: ['--heartbeat', String(HEARTBEAT)] });
    [A, B] = cluster.nodes;
});

after(stopAll);

const open = (node, sub) =>
    connect(node.url, { token: token({ sub, name: sub.toUpperCase() }), label: `${sub}@${node.port}` });

const presenceOf = async (c, room) => {
    const p = await c.request({ type: 'presence', room });
    assert.equal(p.type, 'presence', JSON.stringify(p));
    assert.equal(p.room, room);
    return p.users.map((u) => u.user).sort();
};

describe('presence', () => {
    it('announces a user once per room, whatever their number of connections and nodes', async () => {
        const room = 'pres-1';
        const alice = await open(A, 'alice');
        assert.equal((await alice.request({ type: 'join', room })).type, 'joined');
        const bob1 = await open(B, 'bob');
        assert.equal((await bob1.request({ type: 'join', room })).type, 'joined');

        const uj = await alice.next((f) => f.type === 'user_joined' && f.user === 'bob');
        assert.equal(uj.room, room);
        assert.equal(uj.name, 'BOB');
        assert.equal(typeof uj.ts, 'number');

        // bob's second connection, on the other node: no second user_joined.
        const bob2 = await open(A, 'bob');
        assert.equal((await bob2.request({ type: 'join', room })).type, 'joined');
        assert.deepEqual(await presenceOf(alice, room), ['alice', 'bob']);
        const p = await bob1.request({ type: 'presence', room });
        assert.deepEqual(p.users.find((u) => u.user === 'alice'), { user: 'alice', name: 'ALICE' });

        // First of bob's connections leaves: bob is still there.
        assert.equal((await bob1.request({ type: 'leave', room })).type, 'left');
        assert.deepEqual(await presenceOf(alice, room), ['alice', 'bob']);
        // Last one leaves: user_left to alice.
        assert.equal((await bob2.request({ type: 'leave', room })).type, 'left');
        const ul = await alice.next((f) => f.type === 'user_left' && f.user === 'bob');
        assert.equal(ul.room, room);
        assert.equal(typeof ul.ts, 'number');
        assert.deepEqual(await presenceOf(alice, room), ['alice']);

        const joinedFrames = alice.frames.filter((f) => f.type === 'user_joined' && f.user === 'bob');
        assert.equal(joinedFrames.length, 1, 'bob was announced more than once');
        for (const c of [bob1, bob2]) {
            assert.equal(c.frames.filter((f) => f.type === 'user_joined' && f.user === 'bob').length, 0);
        }
    });

    it('closing a connection counts as leaving', async () => {
        const room = 'pres-2';
        const alice = await open(A, 'alice2');
        const carl = await open(B, 'carl');
        assert.equal((await alice.request({ type: 'join', room })).type, 'joined');
        assert.equal((await carl.request({ type: 'join', room })).type, 'joined');
        await alice.next((f) => f.type === 'user_joined' && f.user === 'carl');
        await carl.close();
        await alice.next((f) => f.type === 'user_left' && f.user === 'carl');
    });

    it('a node killed with SIGKILL leaves no ghost', async () => {
        const room = 'pres-ghost';
        const doomed = await startGateway({ redisPort: cluster.redis.port, nodeId: 'doomed', heartbeat: HEARTBEAT });
        const alice = await open(A, 'alice3');
        assert.equal((await alice.request({ type: 'join', room })).type, 'joined');
        const dave = await open(doomed, 'dave');
        assert.equal((await dave.request({ type: 'join', room })).type, 'joined');
        await alice.next((f) => f.type === 'user_joined' && f.user === 'dave');
        assert.deepEqual(await presenceOf(alice, room), ['alice3', 'dave']);

        const t0 = Date.now();
        await doomed.kill('SIGKILL');
        const limitMs = 2 * HEARTBEAT * 1000 + 3000;
        const ul = await alice.next((f) => f.type === 'user_left' && f.user === 'dave', limitMs + 2000);
        const took = Date.now() - t0;
        assert.ok(took <= limitMs, `user_left after ${took} ms, allowed ${limitMs} ms`);
        assert.equal(ul.room, room);
        assert.deepEqual(await presenceOf(alice, room), ['alice3']);
        // Online status (any room): dave's node is gone, so dave is offline.
        const st = await alice.request({ type: 'presence', user: 'dave' });
        assert.deepEqual({ user: st.user, online: st.online }, { user: 'dave', online: false });
    });

    it('tells whether a user is online anywhere in the cluster', async () => {
        const asker = await open(A, 'asker');
        const st = await asker.request({ type: 'presence', user: 'frida' });
        assert.equal(st.type, 'presence');
        assert.equal(st.user, 'frida');
        assert.equal(st.online, false);
        const frida = await open(B, 'frida');
        // The node subscribes to frida's channel as she connects (asynchronously): bounded poll.
        const deadline = Date.now() + 5000;
        let online = false;
        while (!online && Date.now() < deadline) online = (await asker.request({ type: 'presence', user: 'frida' })).online;
        assert.equal(online, true);
        await frida.close();
        let still = true;
        const deadline2 = Date.now() + 5000;
        while (still && Date.now() < deadline2) still = (await asker.request({ type: 'presence', user: 'frida' })).online;
        assert.equal(still, false);
    });

    it('needs the room to be joined', async () => {
        const c = await open(A, 'erin');
        const e = await c.request({ type: 'presence', room: 'pres-x' });
        assert.equal(e.type, 'error');
        assert.equal(e.code, 'not_joined');
    });
});
