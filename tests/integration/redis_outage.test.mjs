// Issue 4, Redis outages (PROTOCOL.md §3/§5): Redis is killed (SIGKILL) and restarted on the same
// port three times under two gateway nodes with joined members. During each outage a publish is
// answered `unavailable` (never silence, and nothing of it is delivered later), /readyz is 503
// and new handshakes get 503; after each restart /readyz is 200 again and delivery resumes across
// nodes for the members already joined, without rejoining (the nodes resubscribe), with offsets
// continuing where they were (this Redis keeps its data in an AOF). After the last cycle each
// node's fd count and RSS are back near where they were. Finally Redis comes back empty (history
// lost): connected members keep receiving the rooms' new messages, offsets restarting from 1.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { outputDir, startGateway, startRedis, stopAll } from './lib/harness.mjs';
import { connect, handshake, token } from './lib/client.mjs';
import { fdCount, fdTargets, pollUntil, rssKiB } from './lib/proc.mjs';

const CYCLES = 3;
// How long each outage lasts beyond the checks: the second one outlasts the 2 s backoff cap, so
// the nodes go through several failed reconnection attempts.
const EXTRA_DOWN_MS = [0, 3000, 1000];
const FD_SLACK = 2;
const RSS_SLACK_KIB = 8 * 1024;

let redis;
let dataDir;
let A;
let B;
let a1; // on A: ro1, ro2
let a2; // on A: ro2
let b1; // on B: ro1
let b2; // on B: ro2
const acked = { ro1: [], ro2: [] }; // offsets acknowledged, in publish order
const refused = new Set(); // texts answered `unavailable`: must never be delivered
const baseline = {};

before(async () => {
    dataDir = path.join(outputDir(), 'redis-data');
    fs.mkdirSync(dataDir, { recursive: true });
    redis = await startRedis({ args: ['--appendonly', 'yes', '--appendfsync', 'always', '--dir', dataDir] });
    const args = ['--rate', '100000', '--rate-burst', '100000'];
    // heartbeat 60: liveness is not under test here and must not close the idle receivers.
    [A, B] = await Promise.all([
        startGateway({ redisPort: redis.port, nodeId: 'oa', args, heartbeat: 60 }),
        startGateway({ redisPort: redis.port, nodeId: 'ob', args, heartbeat: 60 }),
    ]);
    const mk = (node, sub) => connect(node.url, { token: token({ sub }), label: `${sub}@${node.nodeId}` });
    [a1, a2, b1, b2] = await Promise.all([mk(A, 'a1'), mk(A, 'a2'), mk(B, 'b1'), mk(B, 'b2')]);
    for (const [c, room] of [
        [a1, 'ro1'],
        [a1, 'ro2'],
        [a2, 'ro2'],
        [b1, 'ro1'],
        [b2, 'ro2'],
    ]) {
        const j = await c.request({ type: 'join', room });
        assert.equal(j.type, 'joined', `${c.label} join ${room}: ${JSON.stringify(j)}`);
    }
});

after(stopAll);

const members = () => ({ ro1: [a1, b1], ro2: [a1, a2, b2] });

/** Publishes text to room from c (must be acked) and waits until every other member has it. */
async function publishAndDeliver(c, room, text) {
    const ack = await c.request({ type: 'publish', room, text }, 5000);
    assert.equal(ack.type, 'ack', `${c.label} publish to ${room}: ${JSON.stringify(ack)}`);
    acked[room].push(ack.offset);
    for (const m of members()[room]) {
        if (m === c) continue;
        const msg = await m.next((f) => f.type === 'message' && f.room === room && f.offset === ack.offset, 8000);
        assert.equal(msg.text, text, `${m.label} got offset ${ack.offset} with another text`);
    }
    return ack.offset;
}

/** Publishes until the answer is `unavailable` (an `ack` is acceptable only until the node has
 * noticed the loss); bounded to 10 s. */
