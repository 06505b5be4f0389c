// Issue 13, test 1: three gateway nodes on a 3-master/3-replica Redis Cluster behave as they do
// on one Redis (PROTOCOL.md §2): 30 rooms whose slots cover all three masters, members on every
// node; cross-node delivery in offset order, history, recovery with `since`, presence
// (user_joined / user_left / presence list) and direct messages to users whose channels live on
// each master. /metrics shows one chat_redis_node_up series per master and a slot map read.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, stopAll } from './lib/harness.mjs';
import { startRedisCluster } from './lib/redis_topology.mjs';
import { connect, token } from './lib/client.mjs';
import { parsePrometheus } from './lib/prom.mjs';
import { namesOnMasters, ownerOf, slotMasters } from './lib/ha_stream.mjs';

const ROOMS = 30;
// Budgets out of the way: this file checks routing, not rate limits.
const ARGS = ['--rate', '1000', '--rate-burst', '1000', '--request-rate', '1000', '--request-burst', '1000'];

describe('Redis Cluster: three nodes, three masters (issue 13 test 1)', () => {
    let cluster;
    let nodes;
    let rooms;
    let masters; // the three that own slots
    let members; // one member per node, each in every room
    const acks = new Map(); // room → [{offset, text, by}]

    before(async () => {
        cluster = await startRedisCluster({ masters: 3, replicas: 1, nodeTimeoutMs: 2000 });
        nodes = await Promise.all([1, 2, 3].map((i) => startGateway({ redisUrl: cluster.url, nodeId: `n${i}`, args: ARGS })));
        masters = slotMasters(cluster);
        rooms = namesOnMasters(masters, 'cr-', ROOMS);
        members = await Promise.all(
            nodes.map((n, i) => connect(n.url, { token: token({ sub: `m${i + 1}`, name: `M${i + 1}` }), label: `m${i + 1}@n${i + 1}` })),
        );
    });

    after(stopAll);

    it('the 30 rooms live on all three masters', () => {
        assert.equal(masters.length, 3);
        const used = new Set(rooms.map((r) => ownerOf(masters, r).port));
        assert.equal(rooms.length, ROOMS);
        assert.equal(used.size, 3, 'every master owns some of the rooms');
    });

    it('members on every node join every room in one epoch per room', async () => {
        const epochs = new Map();
        for (const c of members) {
            const joins = await Promise.all(rooms.map((room) => c.request({ type: 'join', room })));
            for (const j of joins) {
                assert.equal(j.type, 'joined', JSON.stringify(j));
                assert.equal(j.offset, 0);
                if (!epochs.has(j.room)) epochs.set(j.room, j.epoch);
                assert.equal(j.epoch, epochs.get(j.room), `one epoch for ${j.room}`);
            }
        }
    });

    it('a publish on any node reaches the members on the other nodes, in offset order', async () => {
        for (const room of rooms) acks.set(room, []);
        // Each member publishes twice in every room, all at once.
        const sends = [];
        for (const [i, c] of members.entries()) {
            for (const room of rooms) {
                for (let k = 0; k < 2; k++) {
                    const text = `${room}/${i}/${k}`;
                    sends.push(c.request({ type: 'publish', room, text }).then((a) => ({ a, text, by: i, room })));
                }
            }
        }
        for (const { a, text, by, room } of await Promise.all(sends)) {
            assert.equal(a.type, 'ack', JSON.stringify(a));
            acks.get(room).push({ offset: a.offset, text, by });
        }
        for (const room of rooms) {
            const offs = acks.get(room).map((x) => x.offset).sort((x, y) => x - y);
            assert.deepEqual(offs, [1, 2, 3, 4, 5, 6], `offsets of ${room} assigned once each`);
        }
        // Every member gets the 4 messages of the others, in order, with the acked texts.
        await Promise.all(
            members.map(async (c, i) => {
                for (const room of rooms) {
                    const expected = acks.get(room).filter((x) => x.by !== i).sort((x, y) => x.offset - y.offset);
                    const got = await c.collect((f) => f.type === 'message' && f.room === room, expected.length, 10000);
                    assert.deepEqual(got.map((f) => [f.offset, f.text]), expected.map((x) => [x.offset, x.text]), `${c.label} in ${room}`);
                }
            }),
        );
    });

    it('history from any node returns every room\'s messages, oldest first', async () => {
        for (const room of rooms) {
            const h = await members[(rooms.indexOf(room) + 1) % 3].request({ type: 'history', room });
            assert.equal(h.type, 'history', JSON.stringify(h));
            const expected = acks.get(room).sort((x, y) => x.offset - y.offset);
            assert.deepEqual(h.messages.map((m) => [m.offset, m.text]), expected.map((x) => [x.offset, x.text]), room);
        }
    });

    it('recovery: a join with `since` on another node replays what was missed, then recovered:true', async () => {
        const epochs = new Map(members[0].frames.filter((f) => f.type === 'joined').map((j) => [j.room, j.epoch]));
        const late = await Promise.all(nodes.map((n, i) => connect(n.url, { token: token({ sub: `late${i}` }), label: `late@n${i + 1}` })));
        await Promise.all(
            rooms.map(async (room, r) => {
                const c = late[r % 3];
                const joined = c.next((f) => f.type === 'joined' && f.room === room, 10000);
                c.send({ type: 'join', room, since: { offset: 2, epoch: epochs.get(room) } });
                const j = await joined;
                assert.equal(j.recovered, true, JSON.stringify(j));
                assert.equal(j.offset, 6);
                const replay = c.frames.filter((f) => f.type === 'message' && f.room === room);
                assert.deepEqual(replay.map((f) => f.offset), [3, 4, 5, 6], `${room} replayed after since`);
            }),
        );
    });

    it('presence: user_joined / user_left across nodes and the presence list, on every master', async () => {
        const perMaster = new Map();
        for (const room of rooms) if (!perMaster.has(ownerOf(masters, room).port)) perMaster.set(ownerOf(masters, room).port, room);
        assert.equal(perMaster.size, 3);
        const zed = await connect(nodes[2].url, { token: token({ sub: 'zed', name: 'Zed' }), label: 'zed@n3' });
        for (const room of perMaster.values()) {
            assert.equal((await zed.request({ type: 'join', room })).type, 'joined');
            for (const c of members.slice(0, 2)) {
                const uj = await c.next((f) => f.type === 'user_joined' && f.room === room && f.user === 'zed');
                assert.equal(uj.name, 'Zed');
            }
            const p = await members[0].request({ type: 'presence', room });
            const expected = ['m1', 'm2', 'm3', 'zed', `late${rooms.indexOf(room) % 3}`].sort();
            assert.deepEqual(p.users.map((u) => u.user).sort(), expected, `presence of ${room}`);
            assert.ok(p.users.some((u) => u.user === 'zed' && u.name === 'Zed'), JSON.stringify(p));
            assert.equal((await zed.request({ type: 'leave', room })).type, 'left');
            for (const c of members.slice(0, 2)) await c.next((f) => f.type === 'user_left' && f.room === room && f.user === 'zed');
            const q = await members[1].request({ type: 'presence', room });
            assert.ok(!q.users.some((u) => u.user === 'zed'), `zed gone from ${room}: ${JSON.stringify(q)}`);
        }
    });

    it('direct messages reach every connection of users whose channels live on each master', async () => {
        const users = namesOnMasters(masters, 'du', 3);
        assert.equal(new Set(users.map((u) => ownerOf(masters, u).port)).size, 3);
        const sender = await connect(nodes[0].url, { token: token({ sub: 'sender' }), label: 'sender@n1' });
        for (const user of users) {
            // Two connections of the target, on nodes 2 and 3.
            const [a, b] = await Promise.all([1, 2].map((i) => connect(nodes[i].url, { token: token({ sub: user }), label: `${user}@n${i + 1}` })));
            // A user channel is subscribed shortly after the handshake: send until both receive.
            const deadline = Date.now() + 5000;
            for (let k = 0; ; k++) {
                const ack = await sender.request({ type: 'direct', to: user, text: `hello-${k}` });
                assert.equal(ack.type, 'ack', JSON.stringify(ack));
                const got = await Promise.all([a, b].map((c) => c.next((f) => f.type === 'direct' && f.text === `hello-${k}`, 300).catch(() => null)));
                if (got.every(Boolean)) {
                    assert.equal(got[0].from.user, 'sender');
                    assert.equal(got[0].to, user);
                    break;
                }
                assert.ok(Date.now() < deadline, `no direct reached both connections of ${user} within 5 s`);
            }
            await Promise.all([a.close(), b.close()]);
        }
    });

    it('/metrics: chat_redis_node_up per master with its role, slot map read', async () => {
        const masterAddrs = masters.map((m) => `127.0.0.1:${m.port}`).sort();
        for (const n of nodes) {
            const res = await n.get('/metrics');
            assert.equal(res.status, 200);
            const prom = parsePrometheus(res.body);
            const up = prom.families.get('chat_redis_node_up').samples;
            const masters = up.filter((s) => s.labels.role === 'master');
            assert.deepEqual(masters.map((s) => s.labels.node).sort(), masterAddrs, `${n.nodeId}: ${JSON.stringify(up)}`);
            assert.ok(masters.every((s) => s.value === 1), JSON.stringify(masters));
            assert.ok(prom.value('chat_redis_slot_map_refreshes_total') > 0);
        }
    });
});
