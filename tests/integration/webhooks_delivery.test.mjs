// PROTOCOL.md §9, how events get there: at least once, in order per user, retried with capped
// backoff while the receiver fails or is down, surviving the death of the node that held them,
// dropped (and counted in /metrics) once older than the retention; over http and https.
// The receiver is the application: it verifies every signature and keeps each event id once.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { outputDir, startGateway, startRedis, stopAll } from './lib/harness.mjs';
import { connect, token } from './lib/client.mjs';
import { pollUntil } from './lib/proc.mjs';
import { redisCall } from './lib/redis_topology.mjs';
import { startReceiver } from './lib/webhook_receiver.mjs';

const HEARTBEAT = 1;
const SECRET = 'delivery-secret';
const receivers = [];

after(async () => {
    try {
        for (const r of receivers) assert.deepEqual(r.badSignatures(), [], 'every request is signed');
    } finally {
        await stopAll();
    }
});

async function receiver(opts = {}) {
    const r = await startReceiver({ secret: SECRET, ...opts });
    receivers.push(r);
    return r;
}

const gateway = (redis, nodeId, r, args = [], env = {}) =>
    startGateway({
        redisPort: redis.port,
        nodeId,
        heartbeat: HEARTBEAT,
        env,
        args: ['--webhook-url', r.url, '--webhook-secret', SECRET, ...args],
    });

async function metric(nodes, name) {
    let sum = 0;
    for (const n of nodes) {
        const res = await n.get('/metrics');
        const m = new RegExp(`^${name} (\\d+)$`, 'm').exec(res.body);
        assert.ok(m, `${name} missing from /metrics`);
        sum += Number(m[1]);
    }
    return sum;
}

/** Opens and closes user's connection `times` times on node: online/offline pairs. */
async function flap(node, user, times) {
    for (let i = 0; i < times; i++) {
        const c = await connect(node.url, { token: token({ sub: user }), label: `${user}#${i}` });
        await c.close();
    }
}

/** The kept events of user, types in order. */
const typesOf = (r, user) => r.events().filter((e) => e.user === user).map((e) => e.type);
const pairs = (n) => Array.from({ length: 2 * n }, (_, i) => (i % 2 ? 'user.offline' : 'user.online'));

describe('retries', () => {
    let redis, r, A, B;
    before(async () => {
        r = await receiver();
        redis = await startRedis();
        [A, B] = await Promise.all(['r1', 'r2'].map((id) => gateway(redis, id, r, ['--webhook-timeout', '1'])));
    });

    it('retries an event answered 500 until a 200, keeping the order of the user\'s events', async () => {
        r.respond = (e, n) => (e.user === 'gina' && n <= (e.type === 'user.online' ? 2 : 1) ? 500 : 200);
        const failuresBefore = await metric([A, B], 'chat_webhook_failures_total');
        await flap(A, 'gina', 3);
        await r.waitFor((e) => e.user === 'gina' && typesOf(r, 'gina').length === 6, 30000, 'six events of gina');
        assert.deepEqual(typesOf(r, 'gina'), pairs(3));
        const ids = r.events().filter((e) => e.user === 'gina').map((e) => e.id);
        for (const id of ids) assert.ok(r.attemptsOf(id) >= 2, `event ${id} was not retried`);
        // Per user in order: no request for an event before the previous one was answered 200.
        const reqs = r.requests.filter((q) => q.event?.user === 'gina');
        for (let k = 1; k < ids.length; k++) {
            const firstOfNext = reqs.findIndex((q) => q.event.id === ids[k]);
            const okOfPrev = reqs.findIndex((q) => q.event.id === ids[k - 1] && q.status === 200);
            assert.ok(okOfPrev >= 0 && okOfPrev < firstOfNext, `event ${k} sent before event ${k - 1} was delivered`);
        }
        assert.ok((await metric([A, B], 'chat_webhook_failures_total')) >= failuresBefore + 9);
    });

    it('sends again an event whose 200 came after the timeout; the application keeps it once', async () => {
        r.respond = (e, n) => (e.user === 'hugo' && n === 1 ? { status: 200, delayMs: 2500 } : 200);
        await flap(A, 'hugo', 1);
        await r.waitFor((e) => e.user === 'hugo' && e.type === 'user.offline', 20000);
        const online = r.events().find((e) => e.user === 'hugo' && e.type === 'user.online');
        assert.ok(r.attemptsOf(online.id) >= 2, 'the late-answered event was sent again');
        assert.deepEqual(typesOf(r, 'hugo'), pairs(1));
    });

    it('loses nothing while the receiver is down for a while', async () => {
        r.respond = () => 200;
        await r.stop();
        const failuresBefore = await metric([A, B], 'chat_webhook_failures_total');
        const users = ['ida', 'jon', 'kim'];
        await Promise.all(users.map((u, i) => flap(i % 2 ? B : A, u, 2)));
        await pollUntil(async () => (await metric([A, B], 'chat_webhook_failures_total')) >= failuresBefore + 3, {
            timeoutMs: 10000,
            what: 'failed attempts while the receiver is down',
        });
        assert.ok((await metric([A, B], 'chat_webhook_backlog')) >= 1, 'events wait in the backlog');
        await r.start();
        for (const u of users) {
            await r.waitFor((e) => e.user === u && typesOf(r, u).length === 4, 40000, `four events of ${u}`);
            assert.deepEqual(typesOf(r, u), pairs(2));
        }
        await pollUntil(async () => (await metric([A, B], 'chat_webhook_backlog')) === 0, {
            timeoutMs: 10000,
            what: 'an empty backlog',
        });
    });
});

