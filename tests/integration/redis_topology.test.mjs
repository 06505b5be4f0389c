// Self-test of lib/redis_topology.mjs, the Redis Cluster / Sentinel fixtures of the failover
// tests (issue 13): each topology comes up from real redis-server / redis-sentinel processes,
// a slot with keys in it moves to another master (IMPORTING/MIGRATING + MIGRATE), a master is
// SIGKILLed and its replica takes over with the data, and the URLs the gateway will be given
// have the documented shape. No gateway is involved.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { stopAll } from './lib/harness.mjs';
import { RedisError, SLOTS, keySlot, redisCall, startRedisCluster, startSentinel } from './lib/redis_topology.mjs';

after(stopAll);

describe('startRedisCluster', () => {
    let cluster;

    it('forms 3 masters with one replica each, every slot served', async () => {
        cluster = await startRedisCluster({ masters: 3, replicas: 1, nodeTimeoutMs: 1000 });
        const masters = cluster.nodes.filter((n) => n.role === 'master');
        const replicas = cluster.nodes.filter((n) => n.role === 'replica');
        assert.equal(masters.length, 3);
        assert.equal(replicas.length, 3);
        for (const r of replicas) assert.ok(masters.some((m) => m.id === r.masterId), `replica ${r.port} follows a master`);
        const slots = masters.reduce((n, m) => n + m.slots.reduce((k, [a, b]) => k + b - a + 1, 0), 0);
        assert.equal(slots, SLOTS);
        assert.ok(cluster.nodes.every((n) => n.pid > 0));
        assert.equal(cluster.url, `redis+cluster://${masters.map((m) => `127.0.0.1:${m.port}`).join(',')}`);
        assert.deepEqual(cluster.seeds, masters.map((m) => `127.0.0.1:${m.port}`));
    });

    it('computes key slots as Redis does (hash tags included)', async () => {
        const port = cluster.nodes[0].port;
        for (const key of ['room-1', '{room-1}:seq', 'chat:{general}:stream', 'a{}b', '{}x', 'é{ü}']) {
            assert.equal(keySlot(key), await redisCall(port, ['CLUSTER', 'KEYSLOT', key]), key);
        }
    });

    it('moves a slot with its keys to another master', async () => {
        const tag = '{reshard-room}';
        const slot = keySlot(tag);
        const from = await cluster.ownerOf(slot);
        for (let i = 0; i < 250; i++) await cluster.call(from.port, 'SET', `${tag}:k${i}`, `v${i}`);
        const to = cluster.nodes.find((n) => n.role === 'master' && n.id !== from.id);
        let batches = 0;
        const res = await cluster.reshardSlot(slot, to.port, { batch: 100, betweenBatches: async () => batches++ });
        assert.equal(res.moved, 250);
        assert.equal(batches, 3);
        assert.equal(res.to.id, to.id);
        assert.equal((await cluster.ownerOf(slot)).id, to.id);
        assert.equal(await cluster.call(to.port, 'GET', `${tag}:k249`), 'v249');
        await assert.rejects(cluster.call(from.port, 'GET', `${tag}:k0`), (err) => err instanceof RedisError && /^MOVED \d+ 127\.0\.0\.1:/.test(err.message));
    });

    it('kills the master of a slot and sees its replica take over with the data', async () => {
        const tag = '{reshard-room}';
        const slot = keySlot(tag);
        const owner = await cluster.ownerOf(slot);
        // The replica has every key before the kill, so the failover cannot lose them.
        assert.equal(await cluster.call(owner.port, 'WAIT', 1, 2000), 1);
        const killed = await cluster.killMaster(slot);
        assert.equal(killed.port, owner.port);
        const { master, ms } = await cluster.waitForFailover();
        console.log(`# cluster failover took ${ms} ms (cluster-node-timeout 1000)`);
        assert.notEqual(master.port, owner.port);
        assert.equal((await cluster.ownerOf(slot)).port, master.port);
        assert.equal(await cluster.call(master.port, 'GET', `${tag}:k7`), 'v7');
        assert.equal(await cluster.call(master.port, 'SET', `${tag}:after`, '1'), 'OK');
    });

    it('brings the killed node back as a replica', async () => {
        const { port } = cluster.lastKilled;
        await cluster.restartNode(port);
        const back = cluster.nodes.find((n) => n.port === port);
        assert.equal(back.role, 'replica');
        assert.equal(back.failed, false);
    });
});

describe('startSentinel', () => {
    let setup;

    it('starts a master, a replica and three Sentinels that know each other', async () => {
        setup = await startSentinel({ replicas: 1, sentinels: 3 });
        assert.equal(setup.sentinels.length, 3);
        assert.equal(setup.url, `redis+sentinel://${setup.sentinels.map((s) => `127.0.0.1:${s.port}`).join(',')}/mymaster`);
        assert.equal(await setup.agreedMaster(), setup.master.port);
        assert.equal((await setup.call(setup.replicas[0].port, 'ROLE'))[0], 'slave');
    });

    it('promotes the replica when the master is SIGKILLed, with the data', async () => {
        const old = setup.master.port;
        const heir = setup.replicas[0].port;
        await setup.call(old, 'SET', 'before-failover', 'kept');
        assert.equal(await setup.call(old, 'WAIT', 1, 2000), 1);
        await setup.killMaster();
        const { master, ms } = await setup.waitForPromotion();
        console.log(`# sentinel promotion took ${ms} ms (down-after 2000 ms)`);
        assert.equal(master.port, heir);
        assert.deepEqual(setup.replicas, [], 'the old master is down, the replica is master');
        assert.equal(await setup.call(master.port, 'GET', 'before-failover'), 'kept');
    });

    it('brings the old master back as a replica of the new one, with the data', async () => {
        const old = setup.lastKilled.port;
        await setup.restartNode(old);
        const role = await setup.call(old, 'ROLE');
        assert.deepEqual([role[0], Number(role[2]), role[3]], ['slave', setup.master.port, 'connected']);
        assert.equal(await setup.call(old, 'GET', 'before-failover'), 'kept');
    });
});
