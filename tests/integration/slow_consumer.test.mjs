// PROTOCOL.md §3/§5 slow consumers: a connection whose outbound queue (bytes the gateway holds
// beyond what the kernel took, with a modest SO_SNDBUF) goes over --outq-cap is closed with 4000
// (the TCP connection is cut when even the close frame cannot be written) and its queue freed;
// other members on the same node keep receiving every message, in order, undelayed; the node's
// memory stays bounded. Messages are never skipped for a connection that stays open.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, startRedis, stopAll } from './lib/harness.mjs';
import { connect, token } from './lib/client.mjs';
import { parsePrometheus } from './lib/prom.mjs';
import { pollUntil, rssKiB } from './lib/proc.mjs';

const ROOM = 'flood';
const TEXT = 'F'.repeat(32000); // with --text-limit 32KiB
const BATCH = 4; // publishes in flight at once (~128 KB)
// The flood is paced by the healthy member: a batch goes out only once it has received every
// message acked so far, so at most BATCH messages are ever queued for it (under the 256 KiB cap)
// and the test process, which hosts every client, cannot itself become the slow reader.
// 2400 × 32 KB ≈ 77 MB: a node that kept queueing for the stalled readers would hold that much
// for each of them, far over the RSS bound below.
const MESSAGES = 2400;
const RSS_SLACK_KIB = 64 * 1024;

let gw;
let flooder;
let healthy;
let slowResumer; // stops reading; resumes once the node has closed it → must see 4000
let slowDead; // stops reading and never resumes → the node must cut the TCP connection
let baselineRss;
let maxRss = 0;
const acked = [];
let floodError = null;
const metricsSeen = [];

async function metrics() {
    const res = await gw.get('/metrics');
    assert.equal(res.status, 200);
    return parsePrometheus(res.body);
}

before(async () => {
    const redis = await startRedis();
    gw = await startGateway({
        redisPort: redis.port,
        nodeId: 'slow',
        heartbeat: 30, // not under test here; the flood is over long before
        args: [
            '--outq-cap', '256KiB', '--sndbuf', '64KiB', '--text-limit', '32KiB',
            '--rate', '100000', '--rate-burst', '100000',
        ],
        // ASan keeps freed blocks in a quarantine (256 MB by default), which would make RSS track
        // the bytes allocated over the flood rather than what the node holds; keep it small.
        env: { ASAN_OPTIONS: [process.env.ASAN_OPTIONS, 'quarantine_size_mb=16'].filter(Boolean).join(':') },
    });
    const mk = (sub) => connect(gw.url, { token: token({ sub }), label: sub });
    [flooder, healthy, slowResumer, slowDead] = await Promise.all(['flooder', 'healthy', 'slow-resumer', 'slow-dead'].map(mk));
    for (const c of [flooder, healthy, slowResumer, slowDead]) {
        const j = await c.request({ type: 'join', room: ROOM });
        assert.equal(j.type, 'joined', JSON.stringify(j));
    }
    // A round trip on each reader before it stops reading: everything before is consumed.
    for (const c of [slowResumer, slowDead]) assert.equal((await c.request({ type: 'ping' })).type, 'pong');
    slowResumer.ws._socket.pause();
    slowDead.ws._socket.pause();
    baselineRss = rssKiB(gw.pid);
});

after(stopAll);