async function publishUntilUnavailable(c, room, tag) {
    const deadline = Date.now() + 10000;
    const answers = [];
    for (let i = 0; Date.now() < deadline; i++) {
        const text = `${tag} down ${i}`;
        const reply = await c.request({ type: 'publish', room, text }, 3000);
        answers.push(reply);
        if (reply.type === 'error') {
            assert.equal(reply.code, 'unavailable', `while Redis is down: ${JSON.stringify(reply)}`);
            refused.add(text);
            return reply;
        }
        assert.equal(reply.type, 'ack', `while Redis is down: ${JSON.stringify(reply)}`);
        acked[room].push(reply.offset);
        await delay(100); // pacing between attempts
    }
    assert.fail(`${c.label}: no 'unavailable' within 10 s of killing Redis; answers: ${JSON.stringify(answers.slice(-3))}`);
}

const readyz = (n) => n.get('/readyz').then((r) => r.status);

function snapshot(node) {
    return { fds: fdCount(node.pid), rss: rssKiB(node.pid) };
}

describe(`Redis killed (SIGKILL) and restarted on the same port ${CYCLES} times`, () => {
    it('before: messages flow across nodes in both rooms', async () => {
        await publishAndDeliver(a1, 'ro1', 'hello ro1');
        await publishAndDeliver(b2, 'ro2', 'hello ro2');
        await publishAndDeliver(b1, 'ro1', 'hello again ro1');
        for (const n of [A, B]) baseline[n.nodeId] = snapshot(n);
    });

    for (let cycle = 1; cycle <= CYCLES; cycle++) {
        describe(`cycle ${cycle}`, () => {
            let lastBefore;
            before(() => {
                lastBefore = { ro1: acked.ro1.at(-1), ro2: acked.ro2.at(-1) };
            });

            it('kill -9 Redis → /readyz 503 on both nodes', async () => {
                await redis.kill('SIGKILL');
                for (const n of [A, B]) {
                    await pollUntil(async () => (await readyz(n)) === 503, {
                        timeoutMs: 10000,
                        intervalMs: 100,
                        what: `${n.nodeId} /readyz 503 with Redis down`,
                    });
                    assert.equal((await n.get('/healthz')).status, 200);
                }
            });

            it('during the outage a publish is answered `unavailable` on both nodes; handshakes get 503', async () => {
                await Promise.all([
                    publishUntilUnavailable(a1, 'ro1', `c${cycle} a1`),
                    publishUntilUnavailable(b2, 'ro2', `c${cycle} b2`),
                ]);
                const hs = await handshake(B.url, { token: token({ sub: `late${cycle}` }) });
                assert.equal(hs.upgraded, false, 'upgraded while Redis is down');
                assert.equal(hs.status, 503, `${hs.status} ${hs.text}`);
                for (const c of [a1, a2, b1, b2]) assert.ok(c.isOpen, `${c.label} closed: ${JSON.stringify(c.closeInfo)}`);
            });

            it(`stays unready while Redis is down (${EXTRA_DOWN_MS[cycle - 1]} ms more), then Redis back on the same port → /readyz 200`, async () => {
                const until = Date.now() + EXTRA_DOWN_MS[cycle - 1];
                while (Date.now() < until) {
                    for (const n of [A, B]) assert.equal(await readyz(n), 503, `${n.nodeId} /readyz while Redis is down`);
                    await delay(200);
                }
                await redis.restart();
                for (const n of [A, B]) {
                    await pollUntil(async () => (await readyz(n)) === 200, {
                        timeoutMs: 10000,
                        intervalMs: 100,
                        what: `${n.nodeId} /readyz 200 after Redis came back`,
                    });
                }
            });

            it('delivery resumes across nodes without rejoining, offsets continuing', async () => {
                const o1 = await publishAndDeliver(a1, 'ro1', `c${cycle} ro1 from A`);
                assert.equal(o1, lastBefore.ro1 + 1, `ro1: offset ${o1} after ${lastBefore.ro1}`);
                const o2 = await publishAndDeliver(b2, 'ro2', `c${cycle} ro2 from B`);
                assert.equal(o2, lastBefore.ro2 + 1, `ro2: offset ${o2} after ${lastBefore.ro2}`);
                await publishAndDeliver(b1, 'ro1', `c${cycle} ro1 from B`);
                await publishAndDeliver(a2, 'ro2', `c${cycle} ro2 from A`);
            });
        });
    }

    it('every member saw every acked message of its rooms once, in order, and nothing refused', () => {
        for (const [room, ms] of Object.entries(members())) {
            for (const m of ms) {
                const got = m.messages(room);
                for (const f of got) assert.ok(!refused.has(f.text), `${m.label} received refused "${f.text}"`);
                const offs = got.map((f) => f.offset);
                for (let i = 1; i < offs.length; i++) {
                    assert.ok(offs[i] > offs[i - 1], `${m.label} ${room}: offset ${offs[i]} after ${offs[i - 1]}`);
                }
                // Everything it did not publish itself, it received: together, 1..N without gaps.
                const own = m.frames.filter((f) => f.type === 'ack' && f.room === room).map((f) => f.offset);
                const all = [...offs, ...own].sort((x, y) => x - y);
                const n = acked[room].length;
                assert.deepEqual(all, Array.from({ length: n }, (_, i) => i + 1), `${m.label} ${room}: received ${offs} + own ${own}`);
            }
        }
    });

    it('fd count and RSS of each node are back near their level before the outages', async (t) => {
        for (const n of [A, B]) {
            const base = baseline[n.nodeId];
            let now;
            try {
                await pollUntil(
                    () => {
                        now = snapshot(n);
                        return now.fds <= base.fds + FD_SLACK;
                    },
                    { timeoutMs: 5000, intervalMs: 100, what: `${n.nodeId} fd count back to ${base.fds} (+${FD_SLACK})` },
                );
            } catch (err) {
                err.message += `\nopen fds now:\n${fdTargets(n.pid).join('\n')}`;
                throw err;
            }
            t.diagnostic(`${n.nodeId}: fds ${base.fds} → ${now.fds}, RSS ${base.rss} → ${now.rss} KiB`);
            assert.ok(now.rss <= base.rss + RSS_SLACK_KIB, `${n.nodeId}: RSS ${base.rss} → ${now.rss} KiB`);
            const m = await n.get('/metrics');
            const reconnects = /^chat_redis_reconnects_total (\d+)$/m.exec(m.body);
            assert.ok(reconnects && Number(reconnects[1]) >= CYCLES, `${n.nodeId} chat_redis_reconnects_total: ${reconnects?.[1]}`);
        }
    });
});

