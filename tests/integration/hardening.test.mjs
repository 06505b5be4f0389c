// Issue 11's smaller defects, each as a test that failed before its fix:
//  - the `token` cookie is the cookie named exactly `token` (RFC 6265), not any name ending so;
//  - log values escape every control character (ESC, C1, U+2028), so a `sub` cannot forge lines
//    or drive a terminal;
//  - a binary message over the frame limit closes 1009 (not bad_request);
//  - a message in pieces must finish within --message-timeout, and its buffer grows with the
//    data received, not with the length the peer declares;
//  - GET /ws without an upgrade answers the handshake's verdict (401 with the reason), so
//    browsers can learn why they were refused; 426 when the token would be accepted.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import { startGateway, startRedis, stopAll } from './lib/harness.mjs';
import { connect, handshake, nowSeconds, token } from './lib/client.mjs';

let node;

before(async () => {
    const redis = await startRedis();
    node = await startGateway({ redisPort: redis.port, args: ['--message-timeout', '2', '--log-level', 'debug'] });
});

after(stopAll);

describe('token cookie (RFC 6265)', () => {
    it('a valid token after csrftoken= is found', async () => {
        const c = await connect(node.url, { headers: { Cookie: `csrftoken=abc; token=${token({ sub: 'ck1' })}` } });
        assert.equal(c.welcome.user, 'ck1');
        await c.close();
    });

    it('mytoken= is another cookie: no token → 401', async () => {
        const r = await handshake(node.url, { headers: { Cookie: `mytoken=${token({ sub: 'ck2' })}` } });
        assert.equal(r.status, 401);
        assert.equal(r.upgraded, false);
    });
});

describe('log lines', () => {
    it('control characters in a sub are escaped, never written raw', async () => {
        const sub = 'evil\x1b[2J\x07\u0085\u2028forged event=x\nlevel=error';
        const c = await connect(node.url, { token: token({ sub }) });
        await c.request({ type: 'join', room: 'logroom' });
        await c.close();
        const bad = token({ sub: 'x\x1b]0;title\x07', exp: nowSeconds() - 100 });
        assert.equal((await handshake(node.url, { token: bad })).status, 401);
        const text = fs.readFileSync(node.logFile, 'utf8');
        for (const ch of ['\x1b', '\x07', '\u0085', '\u2028'])
            assert.ok(!text.includes(ch), `raw U+${ch.codePointAt(0).toString(16)} in the log`);
        assert.ok(text.includes('evil\\x1B[2J'), 'the sub was logged, escaped');
        for (const line of text.split('\n').filter((l) => l && !l.startsWith('#')))
            assert.match(line, /^ts=\S+ level=\w+ node=\S+ event=\w+/, `forged line: ${line.slice(0, 120)}`);
    });
});

describe('message limits', () => {
    it('a binary message over the frame limit closes 1009', async () => {
        const c = await connect(node.url, { token: token({ sub: 'bin' }) });
        const done = c.closedWithin(5000);
        c.ws.send(Buffer.alloc(70000, 1), { binary: true });
        assert.equal((await done).code, 1009);
    });

    it('a small binary message still gets bad_request and the connection stays', async () => {
        const c = await connect(node.url, { token: token({ sub: 'bin2' }) });
        c.ws.send(Buffer.from([1, 2, 3]), { binary: true });
        const e = await c.next({ type: 'error' });
        assert.equal(e.code, 'bad_request');
        assert.equal((await c.request({ type: 'ping' })).type, 'pong');
        await c.close();
    });

    it('a message trickled past --message-timeout is closed 1008', async () => {
        const c = await connect(node.url, { token: token({ sub: 'trickle' }) });
        const done = c.closedWithin(6000);
        // A text frame that declares 60,000 bytes (masked, as clients must), sent in pieces.
        const len = 60000;
        const header = Buffer.from([0x81, 0xfe, len >> 8, len & 0xff, 0, 0, 0, 0]);
        const sock = c.ws._socket;
        sock.write(Buffer.concat([header, Buffer.from('{"type":"ping"')]));
        const ticker = setInterval(() => !sock.destroyed && sock.write(Buffer.from(' ')), 300);
        try {
            const { code } = await done;
            assert.equal(code, 1008);
        } finally {
            clearInterval(ticker);
        }
    });
});

describe('GET /ws without an upgrade', () => {
    const get = (headers) =>
        new Promise((resolve, reject) => {
            const s = net.connect(node.port, '127.0.0.1');
            let buf = '';
            const t = setTimeout(() => {
                s.destroy();
                reject(new Error('no answer'));
            }, 3000);
            s.on('data', (d) => (buf += d));
            s.on('close', () => {
                clearTimeout(t);
                const end = buf.indexOf('\r\n\r\n');
                resolve({ status: Number(buf.slice(9, 12)), body: JSON.parse(buf.slice(end + 4)) });
            });
            s.write(`GET /ws HTTP/1.1\r\nHost: x\r\n${headers}\r\n`);
        });

    it('an expired token → 401 with the reason', async () => {
        const r = await get(`Authorization: Bearer ${token({ sub: 'p', exp: nowSeconds() - 60 })}\r\n`);
        assert.equal(r.status, 401);
        assert.equal(r.body.error, 'invalid_token');
        assert.equal(r.body.message, 'token expired');
    });

    it('a good token → 426 upgrade_required', async () => {
        const r = await get(`Authorization: Bearer ${token({ sub: 'p' })}\r\n`);
        assert.equal(r.status, 426);
        assert.equal(r.body.error, 'upgrade_required');
    });
});
