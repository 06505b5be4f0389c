// PROTOCOL.md §1: the JWT is verified before the upgrade; every rejection is a plain HTTP
// answer (401/403/503) with a JSON body, never a 101; accepted connections get `welcome` first.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { freePort, outputDir, startGateway, startRedis, stopAll, HEARTBEAT_S } from './lib/harness.mjs';
import { connect, connectMany, handshake, nowSeconds, token } from './lib/client.mjs';

const ISSUER = 'https://issuer.test';
const AUDIENCE = 'chat-test';
const GOOD_ORIGIN = 'http://good.example';

let redis;
let nodeA; // plain HS256
let nodeB; // plain HS256, second node (conn id uniqueness)
let nodeIss; // --jwt-issuer / --jwt-audience
let nodeOrigin; // --allowed-origins
let nodeNoRedis; // --redis pointing at a dead port
let nodeRS; // RS256 public key
let nodeES; // ES256 public key
let rsaKeys;
let ecKeys;

function writeKeyPair(type, options, name) {
    const { publicKey, privateKey } = crypto.generateKeyPairSync(type, options);
    const pubPem = publicKey.export({ type: 'spki', format: 'pem' });
    const file = path.join(outputDir(), `${name}-public.pem`);
    fs.writeFileSync(file, pubPem);
    return { publicKey, privateKey, pubPem, file };
}