describe('Redis comes back empty (history lost)', () => {
    it('connected members keep receiving the rooms\' new messages, offsets from 1', async () => {
        await redis.kill('SIGKILL');
        for (const n of [A, B]) {
            await pollUntil(async () => (await readyz(n)) === 503, { timeoutMs: 10000, intervalMs: 100, what: `${n.nodeId} 503` });
        }
        fs.rmSync(dataDir, { recursive: true, force: true });
        fs.mkdirSync(dataDir, { recursive: true });
        await redis.restart();
        for (const n of [A, B]) {
            await pollUntil(async () => (await readyz(n)) === 200, { timeoutMs: 10000, intervalMs: 100, what: `${n.nodeId} 200` });
        }
        const before1 = b1.messages('ro1').length;
        const ack = await a1.request({ type: 'publish', room: 'ro1', text: 'after the loss' });
        assert.equal(ack.type, 'ack', JSON.stringify(ack));
        assert.equal(ack.offset, 1, `first offset after the history was lost: ${ack.offset}`);
        const msg = await b1.next((f) => f.type === 'message' && f.room === 'ro1' && f.text === 'after the loss', 8000);
        assert.equal(msg.offset, 1);
        const ack2 = await b2.request({ type: 'publish', room: 'ro2', text: 'ro2 after the loss' });
        assert.equal(ack2.type, 'ack', JSON.stringify(ack2));
        for (const m of [a1, a2]) {
            const got = await m.next((f) => f.type === 'message' && f.room === 'ro2' && f.text === 'ro2 after the loss', 8000);
            assert.equal(got.offset, ack2.offset);
        }
        const ack3 = await a1.request({ type: 'publish', room: 'ro1', text: 'second after the loss' });
        assert.equal(ack3.offset, 2);
        const msg3 = await b1.next((f) => f.type === 'message' && f.room === 'ro1' && f.text === 'second after the loss', 8000);
        assert.equal(msg3.offset, 2);
        assert.equal(b1.messages('ro1').length, before1 + 2);
    });
});