describe('a node killed while holding unsent events', () => {
    it('has another node deliver them', async () => {
        const r = await receiver();
        const redis = await startRedis();
        const K = await gateway(redis, 'k1', r);
        // K alone: it takes every partition's lease.
        await pollUntil(
            async () => {
                for (let p = 0; p < 8; p++) {
                    const owner = await redisCall(redis.port, ['GET', `chat:{@wh:${p}}:lease`]);
                    if (!String(owner).startsWith('k1.')) return false;
                }
                return true;
            },
            { timeoutMs: 5000, what: 'k1 holding every lease' },
        );
        const S = await gateway(redis, 's1', r);
        await r.stop();
        const users = ['lea', 'max', 'ned', 'ola'];
        await Promise.all(users.map((u) => flap(S, u, 1)));
        await pollUntil(async () => (await metric([K], 'chat_webhook_failures_total')) >= 2, {
            timeoutMs: 10000,
            what: 'k1 trying to deliver',
        });
        assert.equal(await metric([S], 'chat_webhook_failures_total'), 0, 's1 holds no partition');
        await K.kill('SIGKILL');
        await r.start();
        for (const u of users) {
            await r.waitFor((e) => e.user === u && typesOf(r, u).length === 2, 30000, `both events of ${u}`);
            assert.deepEqual(typesOf(r, u), pairs(1));
        }
        assert.ok((await metric([S], 'chat_webhook_delivered_total')) >= 2 * users.length);
    });
});

describe('retention', () => {
    it('drops events older than the retention and counts them', async () => {
        const r = await receiver();
        const redis = await startRedis();
        const N = await gateway(redis, 'd1', r, ['--webhook-retention', '2']);
        await r.stop();
        await flap(N, 'pia', 2); // four events, never delivered
        await pollUntil(async () => (await metric([N], 'chat_webhook_dropped_total')) === 4, {
            timeoutMs: 15000,
            what: 'four dropped events',
        });
        await r.start();
        await flap(N, 'quin', 1);
        await r.waitFor((e) => e.user === 'quin' && e.type === 'user.offline', 20000);
        assert.deepEqual(typesOf(r, 'pia'), []);
        assert.equal(await metric([N], 'chat_webhook_dropped_total'), 4);
        assert.equal(await metric([N], 'chat_webhook_backlog'), 0);
    });
});

describe('https', () => {
    let tls;
    before(() => {
        const dir = path.join(outputDir(), 'tls');
        fs.mkdirSync(dir, { recursive: true });
        const key = path.join(dir, 'key.pem');
        const cert = path.join(dir, 'cert.pem');
        execFileSync('openssl', [
            'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1',
            '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
        ], { stdio: 'ignore' });
        tls = { key: fs.readFileSync(key), cert: fs.readFileSync(cert), certFile: cert };
    });

    it('delivers over TLS to a receiver whose certificate is trusted', async () => {
        const r = await receiver({ tls });
        const redis = await startRedis();
        const N = await gateway(redis, 't1', r, [], { SSL_CERT_FILE: tls.certFile });
        await flap(N, 'rui', 1);
        await r.waitFor((e) => e.user === 'rui' && e.type === 'user.offline', 10000);
        assert.deepEqual(typesOf(r, 'rui'), pairs(1));
    });

    it('sends nothing to a receiver whose certificate is not trusted', async () => {
        const r = await receiver({ tls });
        const redis = await startRedis();
        const N = await gateway(redis, 't2', r, [], { SSL_CERT_FILE: '/nonexistent/ca.pem' });
        await flap(N, 'sam', 1);
        await pollUntil(async () => (await metric([N], 'chat_webhook_failures_total')) >= 1, {
            timeoutMs: 10000,
            what: 'a failed TLS attempt',
        });
        assert.equal(r.requests.length, 0, 'no request got through the TLS handshake');
    });
});
