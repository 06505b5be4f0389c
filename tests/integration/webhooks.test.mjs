// PROTOCOL.md §9, what the events say: user.online when a user's first connection anywhere in
// the cluster opens and user.offline when the last one closes (also when its node dies: within
// two heartbeats plus 3 s), direct.undelivered when a direct reaches no connection. Every
// request is checked by a real receiver that verifies its HMAC signature. A duplicate event
// would be appended before the one that ends a test's wait (one user's events are in one
// partition, delivered in order), so counting after that wait is conclusive.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, startRedis, stopAll } from './lib/harness.mjs';
import { connect, token } from './lib/client.mjs';
import { startReceiver } from './lib/webhook_receiver.mjs';

const HEARTBEAT = 1;
const SECRET = 'hook-secret';
const API_KEY = 'api-key-for-webhooks';
let redis;
let receiver;
let A;
let B;
let C; // killed in the last test

const webhookArgs = () => ['--webhook-url', receiver.url, '--webhook-secret', SECRET, '--api-key', API_KEY];

before(async () => {
    receiver = await startReceiver({ secret: SECRET });
    redis = await startRedis();
    [A, B, C] = await Promise.all(
        ['n1', 'n2', 'n3'].map((nodeId) =>
            startGateway({ redisPort: redis.port, nodeId, heartbeat: HEARTBEAT, args: webhookArgs() }),
        ),
    );
});

after(async () => {
    try {
        assert.deepEqual(receiver.badSignatures(), [], 'every request carries a valid signature');
    } finally {
        await stopAll();
    }
});

const open = (node, sub) => connect(node.url, { token: token({ sub }), label: `${sub}@${node.nodeId}` });
const of = (user, type) => receiver.events().filter((e) => e.user === user && e.type === type);

describe('webhooks', () => {
    it('sends user.online once and user.offline once for a user on two nodes', async () => {
        const a1 = await open(A, 'alice');
        const online = await receiver.waitFor((e) => e.type === 'user.online' && e.user === 'alice');
        assert.match(online.id, /^\S+$/);
        assert.equal(typeof online.ts, 'number');
        const a2 = await open(B, 'alice');
        await a1.close();
        await a2.close();
        const offline = await receiver.waitFor((e) => e.type === 'user.offline' && e.user === 'alice');
        assert.ok(offline.ts >= online.ts);
        assert.equal(of('alice', 'user.online').length, 1);
        assert.equal(of('alice', 'user.offline').length, 1);
        const req = receiver.requests.find((q) => q.event?.id === offline.id);
        assert.equal(req.contentType, 'application/json');
        assert.equal(req.id, offline.id, 'X-Chat-Event-Id is the event id');
    });

    it('sends direct.undelivered when a direct reaches no connection, in order with presence', async () => {
        const bob = await open(A, 'bob');
        const dave = await open(B, 'dave');
        await receiver.waitFor((e) => e.type === 'user.online' && e.user === 'dave');
        assert.equal((await bob.request({ type: 'direct', to: 'dave', text: 'hi dave' })).type, 'ack');
        await dave.next((f) => f.type === 'direct' && f.text === 'hi dave');
        await dave.close();
        await receiver.waitFor((e) => e.type === 'user.offline' && e.user === 'dave');
        assert.equal((await bob.request({ type: 'direct', to: 'dave', text: 'are you there?' })).type, 'ack');
        const und = await receiver.waitFor((e) => e.type === 'direct.undelivered' && e.to === 'dave');
        assert.equal(und.from, 'bob');
        assert.equal(und.text, 'are you there?');
        assert.equal(typeof und.ts, 'number');
        const daves = receiver.events().filter((e) => e.user === 'dave' || e.to === 'dave').map((e) => e.type);
        assert.deepEqual(daves, ['user.online', 'user.offline', 'direct.undelivered']);

        // From the backend API, with data.
        const res = await fetch(`${B.httpUrl}/api/direct`, {
            method: 'POST',
            headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
            body: JSON.stringify({ to: 'zoe', data: { kind: 'export', n: [1, 2] } }),
        });
        assert.equal(res.status, 200);
        const api = await receiver.waitFor((e) => e.type === 'direct.undelivered' && e.to === 'zoe');
        assert.equal(api.from, '@server');
        assert.deepEqual(api.data, { kind: 'export', n: [1, 2] });
        assert.equal(api.text, undefined);
        await bob.close();
    });

    it('sends user.offline for the users of a killed node within two heartbeats plus 3 s', async () => {
        const erin = await open(C, 'erin'); // only on C
        const frank1 = await open(C, 'frank'); // on C and on A
        const frank2 = await open(A, 'frank');
        await receiver.waitFor((e) => e.type === 'user.online' && e.user === 'erin');
        await receiver.waitFor((e) => e.type === 'user.online' && e.user === 'frank');
        const killedAt = Date.now();
        await C.kill('SIGKILL');
        const offline = await receiver.waitFor((e) => e.type === 'user.offline' && e.user === 'erin', 20000);
        assert.ok(
            offline.ts - killedAt <= 2 * HEARTBEAT * 1000 + 3000,
            `user.offline ${offline.ts - killedAt} ms after the kill`,
        );
        // frank is still connected on A: no offline until that connection closes, then one.
        await Promise.all([erin.closed, frank1.closed]);
        await frank2.close();
        await receiver.waitFor((e) => e.type === 'user.offline' && e.user === 'frank');
        assert.equal(of('frank', 'user.offline').length, 1);
        assert.equal(of('erin', 'user.offline').length, 1);
    });
});
