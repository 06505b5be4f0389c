// PROTOCOL.md §5 HTTP rules (issue 11): requests pipelined in one TCP segment are answered once
// each in order, or the first with `Connection: close` and the connection closed — never a hang,
// a spin or a request run twice; chunked bodies get 411 at once; bodies over the frame limit 413;
// headers over the header limit 431; every refusal has a JSON body. Afterwards the node still
// answers /healthz and exits 0 on SIGTERM. Every exchange is bounded.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startGateway, startRedis, stopAll } from './lib/harness.mjs';
import { connect, token } from './lib/client.mjs';
import { rawExchange } from './lib/rawhttp.mjs';

const KEY = 'pipeline-key';
let redis;
let node;

before(async () => {
    redis = await startRedis();
    node = await startGateway({ redisPort: redis.port, args: ['--api-key', KEY] });
});

after(stopAll);

const post = (path, body, { key = KEY, extra = '' } = {}) =>
    `POST ${path} HTTP/1.1\r\nHost: x\r\n` +
    (key ? `Authorization: Bearer ${key}\r\n` : '') +
    `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`;
const get = (path) => `GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`;

function assertJsonError(res, status) {
    assert.equal(res.status, status, `status ${res.status}: ${res.body}`);
    assert.match(res.headers['content-type'] || '', /application\/json/);
    const body = JSON.parse(res.body);
    assert.equal(typeof body.error, 'string');
    assert.equal(typeof body.message, 'string');
    return body;
}

/* One exchange ended the way §5 allows: the answers came in order, each once, and when fewer
 * answers than requests came, the last one said Connection: close and the server closed. */
function assertAnsweredOrClosed(r, requests) {
    assert.equal(r.timedOut, false, `the node did not finish the exchange: ${r.text.slice(0, 300)}`);
    assert.ok(r.responses.length >= 1 && r.responses.length <= requests, r.text);
    if (r.responses.length < requests) {
        assert.equal(r.responses.at(-1).headers.connection, 'close');
        assert.equal(r.closedByServer, true);
    }
}

async function healthy() {
    const r = await node.get('/healthz', { timeoutMs: 2000 });
    assert.equal(r.status, 200);
}

describe('pipelined requests', () => {
    it('GET /healthz + POST with a 5-byte body in one write', async () => {
        const r = await rawExchange(node.port, get('/healthz') + post('/api/publish', 'hello', { key: null }));
        assertAnsweredOrClosed(r, 2);
        assert.equal(r.responses[0].status, 200);
        await healthy();
    });

    it('two unauthorised POSTs in one write', async () => {
        const r = await rawExchange(node.port, post('/api/publish', 'hello', { key: 'wrong' }).repeat(2));
        assertAnsweredOrClosed(r, 2);
        for (const res of r.responses) assertJsonError(res, 401);
        await healthy();
    });

    it('two authorised publishes in one write: each answered request published exactly once', async () => {
        const room = 'pipe-room';
        const member = await connect(node.url, { token: token({ sub: 'watcher' }) });
        assert.equal((await member.request({ type: 'join', room })).type, 'joined');
        const body = (t) => JSON.stringify({ room, text: t });
        const r = await rawExchange(node.port, post('/api/publish', body('a1')) + post('/api/publish', body('a2')));
        assertAnsweredOrClosed(r, 2);
        r.responses.forEach((res, i) => {
            assert.equal(res.status, 200);
            assert.equal(JSON.parse(res.body).offset, i + 1);
        });
        const answered = r.responses.length;
        // The room's counter says how many publishes ran: exactly the answered ones.
        assert.equal(await rawSeq(room), answered);
        // A marker publish arrives right after the answered ones: nothing ran in between.
        const marker = await fetch(`${node.httpUrl}/api/publish`, {
            method: 'POST',
            headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
            body: body('marker'),
            signal: AbortSignal.timeout(3000),
        });
        assert.equal((await marker.json()).offset, answered + 1);
        const got = await member.collect((f) => f.type === 'message', answered + 1);
        assert.deepEqual(got.map((m) => m.offset), Array.from({ length: answered + 1 }, (_, i) => i + 1));
        await healthy();
    });
});

