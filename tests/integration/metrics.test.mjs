// PROTOCOL.md §5 /metrics: Prometheus text format (checked strictly: every sample belongs to a
// # TYPE'd family, histograms cumulative with +Inf == _count, ...) whose counters match the
// traffic this test sends: publishes on the publishing node, deliveries = messages × local
// receivers, frames and bytes in/out, auth failures by reason, open connections. Auth failures
// are also logged with reason and remote address, rate-limited so a flood cannot fill the disk.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { startGateway, startRedis, stopAll } from './lib/harness.mjs';
import { connect, handshake, token } from './lib/client.mjs';
import { parsePrometheus } from './lib/prom.mjs';
import { pollUntil } from './lib/proc.mjs';
import { rawRequest, upgradeRequest } from './lib/rawhttp.mjs';

const ROOM = 'mx';
let redis;
let A;
let B;
let logNode; // for the auth-failure flood
let jsonNode; // --log-format json

before(async () => {
    redis = await startRedis();
    const args = ['--rate', '100000', '--rate-burst', '100000'];
    // All nodes start before the flood below, which leaves many short-lived sockets around.
    [A, B, logNode, jsonNode] = await Promise.all([
        startGateway({ redisPort: redis.port, nodeId: 'ma', args, heartbeat: 60 }),
        startGateway({ redisPort: redis.port, nodeId: 'mb', args, heartbeat: 60 }),
        startGateway({ redisPort: redis.port, nodeId: 'mlog', heartbeat: 60 }),
        startGateway({ redisPort: redis.port, nodeId: 'mjson', heartbeat: 60, args: ['--log-format', 'json'] }),
    ]);
});

after(stopAll);

async function scrape(node) {
    const res = await node.get('/metrics');
    assert.equal(res.status, 200, `${node.nodeId} /metrics: ${res.status}`);
    return parsePrometheus(res.body);
}

/** Counts the payload bytes and messages a client receives from now on. */
function meter(c) {
    const m = { frames: 0, bytes: 0 };
    c.ws.on('message', (data) => {
        m.frames++;
        m.bytes += Buffer.isBuffer(data) ? data.length : Buffer.concat(data).length;
    });
    return m;
}

/** Sends obj as JSON and returns its payload size. */
function sendCounted(c, obj, sent) {
    const text = JSON.stringify(obj);
    c.sendRaw(text);
    sent.frames++;
    sent.bytes += Buffer.byteLength(text);
}

const REQUIRED = {
    chat_connections: 'gauge',
    chat_connections_total: 'counter',
    chat_frames_in_total: 'counter',
    chat_frames_out_total: 'counter',
    chat_bytes_in_total: 'counter',
    chat_bytes_out_total: 'counter',
    chat_publishes_total: 'counter',
    chat_publish_failures_total: 'counter',
    chat_deliveries_total: 'counter',
    chat_drops_total: 'counter',
    chat_errors_sent_total: 'counter',
    chat_slow_consumer_closes_total: 'counter',
    chat_offset_gaps_total: 'counter',
    chat_auth_failures_total: 'counter',
    chat_redis_reconnects_total: 'counter',
    chat_fanout_latency_seconds: 'histogram',
    chat_publish_rtt_seconds: 'histogram',
};