// One top-level suite holds the hooks: root-level before/after are unreliable on Node 18.
describe('handshake: JWT verification before the upgrade (§1)', () => {
    before(async () => {
        rsaKeys = writeKeyPair('rsa', { modulusLength: 2048 }, 'rs256');
        ecKeys = writeKeyPair('ec', { namedCurve: 'P-256' }, 'es256');
        redis = await startRedis();
        const deadRedisPort = await freePort();
        [nodeA, nodeB, nodeIss, nodeOrigin, nodeRS, nodeES, nodeNoRedis] = await Promise.all([
            startGateway({ redisPort: redis.port, nodeId: 'auth-a' }),
            startGateway({ redisPort: redis.port, nodeId: 'auth-b' }),
            startGateway({
                redisPort: redis.port,
                nodeId: 'auth-iss',
                args: ['--jwt-issuer', ISSUER, '--jwt-audience', AUDIENCE],
            }),
            startGateway({
                redisPort: redis.port,
                nodeId: 'auth-origin',
                args: ['--allowed-origins', `${GOOD_ORIGIN},https://also-good.example`],
            }),
            startGateway({
                redisPort: redis.port,
                nodeId: 'auth-rs',
                args: ['--jwt-alg', 'RS256', '--jwt-public-key', rsaKeys.file],
            }),
            startGateway({
                redisPort: redis.port,
                nodeId: 'auth-es',
                args: ['--jwt-alg', 'ES256', '--jwt-public-key', ecKeys.file],
            }),
            startGateway({ redisPort: deadRedisPort, nodeId: 'auth-noredis', waitFor: '/healthz' }),
        ]);
    });

    after(stopAll);

    /** Asserts a plain-HTTP rejection with `status`, no upgrade, and a JSON {error, message}. */
    async function assertRejected(url, opts, status) {
        const res = await handshake(url, opts);
        assert.equal(res.upgraded, false, `expected no upgrade, got 101 (welcome ${JSON.stringify(res.welcome)})`);
        assert.equal(res.status, status, `expected HTTP ${status}, got ${res.status}: ${res.text || res.error}`);
        assert.ok(res.body && typeof res.body === 'object', `body is not JSON: ${JSON.stringify(res.text)}`);
        assert.equal(typeof res.body.error, 'string', `body.error missing: ${res.text}`);
        assert.ok(res.body.error.length > 0);
        assert.equal(typeof res.body.message, 'string', `body.message missing: ${res.text}`);
        assert.ok(res.body.message.length > 0);
        return res;
    }

    async function assertAccepted(url, opts, expectedUser) {
        const c = await connect(url, opts);
        assert.equal(c.welcome.type, 'welcome');
        if (expectedUser !== undefined) assert.equal(c.welcome.user, expectedUser);
        await c.close();
        return c;
    }

    describe('401 for bad tokens (HS256 node)', () => {
        it('missing token → 401', async () => {
            await assertRejected(nodeA.url, {}, 401);
        });

        it('malformed tokens → 401', async () => {
            for (const bad of ['garbage', 'a.b.c', 'eyJhbGciOiJIUzI1NiJ9.bm90LWpzb24.c2ln', '..', 'a.b']) {
                await assertRejected(nodeA.url, { token: bad }, 401);
            }
        });

        it('bad signature (other secret) → 401', async () => {
            await assertRejected(nodeA.url, { token: token({ key: 'not-the-secret' }) }, 401);
        });

        it('tampered payload (signature of another payload) → 401', async () => {
            const good = token({ sub: 'alice' });
            const [h, , s] = good.split('.');
            const other = token({ sub: 'mallory' }).split('.')[1];
            await assertRejected(nodeA.url, { token: `${h}.${other}.${s}` }, 401);
        });

        it('wrong alg HS384 with the same secret → 401', async () => {
            await assertRejected(nodeA.url, { token: token({ alg: 'HS384' }) }, 401);
        });

        it('alg none → 401', async () => {
            const t = token({ alg: 'none' });
            assert.match(t, /\.$/, 'an unsigned token ends with an empty signature');
            await assertRejected(nodeA.url, { token: t }, 401);
        });

        it('expired → 401', async () => {
            await assertRejected(nodeA.url, { token: token({ exp: nowSeconds() - 120 }) }, 401);
        });

        it('missing exp (required by default) → 401', async () => {
            await assertRejected(nodeA.url, { token: token({ exp: null }) }, 401);
        });

        it('nbf in the future → 401', async () => {
            await assertRejected(nodeA.url, { token: token({ nbf: nowSeconds() + 600 }) }, 401);
        });

        it('nbf in the past is accepted', async () => {
            await assertAccepted(nodeA.url, { token: token({ nbf: nowSeconds() - 60 }) }, 'alice');
        });

        it('missing sub → 401', async () => {
            await assertRejected(nodeA.url, { token: token({ sub: null }) }, 401);
        });

        it('empty sub → 401', async () => {
            await assertRejected(nodeA.url, { token: token({ sub: '' }) }, 401);
        });

        it("sub starting with '@' → 401", async () => {
            await assertRejected(nodeA.url, { token: token({ sub: '@server' }) }, 401);
            await assertRejected(nodeA.url, { token: token({ sub: '@alice' }) }, 401);
        });
    });

    describe('issuer and audience (node started with --jwt-issuer/--jwt-audience)', () => {
        it('right iss and aud are accepted', async () => {
            await assertAccepted(nodeIss.url, { token: token({ iss: ISSUER, aud: AUDIENCE }) }, 'alice');
        });

        it('aud as an array containing the audience is accepted', async () => {
            await assertAccepted(nodeIss.url, { token: token({ iss: ISSUER, aud: ['other', AUDIENCE] }) }, 'alice');
        });

        it('wrong iss → 401', async () => {
            await assertRejected(nodeIss.url, { token: token({ iss: 'https://evil.test', aud: AUDIENCE }) }, 401);
        });

        it('missing iss → 401', async () => {
            await assertRejected(nodeIss.url, { token: token({ aud: AUDIENCE }) }, 401);
        });

        it('wrong aud → 401', async () => {
            await assertRejected(nodeIss.url, { token: token({ iss: ISSUER, aud: 'someone-else' }) }, 401);
        });

        it('missing aud → 401', async () => {
            await assertRejected(nodeIss.url, { token: token({ iss: ISSUER }) }, 401);
        });
    });

    describe('token sources and precedence (Authorization Bearer, ?token=, cookie)', () => {
        it('token in the Authorization: Bearer header', async () => {
            await assertAccepted(nodeA.url, { token: token({ sub: 'hdr' }), tokenIn: 'header' }, 'hdr');
        });

        it('token in the ?token= query parameter', async () => {
            await assertAccepted(nodeA.url, { token: token({ sub: 'qry' }), tokenIn: 'query' }, 'qry');
        });

        it('token in the `token` cookie', async () => {
            await assertAccepted(nodeA.url, { token: token({ sub: 'cky' }), tokenIn: 'cookie' }, 'cky');
        });

        it('token cookie among other cookies', async () => {
            const t = token({ sub: 'cky2' });
            await assertAccepted(nodeA.url, { headers: { Cookie: `a=1; token=${t}; b=2` } }, 'cky2');
        });

        it('valid Bearer header + invalid query token → accepted (header wins)', async () => {
            await assertAccepted(
                nodeA.url,
                { token: token({ sub: 'hdr-wins' }), tokenIn: 'header', query: { token: 'not-a-jwt' } },
                'hdr-wins',
            );
        });

        it('invalid Bearer header + valid query token → 401 (no fall-back)', async () => {
            await assertRejected(
                nodeA.url,
                { headers: { Authorization: 'Bearer not-a-jwt' }, query: { token: token({ sub: 'q' }) } },
                401,
            );
        });

        it('expired Bearer header + valid cookie → 401 (no fall-back)', async () => {
            await assertRejected(
                nodeA.url,
                {
                    token: token({ exp: nowSeconds() - 60 }),
                    tokenIn: 'header',
                    headers: { Cookie: `token=${token({ sub: 'c' })}` },
                },
                401,
            );
        });

        it('invalid query token + valid cookie → 401 (no fall-back)', async () => {
            await assertRejected(
                nodeA.url,
                { query: { token: 'not-a-jwt' }, headers: { Cookie: `token=${token({ sub: 'c' })}` } },
                401,
            );
        });

        it('non-Bearer Authorization counts as absent → the query token is used', async () => {
            await assertAccepted(
                nodeA.url,
                { headers: { Authorization: 'Basic dXNlcjpwYXNz' }, query: { token: token({ sub: 'q-used' }) } },
                'q-used',
            );
        });

        it('non-Bearer Authorization alone → 401 (missing)', async () => {
            await assertRejected(nodeA.url, { headers: { Authorization: 'Basic dXNlcjpwYXNz' } }, 401);
        });

        it('valid query token + invalid cookie → accepted (query wins)', async () => {
            await assertAccepted(
                nodeA.url,
                { query: { token: token({ sub: 'q-wins' }) }, headers: { Cookie: 'token=not-a-jwt' } },
                'q-wins',
            );
        });
    });

    describe('Origin allow-list (node started with --allowed-origins)', () => {
        it('an Origin not in the list → 403', async () => {
            await assertRejected(nodeOrigin.url, { token: token(), origin: 'http://evil.example' }, 403);
        });

        it('an allowed Origin is accepted', async () => {
            await assertAccepted(nodeOrigin.url, { token: token(), origin: GOOD_ORIGIN }, 'alice');
            await assertAccepted(nodeOrigin.url, { token: token(), origin: 'https://also-good.example' }, 'alice');
        });

        it('an empty allow-list (default) allows any Origin', async () => {
            await assertAccepted(nodeA.url, { token: token(), origin: 'http://anything.example' }, 'alice');
        });
    });

    describe('node whose Redis is unreachable', () => {
        it('/healthz 200, /readyz 503', async () => {
            assert.equal((await nodeNoRedis.get('/healthz')).status, 200);
            const ready = await nodeNoRedis.get('/readyz');
            assert.equal(ready.status, 503, `readyz answered ${ready.status} ${ready.body}`);
        });

        it('a handshake with a valid token → 503, no upgrade', async () => {
            await assertRejected(nodeNoRedis.url, { token: token() }, 503);
        });
    });

    describe('RS256 and ES256 with a public key file', () => {
        it('RS256: a good token is accepted', async () => {
            await assertAccepted(nodeRS.url, { token: token({ sub: 'rs-user', alg: 'RS256', key: rsaKeys.privateKey }) }, 'rs-user');
        });

        it('RS256: an HS256 token (even with the configured secret) → 401', async () => {
            await assertRejected(nodeRS.url, { token: token({ alg: 'HS256' }) }, 401);
        });

        it('RS256: an HS256 token keyed with the public key PEM (key confusion) → 401', async () => {
            const key = crypto.createSecretKey(Buffer.from(rsaKeys.pubPem));
            await assertRejected(nodeRS.url, { token: token({ alg: 'HS256', key }) }, 401);
        });

        it('RS256: signed by another RSA key → 401', async () => {
            const other = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
            await assertRejected(nodeRS.url, { token: token({ alg: 'RS256', key: other }) }, 401);
        });

        it('RS256: an ES256 token → 401', async () => {
            await assertRejected(nodeRS.url, { token: token({ alg: 'ES256', key: ecKeys.privateKey }) }, 401);
        });

        it('ES256: a good token is accepted', async () => {
            await assertAccepted(nodeES.url, { token: token({ sub: 'es-user', alg: 'ES256', key: ecKeys.privateKey }) }, 'es-user');
        });

        it('ES256: an HS256 token → 401', async () => {
            await assertRejected(nodeES.url, { token: token({ alg: 'HS256' }) }, 401);
        });

        it('ES256: an expired ES256 token → 401', async () => {
            await assertRejected(
                nodeES.url,
                { token: token({ alg: 'ES256', key: ecKeys.privateKey, exp: nowSeconds() - 60 }) },
                401,
            );
        });
    });

    describe('welcome frame', () => {
        it('is the first frame and carries type, conn, user, node, ts, heartbeat', async () => {
            const before = Date.now();
            const c = await connect(nodeA.url, { token: token({ sub: 'welcome-user', name: 'W' }) });
            const w = c.frames[0];
            assert.equal(w.type, 'welcome');
            assert.equal(typeof w.conn, 'string');
            assert.ok(w.conn.length > 0);
            assert.equal(w.user, 'welcome-user');
            assert.equal(w.node, 'auth-a');
            assert.equal(typeof w.ts, 'number');
            assert.ok(Number.isInteger(w.ts), `ts ${w.ts} is not an integer of milliseconds`);
            assert.ok(w.ts >= before - 5000 && w.ts <= Date.now() + 5000, `ts ${w.ts} is not near now (${Date.now()})`);
            assert.equal(typeof w.heartbeat, 'number');
            assert.equal(w.heartbeat, HEARTBEAT_S);
            await c.close();
        });

        it('conn ids are unique across two nodes, many connections and over time', async () => {
            const ids = [];
            const opts = (i) => ({ token: token({ sub: `u${i}` }) });
            const a1 = await connectMany(nodeA.url, 20, opts);
            const b1 = await connectMany(nodeB.url, 20, opts);
            for (const c of [...a1, ...b1]) ids.push(c.welcome.conn);
            assert.equal(b1[0].welcome.node, 'auth-b');
            await Promise.all([...a1, ...b1].map((c) => c.close()));
            const a2 = await connectMany(nodeA.url, 10, opts);
            const b2 = await connectMany(nodeB.url, 10, opts);
            for (const c of [...a2, ...b2]) ids.push(c.welcome.conn);
            await Promise.all([...a2, ...b2].map((c) => c.close()));
            assert.equal(new Set(ids).size, ids.length, `duplicate conn ids: ${ids.join(' ')}`);
        });
    });
});