/* The room's last offset as stored in Redis (bulk string reply parsed by hand: one value). */
function rawSeq(room) {
    return new Promise((resolve, reject) => {
        const s = net.connect(redis.port, '127.0.0.1');
        let buf = '';
        const timer = setTimeout(() => {
            s.destroy();
            reject(new Error('redis GET timed out'));
        }, 3000);
        s.on('data', (d) => {
            buf += d;
            const m = /^\$(-?\d+)\r\n([^\r]*)\r\n/.exec(buf);
            if (m || buf.startsWith('$-1\r\n')) {
                clearTimeout(timer);
                s.end();
                resolve(m && m[1] !== '-1' ? Number(m[2]) : 0);
            }
        });
        s.write(`*2\r\n$3\r\nGET\r\n$${Buffer.byteLength(`chat:{${room}}:seq`)}\r\nchat:{${room}}:seq\r\n`);
    });
}

describe('request bodies and headers', () => {
    const chunked = (body) =>
        `POST /api/publish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${KEY}\r\n` +
        `Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n` +
        `${Buffer.byteLength(body).toString(16)}\r\n${body}\r\n0\r\n\r\n`;

    it('a chunked body with valid JSON → 411 with a JSON body, nothing published', async () => {
        const r = await rawExchange(node.port, chunked(JSON.stringify({ room: 'chunk-room', text: 'x' })));
        assert.equal(r.timedOut, false);
        assertJsonError(r.responses[0], 411);
        assert.equal(await rawSeq('chunk-room'), 0);
    });

    it('a chunked body with invalid JSON → 411', async () => {
        const r = await rawExchange(node.port, chunked('{not json'));
        assert.equal(r.timedOut, false);
        assertJsonError(r.responses[0], 411);
    });

    it('a slow chunked body is refused at once, before it ends', async () => {
        const head =
            `POST /api/publish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${KEY}\r\n` +
            `Transfer-Encoding: chunked\r\n\r\n`;
        const parts = [head, '5\r\n', '{"roo', '\r\n', '3\r\nm":', '\r\n', '0\r\n\r\n'];
        const r = await rawExchange(node.port, parts, { gapMs: 400, timeoutMs: 5000 });
        assert.equal(r.timedOut, false);
        assertJsonError(r.responses[0], 411);
        assert.ok(r.firstByteMs < 1500, `411 came after ${r.firstByteMs} ms, not at once`);
        await healthy();
    });

    it('a declared body over the frame limit → 413 with a JSON body', async () => {
        const r = await rawExchange(
            node.port,
            `POST /api/publish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${KEY}\r\nContent-Length: 70000\r\n\r\n`,
        );
        assert.equal(r.timedOut, false);
        assertJsonError(r.responses[0], 413);
    });

    it('a body that grows over the frame limit → 413', async () => {
        const big = JSON.stringify({ room: 'r', text: 'x'.repeat(70000) });
        const r = await rawExchange(node.port, post('/api/publish', big));
        assert.equal(r.timedOut, false);
        assertJsonError(r.responses[0], 413);
    });

    it('headers over the header limit (8 KiB) → 431 with a JSON body', async () => {
        const r = await rawExchange(node.port, `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: ${'p'.repeat(10000)}\r\n\r\n`);
        assert.equal(r.timedOut, false);
        assertJsonError(r.responses[0], 431);
    });

    it('a POST without a body → 400 at once, not a hang', async () => {
        const r = await rawExchange(node.port, `POST /api/publish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${KEY}\r\n\r\n`);
        assert.equal(r.timedOut, false);
        assertJsonError(r.responses[0], 400);
    });

    it('every answer says Connection: close', async () => {
        const r = await rawExchange(node.port, get('/healthz'));
        assert.equal(r.responses[0].headers.connection, 'close');
        assert.equal(r.closedByServer, true);
    });
});

describe('afterwards', () => {
    it('the node answers /healthz and exits 0 on SIGTERM', async () => {
        await healthy();
        const status = await node.kill('SIGTERM');
        assert.equal(status.code, 0, `exit ${JSON.stringify(status)}`);
    });
});