describe('a reader that stops while the room floods', () => {
    let closedAtMs = null; // when the node reported both slow consumers closed
    let resumerInfo;

    it('is closed by the node (chat_slow_consumer_closes_total 2) while the flood goes on', async (t) => {
        let stop = false;
        let closesSeen = 0;
        // Samples /metrics and the node's RSS every 100 ms during the flood.
        const sampler = (async () => {
            while (!stop) {
                try {
                    maxRss = Math.max(maxRss, rssKiB(gw.pid));
                    const m = await metrics();
                    closesSeen = m.value('chat_slow_consumer_closes_total');
                    metricsSeen.push({ t: Date.now(), closes: closesSeen, conns: m.value('chat_connections') });
                    if (closesSeen >= 2 && closedAtMs === null) closedAtMs = Date.now();
                } catch (err) {
                    floodError = err;
                }
                await new Promise((r) => setTimeout(r, 100));
            }
        })();
        let sent = 0;
        const deadline = Date.now() + 40000;
        try {
            while (sent < MESSAGES) {
                assert.ok(Date.now() < deadline, `flood not done within 40 s (${sent} sent)`);
                if (acked.length) {
                    const want = acked[acked.length - 1];
                    await pollUntil(() => healthy.messages(ROOM).some((m) => m.offset >= want) || !healthy.isOpen, {
                        timeoutMs: 5000,
                        intervalMs: 5,
                        what: `healthy member to receive offset ${want} (has ${healthy.messages(ROOM).length} messages)`,
                    });
                    assert.ok(healthy.isOpen, `healthy member closed during the flood: ${JSON.stringify(healthy.closeInfo)}`);
                }
                const replies = [];
                for (let i = 0; i < BATCH; i++, sent++) {
                    replies.push(flooder.request({ type: 'publish', room: ROOM, text: TEXT }, 10000));
                }
                for (const r of await Promise.all(replies)) {
                    assert.equal(r.type, 'ack', `flooder publish: ${JSON.stringify(r)}`);
                    acked.push(r.offset);
                }
            }
        } finally {
            stop = true;
            await sampler;
        }
        t.diagnostic(
            `sent ${sent} messages of ${TEXT.length} bytes; RSS baseline ${baselineRss} KiB, peak ${maxRss} KiB; ` +
                `both closes seen by sample ${metricsSeen.findIndex((m) => m.closes >= 2)} of ${metricsSeen.length} (100 ms apart)`,
        );
        if (floodError) throw floodError;
        closesSeen = (await metrics()).value('chat_slow_consumer_closes_total');
        assert.ok(
            closesSeen >= 2,
            `slow consumers not closed after ${sent} messages of ${TEXT.length} bytes; metrics: ${JSON.stringify(metricsSeen.slice(-3))}`,
        );
        assert.equal(closesSeen, 2, 'a connection other than the two stalled ones was closed as a slow consumer');
        assert.ok(healthy.isOpen, `healthy member closed: ${JSON.stringify(healthy.closeInfo)}`);
        assert.ok(flooder.isOpen, `flooder closed: ${JSON.stringify(flooder.closeInfo)}`);
    });

    it('the reader that resumes after the close receives a 4000 close frame', async () => {
        assert.ok(closedAtMs !== null, 'flood did not close the slow consumers');
        slowResumer.ws._socket.resume();
        let timer;
        resumerInfo = await Promise.race([
            slowResumer.closed,
            new Promise((_, rej) => {
                timer = setTimeout(() => rej(new Error('slow reader: no close within 10 s of resuming')), 10000);
            }),
        ]).finally(() => clearTimeout(timer));
        assert.equal(
            resumerInfo.code,
            4000,
            `close code ${resumerInfo.code} "${resumerInfo.reason}" (resumed ${Date.now() - closedAtMs} ms after the node counted the close)`,
        );
    });

    it('what the closed readers got before the close is a gap-free prefix of the room', () => {
        for (const c of [slowResumer, slowDead]) {
            const offs = c.messages(ROOM).map((m) => m.offset);
            for (let i = 1; i < offs.length; i++) {
                assert.equal(offs[i], offs[i - 1] + 1, `${c.label}: offset ${offs[i]} after ${offs[i - 1]}`);
            }
            if (offs.length) assert.equal(offs[0], acked[0], `${c.label}: first message offset`);
        }
    });

    it('the reader that never resumes is cut off: the node drops the connection (bounded)', async () => {
        // Only the healthy member and the flooder stay connected.
        await pollUntil(
            async () => (await metrics()).value('chat_connections') === 2,
            { timeoutMs: 12000, intervalMs: 100, what: 'chat_connections == 2 (stalled connection dropped)' },
        );
        slowDead.ws._socket.resume();
        let timer;
        const info = await Promise.race([
            slowDead.closed,
            new Promise((_, rej) => {
                timer = setTimeout(() => rej(new Error('stalled reader: socket not closed within 10 s of resuming')), 10000);
            }),
        ]).finally(() => clearTimeout(timer));
        assert.ok([4000, 1006].includes(info.code), `stalled reader close ${info.code} "${info.reason}"`);
    });

    it('the healthy member on the same node received every message, in order, without gaps', async () => {
        const last = acked[acked.length - 1];
        await pollUntil(() => healthy.messages(ROOM).some((m) => m.offset === last), {
            timeoutMs: 10000,
            what: `healthy member to reach offset ${last} (has ${healthy.messages(ROOM).length})`,
        });
        const offs = healthy.messages(ROOM).map((m) => m.offset);
        assert.equal(offs.length, acked.length, `healthy got ${offs.length} messages, ${acked.length} were acked`);
        for (let i = 0; i < offs.length; i++) {
            assert.equal(offs[i], acked[0] + i, `healthy member: message ${i} has offset ${offs[i]}`);
        }
        const sortedAcks = [...acked].sort((a, b) => a - b);
        assert.deepEqual(offs, sortedAcks);
        for (const m of healthy.messages(ROOM)) assert.ok(m.text === TEXT, `message ${m.offset} text mangled`);
        assert.ok(healthy.isOpen, `healthy member closed: ${JSON.stringify(healthy.closeInfo)}`);
    });

    it("the node's RSS stayed bounded during the flood", () => {
        maxRss = Math.max(maxRss, rssKiB(gw.pid));
        assert.ok(
            maxRss < baselineRss + RSS_SLACK_KIB,
            `RSS peaked at ${maxRss} KiB, baseline ${baselineRss} KiB (limit +${RSS_SLACK_KIB} KiB)`,
        );
    });
});
