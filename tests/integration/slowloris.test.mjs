// Issue 4: a cap on the time to complete a handshake (--handshake-timeout) and on the HTTP
// request's header size (--max-header-bytes). A client that sends its upgrade request one byte
// per second, or nothing at all, is disconnected within the timeout (+ slack); many of them do
// not keep anyone else out. A request whose headers exceed the cap gets an error status or a
// close — never a 101.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, startRedis, stopAll } from './lib/harness.mjs';
import { connect, token } from './lib/client.mjs';
import { listenAddresses } from './lib/proc.mjs';
import { dribble, rawRequest, upgradeRequest } from './lib/rawhttp.mjs';

const TIMEOUT_S = 2;
const SLACK_MS = 2500;
let slow; // --handshake-timeout 2 --max-header-bytes 2KiB
let dflt; // defaults (8 KiB headers)

before(async () => {
    const redis = await startRedis();
    [slow, dflt] = await Promise.all([
        startGateway({
            redisPort: redis.port,
            nodeId: 'loris',
            heartbeat: 60,
            args: ['--handshake-timeout', String(TIMEOUT_S), '--max-header-bytes', '2KiB'],
        }),
        startGateway({ redisPort: redis.port, nodeId: 'hdr', heartbeat: 60 }),
    ]);
});

after(stopAll);

const goodToken = () => token({ sub: 'loris-user' });

function assertCut(r, what) {
    assert.ok(r.closedByServer, `${what}: still connected after ${r.ms} ms (${r.bytesSent} bytes sent)`);
    assert.notEqual(r.status, 101, `${what}: got a 101: ${r.received?.slice(0, 200)}`);
    assert.ok(r.ms <= TIMEOUT_S * 1000 + SLACK_MS, `${what}: cut only after ${r.ms} ms`);
}

// The cases run concurrently: each may take up to the timeout + slack.
describe(`--handshake-timeout ${TIMEOUT_S}`, { concurrency: true }, () => {
    it('an upgrade request sent one byte per second is cut off within the timeout + slack', async () => {
        const req = upgradeRequest(slow.port, { headers: { Authorization: `Bearer ${goodToken()}` } });
        const r = await dribble(slow.port, req, { intervalMs: 1000, timeoutMs: TIMEOUT_S * 1000 + SLACK_MS + 3000 });
        assertCut(r, 'byte-per-second upgrade');
        assert.ok(r.bytesSent < req.length, 'the whole request went through');
    });

    it('a connection that sends nothing is cut off within the timeout + slack', async () => {
        const r = await dribble(slow.port, '', { timeoutMs: TIMEOUT_S * 1000 + SLACK_MS + 3000 });
        assertCut(r, 'silent connection');
    });

    it('a request line and part of the headers, then silence, is cut off', async () => {
        const partial = `GET /ws HTTP/1.1\r\nHost: 127.0.0.1:${slow.port}\r\nUpgrade: websocket\r\n`;
        const start = Date.now();
        const r = await rawRequest(slow.port, partial, { timeoutMs: TIMEOUT_S * 1000 + SLACK_MS + 3000 });
        assert.ok(r.closedByServer, `still connected after ${Date.now() - start} ms`);
        assert.notEqual(r.status, 101);
        assert.ok(r.ms <= TIMEOUT_S * 1000 + SLACK_MS, `cut only after ${r.ms} ms`);
    });

    it('a plain HTTP request dribbled byte by byte (GET /metrics) is cut off as well', async () => {
        const req = `GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:${slow.port}\r\nUser-Agent: slow\r\n\r\n`;
        const r = await dribble(slow.port, req, { intervalMs: 500, timeoutMs: TIMEOUT_S * 1000 + SLACK_MS + 3000 });
        assert.ok(r.closedByServer, `still connected after ${r.ms} ms`);
        assert.ok(r.ms <= TIMEOUT_S * 1000 + SLACK_MS, `cut only after ${r.ms} ms`);
        assert.ok(r.bytesSent < req.length, 'the whole request went through');
    });

    it('30 dribbling connections do not keep a normal client out, and are all cut off', async () => {
        const req = upgradeRequest(slow.port, { headers: { Authorization: `Bearer ${goodToken()}` } });
        const lorises = Array.from({ length: 30 }, () =>
            dribble(slow.port, req, { intervalMs: 1000, timeoutMs: TIMEOUT_S * 1000 + SLACK_MS + 3000 }),
        );
        const t0 = Date.now();
        const c = await connect(slow.url, { token: goodToken(), label: 'normal', timeoutMs: 3000 });
        assert.ok(Date.now() - t0 < 1000, `normal handshake took ${Date.now() - t0} ms beside 30 slow ones`);
        const pong = await c.request({ type: 'ping' });
        assert.equal(pong.type, 'pong');
        for (const r of await Promise.all(lorises)) assertCut(r, 'one of 30 dribblers');
        assert.ok(c.isOpen, `the normal client was closed: ${JSON.stringify(c.closeInfo)}`);
        await c.close();
    });

    it('a normal handshake on the same node still works (the timeout does not hit honest clients)', async () => {
        const c = await connect(slow.url, { token: goodToken(), label: 'honest' });
        assert.equal(c.welcome.type, 'welcome');
        await c.close();
    });
});

