// Issue 13, test 4: two gateway nodes on redis+sentinel:// (a master, a replica, three
// Sentinels). While two publishers stream 2,000 messages over 20 rooms, the master is
// SIGKILLed — after its replica was cut off for the last 300 ms, so the failover loses
// acknowledged writes. The nodes follow the promotion (+switch-master, ROLE) and publishing
// works again within 5 s of it; the same audit as the cluster failover (lib/ha_stream.mjs):
// every publish answered (`unavailable` while there is no master, never silence), every member
// holds every acked offset once and in order, or a `reset` then the new epoch; no gap,
// duplicate or reorder inside an epoch.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { startGateway, stopAll } from './lib/harness.mjs';
import { startSentinel } from './lib/redis_topology.mjs';
import { parsePrometheus } from './lib/prom.mjs';
import { audit, awaitMarks, awaitReplies, joinMembers, metricSum, publishEverywhere, readHistory, runStream, trackReplies } from './lib/ha_stream.mjs';

const ROOMS = 20;
const PER_PUBLISHER = 1000;
const RATE = 150; // per publisher and second: ~6.7 s of stream, the failover ~4 s of it
const KILL_AFTER = 500;
const CUT_MS = 300;
const BUDGETS = ['--rate', '1000', '--rate-burst', '1000', '--request-rate', '1000', '--request-burst', '1000'];


/** Resolves with the time a Sentinel announces +switch-master (the promotion), bounded. */
function switchMaster(port, timeoutMs = 20000) {
    return new Promise((resolve, reject) => {
        const sock = net.connect(port, '127.0.0.1');
        const done = (err, at) => {
            clearTimeout(timer);
            sock.destroy();
            if (err) reject(err);
            else resolve(at);
        };
        const timer = setTimeout(() => done(new Error(`no +switch-master from the Sentinel on ${port} within ${timeoutMs} ms`)), timeoutMs);
        let seen = '';
        sock.on('connect', () => sock.write('SUBSCRIBE +switch-master\r\n'));
        sock.on('data', (d) => {
            seen += d.toString('latin1');
            if (/\$\d+\r\nmymaster /.test(seen)) done(null, Date.now());
        });
        sock.on('error', (err) => done(err));
    });
}

describe('Redis Sentinel failover (issue 13 test 4)', () => {
    let setup;
    let nodes;
    const rooms = Array.from({ length: ROOMS }, (_, i) => `se-${i}`);
    let members; // [p0@n1, p1@n2, m2@n1, m3@n2]
    let replies;
    let requests;
    let probes;
    let killedAt;
    let promotedAt;
    const figures = {};

    // Hooks inside the suite: root-level ones are unreliable on Node 18.
    after(stopAll);

    before(async () => {
        setup = await startSentinel({ replicas: 1, sentinels: 3 });
        nodes = await Promise.all([1, 2].map((i) => startGateway({ redisUrl: setup.url, nodeId: `n${i}`, args: BUDGETS })));
        members = await joinMembers(nodes, rooms);
        replies = members.slice(0, 2).map(trackReplies);
    });

    /* The replica is frozen and its link cut, the master acks alone for CUT_MS and is
     * SIGKILLed, the replica is thawed (see redis_failover.test.mjs). */
    async function kill() {
        const promoted = switchMaster(setup.sentinels[0].port);
        const [replica] = setup.replicas;
        process.kill(replica.pid, 'SIGSTOP');
        try {
            await setup.call(setup.master.port, 'CLIENT', 'KILL', 'TYPE', 'replica');
            await delay(CUT_MS);
            killedAt = (await setup.killMaster()).killedAt;
        } finally {
            process.kill(replica.pid, 'SIGCONT');
        }
        await setup.waitForPromotion();
        promotedAt = await promoted;
    }

    it('streams 2,000 publishes while the master is SIGKILLed; every one is answered', async () => {
        let killing;
        requests = await runStream({
            publishers: members.slice(0, 2),
            rooms,
            perPublisher: PER_PUBLISHER,
            ratePerPublisher: RATE,
            onSent: async (n) => {
                if (n >= KILL_AFTER && !killing) killing = kill();
            },
        });
        await killing;
        await awaitReplies(requests, replies);
    });

    it('the nodes follow the promotion: publishing works again within 5 s of it', async () => {
        probes = await publishEverywhere(members[0], rooms);
        const acked = requests.filter((r) => r.sentAt > killedAt && replies[r.by].get(r.id).frame.type === 'ack');
        const firstAck = Math.min(...acked.map((r) => replies[r.by].get(r.id).at), ...probes.map((p) => p.at));
        figures.promotionMs = promotedAt - killedAt;
        figures.recoverMs = firstAck - killedAt;
        assert.ok(firstAck - promotedAt < 5000, `publishing resumed ${firstAck - promotedAt} ms after the promotion`);
        await awaitMarks(members, probes, 0);
    });

    it('members hold every acked offset once and in order, or a reset; no gap, duplicate or reorder', async () => {
        const history = await readHistory(members[2], rooms);
        const res = audit({ members, requests, replies, rooms, history, probes, failedAt: killedAt });
        // Sent while there was no master (every one answered: awaitReplies).
        const late = requests.filter((r) => r.sentAt > killedAt && r.sentAt < promotedAt);
        const unavailable = late.filter((r) => replies[r.by].get(r.id).frame.type === 'error').length;
        assert.ok(unavailable > 0, 'publishes without a master were answered unavailable');
        figures.unavailableWithoutMaster = unavailable;
        assert.ok(res.resetRooms.length > 0, 'the failover lost acknowledged writes (the replica was cut off): rooms reset');
        Object.assign(figures, res, { resetRooms: res.resetRooms.length });
    });

    it('/metrics: the failover was seen; refills and resets counted', async () => {
        for (const n of nodes) {
            const prom = parsePrometheus((await n.get('/metrics')).body);
            assert.ok(prom.value('chat_redis_failovers_total') >= 1, `${n.nodeId} saw the failover`);
            const up = prom.families.get('chat_redis_node_up').samples;
            assert.ok(up.some((s) => s.labels.role === 'master' && s.labels.node === `127.0.0.1:${setup.master.port}` && s.value === 1), JSON.stringify(up));
        }
        figures.failoversSeen = await metricSum(nodes, 'chat_redis_failovers_total', parsePrometheus);
        figures.refilled = await metricSum(nodes, 'chat_offsets_refilled_total', parsePrometheus);
        figures.epochResets = await metricSum(nodes, 'chat_epoch_resets_total', parsePrometheus);
        console.log(`# sentinel failover: ${JSON.stringify(figures)}`);
    });
});