describe('/metrics format', () => {
    it('parses strictly as Prometheus text 0.0.4 with every listed family and type', async () => {
        for (const node of [A, B]) {
            const res = await node.get('/metrics');
            assert.equal(res.status, 200);
            assert.match(res.headers['content-type'] || '', /^text\/plain; ?version=0\.0\.4/, res.headers['content-type']);
            const m = parsePrometheus(res.body);
            for (const [name, type] of Object.entries(REQUIRED)) {
                const fam = m.families.get(name);
                assert.ok(fam, `${node.nodeId}: family ${name} missing`);
                assert.equal(fam.type, type, `${name} type`);
                assert.ok(fam.help && fam.help.length > 0, `${name} has no HELP`);
            }
            for (const reason of ['missing', 'malformed', 'bad_signature', 'expired']) {
                assert.equal(m.value('chat_auth_failures_total', { reason }), 0, `auth failures ${reason} on a fresh node`);
            }
            assert.equal(m.value('chat_connections'), 0);
            assert.equal(m.value('chat_connections_total'), 0);
            assert.equal(m.value('chat_publishes_total'), 0);
        }
    });

    it('the parser itself rejects what it must (untyped sample, non-cumulative buckets, +Inf != count)', () => {
        assert.throws(() => parsePrometheus('foo 1\n'), /no # TYPE/);
        assert.throws(
            () =>
                parsePrometheus(
                    '# TYPE h histogram\nh_bucket{le="1"} 3\nh_bucket{le="2"} 2\nh_bucket{le="+Inf"} 3\nh_sum 1\nh_count 3\n',
                ),
            /cumulative/,
        );
        assert.throws(
            () => parsePrometheus('# TYPE h histogram\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 3\n'),
            /\+Inf/,
        );
        assert.throws(() => parsePrometheus('# TYPE c counter\nc 1'), /newline/);
        assert.doesNotThrow(() => parsePrometheus('# HELP c x\n# TYPE c counter\nc{a="b\\"c"} 1\n'));
    });
});

describe('counters match the traffic sent', () => {
    const N = 7;
    let P; // publisher on A
    let R1; // receiver on A
    let R2; // receivers on B
    let R3;

    before(async () => {
        const mk = (node, sub) => connect(node.url, { token: token({ sub }), label: `${sub}@${node.nodeId}` });
        [P, R1, R2, R3] = await Promise.all([mk(A, 'pub'), mk(A, 'r1'), mk(B, 'r2'), mk(B, 'r3')]);
        for (const c of [P, R1, R2, R3]) {
            const j = await c.request({ type: 'join', room: ROOM });
            assert.equal(j.type, 'joined', JSON.stringify(j));
        }
    });

    it('chat_connections equals the open connections; chat_connections_total counts accepted ones', async () => {
        const [a, b] = await Promise.all([scrape(A), scrape(B)]);
        assert.equal(a.value('chat_connections'), 2);
        assert.equal(b.value('chat_connections'), 2);
        assert.equal(a.value('chat_connections_total'), 2);
        const extra = await Promise.all([0, 1, 2].map((i) => connect(A.url, { token: token({ sub: `x${i}` }), label: `x${i}` })));
        let now = await scrape(A);
        assert.equal(now.value('chat_connections'), 5);
        assert.equal(now.value('chat_connections_total'), 5);
        await extra[0].close();
        await extra[1].close();
        now = await pollUntil(
            async () => {
                const m = await scrape(A);
                return m.value('chat_connections') === 3 ? m : null;
            },
            { timeoutMs: 3000, what: 'chat_connections == 3 after closing 2 of 5' },
        );
        assert.equal(now.value('chat_connections_total'), 5);
        extra[2].ws.terminate(); // an abrupt TCP close is noticed as well
        await pollUntil(async () => (await scrape(A)).value('chat_connections') === 2, {
            timeoutMs: 3000,
            what: 'chat_connections == 2 after a terminated socket',
        });
    });

    it(`after ${N} publishes: publishes, deliveries, frames and bytes in/out, histograms`, async (t) => {
        const [a0, b0] = await Promise.all([scrape(A), scrape(B)]);
        const got = { P: meter(P), R1: meter(R1), R2: meter(R2), R3: meter(R3) };
        const sentA = { frames: 0, bytes: 0 };
        const sentB = { frames: 0, bytes: 0 };
        for (let i = 0; i < N; i++) {
            const reply = P.next({ id: `m${i}` });
            sendCounted(P, { type: 'publish', room: ROOM, text: `metrics message ${i} ${'z'.repeat(i * 10)}`, id: `m${i}` }, sentA);
            const ack = await reply;
            assert.equal(ack.type, 'ack', JSON.stringify(ack));
        }
        for (let i = 0; i < 2; i++) {
            const reply = R2.next({ id: `p${i}` });
            sendCounted(R2, { type: 'ping', id: `p${i}` }, sentB);
            assert.equal((await reply).type, 'pong');
        }
        for (const r of [R1, R2, R3]) await r.collect((f) => f.type === 'message' && f.room === ROOM, N, 5000);
        const [a1, b1] = await Promise.all([scrape(A), scrape(B)]);
        const d = (m1, m0, name, labels) => m1.value(name, labels) - m0.value(name, labels);
        t.diagnostic(`A bytes_out ${d(a1, a0, 'chat_bytes_out_total')}, B ${d(b1, b0, 'chat_bytes_out_total')}`);

        // node A: the publisher and one receiver
        assert.equal(d(a1, a0, 'chat_publishes_total'), N, 'A publishes');
        assert.equal(d(a1, a0, 'chat_publish_failures_total'), 0, 'A publish failures');
        assert.equal(d(a1, a0, 'chat_deliveries_total'), N * 1, 'A deliveries (1 local receiver)');
        assert.equal(d(a1, a0, 'chat_frames_in_total'), sentA.frames, 'A frames in');
        assert.equal(d(a1, a0, 'chat_bytes_in_total'), sentA.bytes, 'A bytes in');
        assert.equal(d(a1, a0, 'chat_frames_out_total'), got.P.frames + got.R1.frames, 'A frames out (acks + messages)');
        assert.equal(d(a1, a0, 'chat_bytes_out_total'), got.P.bytes + got.R1.bytes, 'A bytes out');
        assert.equal(d(a1, a0, 'chat_errors_sent_total'), 0);
        assert.equal(d(a1, a0, 'chat_publish_rtt_seconds_count'), N, 'A publish round trips observed');
        assert.equal(d(a1, a0, 'chat_fanout_latency_seconds_count'), N * 1, 'A fan-out observations');
        assert.ok(d(a1, a0, 'chat_publish_rtt_seconds_sum') > 0);
        // node B: two receivers, no publisher
        assert.equal(d(b1, b0, 'chat_publishes_total'), 0, 'B publishes');
        assert.equal(d(b1, b0, 'chat_deliveries_total'), N * 2, 'B deliveries (2 local receivers)');
        assert.equal(d(b1, b0, 'chat_frames_in_total'), sentB.frames, 'B frames in (2 pings)');
        assert.equal(d(b1, b0, 'chat_bytes_in_total'), sentB.bytes, 'B bytes in');
        assert.equal(d(b1, b0, 'chat_frames_out_total'), got.R2.frames + got.R3.frames, 'B frames out');
        assert.equal(d(b1, b0, 'chat_bytes_out_total'), got.R2.bytes + got.R3.bytes, 'B bytes out');
        assert.equal(d(b1, b0, 'chat_fanout_latency_seconds_count'), N * 2, 'B fan-out observations');
        assert.equal(d(b1, b0, 'chat_publish_rtt_seconds_count'), 0);
        for (const m of [a1, b1]) {
            assert.equal(m.value('chat_offset_gaps_total'), 0);
            assert.equal(m.value('chat_slow_consumer_closes_total'), 0);
            assert.equal(m.value('chat_drops_total'), 0);
            assert.equal(m.value('chat_rooms'), 1);
        }
    });

    it('error frames are counted', async () => {
        const m0 = await scrape(B);
        const e1 = await R2.request({ type: 'publish', room: 'not-joined-here', text: 'x' });
        assert.equal(e1.code, 'not_joined');
        const e2 = R2.next((f) => f.type === 'error' && !('id' in f));
        R2.sendRaw('not json');
        await e2;
        const m1 = await scrape(B);
        assert.equal(m1.value('chat_errors_sent_total') - m0.value('chat_errors_sent_total'), 2);
        assert.equal(m1.value('chat_frames_in_total') - m0.value('chat_frames_in_total'), 2);
    });
});

describe('auth failures by reason', () => {
    const cases = [
        ['missing', {}],
        ['malformed', { token: 'not-a-jwt' }],
        ['bad_signature', { token: token({ sub: 'mallory', key: 'wrong-secret' }) }],
        ['expired', { token: token({ sub: 'late', exp: Math.floor(Date.now() / 1000) - 60 }) }],
    ];
    for (const [reason, opts] of cases) {
        it(`a ${reason} token → 401 and chat_auth_failures_total{reason="${reason}"} +1 (others unchanged)`, async () => {
            const m0 = await scrape(A);
            const res = await handshake(A.url, opts);
            assert.equal(res.status, 401, `${res.status} ${res.text}`);
            assert.equal(res.upgraded, false);
            const m1 = await scrape(A);
            for (const s of m1.families.get('chat_auth_failures_total').samples) {
                const delta = s.value - m0.value(s.name, s.labels);
                assert.equal(delta, s.labels.reason === reason ? 1 : 0, `reason=${s.labels.reason}: +${delta}`);
            }
            assert.equal(m1.value('chat_connections'), m0.value('chat_connections'));
            assert.equal(m1.value('chat_connections_total'), m0.value('chat_connections_total'));
        });
    }
});

describe('auth failure logging', () => {
    it('a flood of bad tokens is counted exactly but logged at a bounded rate, suppressed lines accounted', async () => {
        const node = logNode;
        const bad = token({ sub: 'flood', key: 'wrong-secret' });
        const request = upgradeRequest(node.port, { headers: { Authorization: `Bearer ${bad}` } });
        const TOTAL = 300;
        const t0 = Date.now();
        for (let i = 0; i < TOTAL; i += 30) {
            // Raw requests ended with an RST: no TIME_WAIT sockets pile up on the test host.
            const results = await Promise.all(Array.from({ length: 30 }, () => rawRequest(node.port, request, { reset: true })));
            for (const r of results) assert.equal(r.status, 401, JSON.stringify(r).slice(0, 300));
        }
        const floodS = (Date.now() - t0) / 1000;
        const m = await scrape(node);
        assert.equal(m.value('chat_auth_failures_total', { reason: 'bad_signature' }), TOTAL);
        const logged = () =>
            fs
                .readFileSync(node.logFile, 'utf8')
                .split('\n')
                .filter((l) => /event=auth_failed/.test(l));
        const during = logged();
        // Burst 100, then 20 lines/s.
        const bound = 100 + Math.ceil(floodS * 20) + 1;
        assert.ok(during.length <= bound, `${during.length} auth_failed lines for ${TOTAL} failures in ${floodS} s (bound ${bound})`);
        assert.ok(during.length < TOTAL, 'nothing was suppressed');
        for (const l of during) {
            assert.match(l, /reason=bad_signature/, l);
            assert.match(l, /remote=(::ffff:)?127\.0\.0\.1( |$)/, l);
            assert.ok(!l.includes(bad), 'a token was logged');
        }
        // Once the rate allows, the next failure is logged with the count of lines left out.
        let after;
        await pollUntil(
            async () => {
                await rawRequest(node.port, request, { reset: true });
                after = logged();
                return after.length > during.length;
            },
            { timeoutMs: 3000, intervalMs: 100, what: 'an auth_failed line after the flood' },
        );
        const total = await scrape(node).then((x) => x.value('chat_auth_failures_total', { reason: 'bad_signature' }));
        const suppressed = after.reduce((sum, l) => sum + Number((/suppressed=(\d+)/.exec(l) || [0, 0])[1]), 0);
        assert.equal(after.length + suppressed, total, `${after.length} lines + ${suppressed} suppressed != ${total} failures`);
    });

    it('--log-format json: each log line is one JSON object; auth failures carry reason and remote', async () => {
        const node = jsonNode;
        const res = await handshake(node.url, { token: token({ sub: 'x', key: 'wrong-secret' }) });
        assert.equal(res.status, 401);
        const line = await pollUntil(
            () =>
                fs
                    .readFileSync(node.logFile, 'utf8')
                    .split('\n')
                    .find((l) => l.includes('auth_failed')),
            { what: 'an auth_failed log line' },
        );
        const lines = fs
            .readFileSync(node.logFile, 'utf8')
            .split('\n')
            .filter((l) => l && !l.startsWith('# harness'));
        for (const l of lines) assert.doesNotThrow(() => JSON.parse(l), `not JSON: ${l}`);
        const ev = JSON.parse(line);
        assert.equal(ev.event, 'auth_failed');
        assert.equal(ev.reason, 'bad_signature');
        assert.match(String(ev.remote), /^(::ffff:)?127\.0\.0\.1$/);
    });
});