describe('--max-header-bytes', () => {
    function upgradeWithPad(port, padBytes) {
        return upgradeRequest(port, { headers: { Authorization: `Bearer ${goodToken()}`, 'X-Pad': 'p'.repeat(padBytes) } });
    }

    function assertRefused(r, what) {
        assert.ok(!r.timedOut, `${what}: no answer and no close within the time limit`);
        assert.notEqual(r.status, 101, `${what}: upgraded: ${r.text.slice(0, 200)}`);
        assert.ok(r.closedByServer || r.status >= 400, `${what}: status ${r.status}, not closed`);
        if (r.status) assert.ok(r.status >= 400 && r.status < 600, `${what}: status ${r.status}`);
    }

    it('default 8 KiB: a 10 KiB header → an error status or a close, never 101', async () => {
        const r = await rawRequest(dflt.port, upgradeWithPad(dflt.port, 10 * 1024), { timeoutMs: 4000 });
        assertRefused(r, '10 KiB X-Pad');
    });

    it('default 8 KiB: 200 headers of 60 bytes (12 KiB in all) → an error status or a close, never 101', async () => {
        const headers = { Authorization: `Bearer ${goodToken()}` };
        for (let i = 0; i < 200; i++) headers[`X-H${i}`] = 'h'.repeat(60);
        const r = await rawRequest(dflt.port, upgradeRequest(dflt.port, { headers }), { timeoutMs: 4000 });
        assertRefused(r, '200 headers');
    });

    it('default 8 KiB: a 4 KiB header is fine (101)', async () => {
        const r = await rawRequest(dflt.port, upgradeWithPad(dflt.port, 4 * 1024), { timeoutMs: 4000 });
        assert.equal(r.status, 101, `4 KiB X-Pad: ${r.text.slice(0, 300)}`);
    });

    it('--max-header-bytes 2KiB: a 3 KiB header → refused; an ordinary handshake → 101', async () => {
        assertRefused(await rawRequest(slow.port, upgradeWithPad(slow.port, 3 * 1024), { timeoutMs: 4000 }), '3 KiB X-Pad');
        const ok = await rawRequest(slow.port, upgradeWithPad(slow.port, 0), { timeoutMs: 4000 });
        assert.equal(ok.status, 101, ok.text.slice(0, 300));
    });

    it('the nodes keep serving after oversized requests', async () => {
        for (const node of [dflt, slow]) {
            assert.equal((await node.get('/healthz')).status, 200);
            const c = await connect(node.url, { token: goodToken(), label: `after-${node.nodeId}` });
            assert.equal((await c.request({ type: 'ping' })).type, 'pong');
            await c.close();
        }
    });
});

describe('listener', () => {
    it('--bind 127.0.0.1 listens on 127.0.0.1 only, not on every interface', () => {
        for (const node of [slow, dflt]) {
            const addrs = listenAddresses(node.port);
            assert.ok(addrs.length >= 1, `${node.nodeId}: no listening socket on port ${node.port}`);
            for (const a of addrs) {
                assert.ok(['127.0.0.1', '::ffff:127.0.0.1'].includes(a), `${node.nodeId} listens on [${a}]:${node.port}, not 127.0.0.1 (all: ${addrs.join(', ')})`);
            }
        }
    });
});
