// PROTOCOL.md §3 limits, each with its defined answer:
//  - frame limit (64 KiB): a message of up to 65536 bytes after reassembly is handled, more → close 1009;
//  - text limit (4096 UTF-8 bytes): more → error too_large, connection open;
//  - token bucket (20/s, burst 40, full at connect, publish+direct): over it → rate_limited;
//    a request rejected for another reason uses no token;
//  - abuse: the --abuse-limit-th rate_limited answer within --abuse-window s is followed at once
//    by close 1008 (default 100 in 10 s);
//  - rooms per connection (--max-rooms): one more → limit_exceeded.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { startGateway, startRedis, stopAll } from './lib/harness.mjs';
import { connect, token } from './lib/client.mjs';

let redis;
let gDefault; // all limits at their defaults
let gSmall; // --rate 1 --rate-burst 2 --abuse-limit 5 --max-rooms 3
let gWin; // --rate 1 --rate-burst 1 --abuse-limit 3 --abuse-window 1

before(async () => {
    redis = await startRedis();
    [gDefault, gSmall, gWin] = await Promise.all([
        startGateway({ redisPort: redis.port, nodeId: 'ldef' }),
        startGateway({
            redisPort: redis.port,
            nodeId: 'lsmall',
            args: ['--rate', '1', '--rate-burst', '2', '--abuse-limit', '5', '--max-rooms', '3'],
        }),
        startGateway({
            redisPort: redis.port,
            nodeId: 'lwin',
            args: ['--rate', '1', '--rate-burst', '1', '--abuse-limit', '3', '--abuse-window', '1'],
        }),
    ]);
});

after(stopAll);

let userSeq = 0;
async function fresh(node, label) {
    const sub = `lim-${label}-${++userSeq}`;
    return connect(node.url, { token: token({ sub }), label: `${sub}@${node.nodeId}` });
}

async function joinOk(c, room) {
    const j = await c.request({ type: 'join', room });
    assert.equal(j.type, 'joined', `join ${room}: ${JSON.stringify(j)}`);
    return j;
}

/** Resolves with the close info once c is closed; rejects after ms. */
async function assertOpen(c) {
    assert.ok(c.isOpen, `${c.label} closed: ${JSON.stringify(c.closeInfo)}`);
    const pong = await c.request({ type: 'ping' });
    assert.equal(pong.type, 'pong', JSON.stringify(pong));
}

function assertError(f, code, id) {
    assert.equal(f.type, 'error', `expected error ${code}, got ${JSON.stringify(f).slice(0, 300)}`);
    assert.equal(f.code, code, `expected ${code}, got ${JSON.stringify(f).slice(0, 300)}`);
    assert.equal(typeof f.message, 'string');
    if (id !== undefined) assert.equal(f.id, id, `id not echoed: ${JSON.stringify(f).slice(0, 300)}`);
}

/** A JSON ping frame of exactly `size` bytes (padded with an ignored extra field). */
function pingOfSize(id, size) {
    const base = JSON.stringify({ type: 'ping', id, pad: '' });
    const text = JSON.stringify({ type: 'ping', id, pad: 'x'.repeat(size - Buffer.byteLength(base)) });
    assert.equal(Buffer.byteLength(text), size);
    return text;
}

/** Sends text as a fragmented WebSocket message in `parts` frames. */
function sendFragmented(c, text, parts) {
    const step = Math.ceil(text.length / parts);
    for (let i = 0; i < text.length; i += step) {
        c.ws.send(text.slice(i, i + step), { fin: i + step >= text.length });
    }
}

describe('frame limit (64 KiB after reassembly)', () => {
    it('a 65536-byte message is handled (answered, connection open)', async () => {
        const c = await fresh(gDefault, 'frame-ok');
        const reply = c.next({ id: 'big-ok' }, 5000);
        c.sendRaw(pingOfSize('big-ok', 65536));
        const pong = await reply;
        assert.equal(pong.type, 'pong', JSON.stringify(pong).slice(0, 300));
        await assertOpen(c);
    });

    it('a 65536-byte message sent in 5 fragments is reassembled and handled', async () => {
        const c = await fresh(gDefault, 'frag-ok');
        const reply = c.next({ id: 'frag-ok' }, 5000);
        sendFragmented(c, pingOfSize('frag-ok', 65536), 5);
        const pong = await reply;
        assert.equal(pong.type, 'pong', JSON.stringify(pong).slice(0, 300));
        await assertOpen(c);
    });

    it('a 65536-byte publish over the text limit is answered too_large, not closed', async () => {
        const c = await fresh(gDefault, 'frame-pub');
        await joinOk(c, 'lim-frame');
        const base = JSON.stringify({ type: 'publish', room: 'lim-frame', text: '', id: 'p64k' });
        const frame = JSON.stringify({
            type: 'publish',
            room: 'lim-frame',
            text: 'y'.repeat(65536 - Buffer.byteLength(base)),
            id: 'p64k',
        });
        assert.equal(Buffer.byteLength(frame), 65536);
        const reply = c.next({ id: 'p64k' });
        c.sendRaw(frame);
        assertError(await reply, 'too_large', 'p64k');
        await assertOpen(c);
    });

    it('a 65537-byte message closes the connection with 1009', async () => {
        const c = await fresh(gDefault, 'frame-big');
        c.sendRaw(pingOfSize('big-no', 65537));
        const info = await c.closedWithin(5000, 'close 1009');
        assert.equal(info.code, 1009, `close code ${info.code} reason "${info.reason}"`);
        assert.ok(!c.frames.some((f) => f.id === 'big-no'), 'the oversized message was answered');
    });

    it('a 65537-byte message in 3 fragments (each small) closes with 1009', async () => {
        const c = await fresh(gDefault, 'frag-big');
        sendFragmented(c, pingOfSize('frag-no', 65537), 3);
        const info = await c.closedWithin(5000, 'close 1009');
        assert.equal(info.code, 1009, `close code ${info.code} reason "${info.reason}"`);
        assert.ok(!c.frames.some((f) => f.id === 'frag-no'), 'the oversized message was answered');
    });

    it('the node keeps serving after 1009 closes', async () => {
        const c = await fresh(gDefault, 'after-1009');
        await assertOpen(c);
    });
});

describe('text limit (4096 UTF-8 bytes)', () => {
    let c;
    before(async () => {
        c = await fresh(gDefault, 'text');
        await joinOk(c, 'lim-text');
    });

    it('4096 ASCII bytes → ack; 4097 → too_large with the id, connection open', async () => {
        const ok = await c.request({ type: 'publish', room: 'lim-text', text: 'a'.repeat(4096), id: 't4096' });
        assert.equal(ok.type, 'ack', JSON.stringify(ok).slice(0, 300));
        const big = await c.request({ type: 'publish', room: 'lim-text', text: 'a'.repeat(4097), id: 't4097' });
        assertError(big, 'too_large', 't4097');
        await assertOpen(c);
    });

    it('the limit counts UTF-8 bytes, not characters (2-byte é, 4-byte emoji)', async () => {
        const e = '\u00e9'; // 2 bytes in UTF-8
        const ok = await c.request({ type: 'publish', room: 'lim-text', text: e.repeat(2048) });
        assert.equal(ok.type, 'ack', JSON.stringify(ok).slice(0, 300));
        const big = await c.request({ type: 'publish', room: 'lim-text', text: e.repeat(2048) + 'a' });
        assertError(big, 'too_large');
        const smile = '\u{1F600}'; // 4 bytes in UTF-8, 2 UTF-16 units
        const ok2 = await c.request({ type: 'publish', room: 'lim-text', text: smile.repeat(1024) });
        assert.equal(ok2.type, 'ack', JSON.stringify(ok2).slice(0, 300));
        const big2 = await c.request({ type: 'publish', room: 'lim-text', text: smile.repeat(1024) + 'a' });
        assertError(big2, 'too_large');
        await assertOpen(c);
    });

    it('JSON escapes count as the bytes they decode to (\\u00e9 ×2048 = 4096 bytes → ack)', async () => {
        const escaped = '\\u00e9'.repeat(2048);
        const okReply = c.next({ id: 'esc-ok' });
        c.sendRaw(`{"type":"publish","room":"lim-text","id":"esc-ok","text":"${escaped}"}`);
        const ok = await okReply;
        assert.equal(ok.type, 'ack', JSON.stringify(ok).slice(0, 300));
        const bigReply = c.next({ id: 'esc-big' });
        c.sendRaw(`{"type":"publish","room":"lim-text","id":"esc-big","text":"${escaped}\\u0041"}`);
        assertError(await bigReply, 'too_large', 'esc-big');
        await assertOpen(c);
    });
});

describe('rate limit (token bucket)', () => {
    it('defaults: burst of 40 publishes acked, then rate_limited (with ids), connection open', async () => {
        const c = await fresh(gDefault, 'rate');
        await joinOk(c, 'lim-rate');
        const N = 50;
        const t0 = Date.now();
        const replies = Array.from({ length: N }, (_, i) => c.next({ id: `r${i}` }, 5000));
        for (let i = 0; i < N; i++) c.send({ type: 'publish', room: 'lim-rate', text: `m${i}`, id: `r${i}` });
        const sentMs = Date.now() - t0;
        const got = await Promise.all(replies);
        for (let i = 0; i < 40; i++) {
            assert.equal(got[i].type, 'ack', `publish ${i} of the burst: ${JSON.stringify(got[i])}`);
        }
        const acks = got.filter((f) => f.type === 'ack').length;
        const limited = got.filter((f) => f.type === 'error');
        for (const f of limited) assertError(f, 'rate_limited');
        // 20 tokens/s may refill a few while the 50 frames were being sent and handled.
        const refillAllowance = Math.ceil(((Date.now() - t0) / 1000) * 20) + 1;
        assert.ok(acks <= 40 + refillAllowance, `${acks} acks (sent in ${sentMs} ms)`);
        assert.ok(limited.length >= N - 40 - refillAllowance && limited.length >= 1, `${limited.length} rate_limited`);
        assert.equal(acks + limited.length, N);
        await assertOpen(c);
        // The bucket refills at 20/s: after 150 ms there are tokens again.
        await delay(150);
        const again = await c.request({ type: 'publish', room: 'lim-rate', text: 'after refill' });
        assert.equal(again.type, 'ack', JSON.stringify(again));
    });

    it('requests rejected for another reason (too_large, not_joined) use no token', async () => {
        const c = await fresh(gSmall, 'notoken'); // burst 2, 1/s
        await joinOk(c, 'lim-nt');
        for (let i = 0; i < 5; i++) {
            assertError(
                await c.request({ type: 'publish', room: 'lim-nt', text: 'z'.repeat(4097), id: `tl${i}` }),
                'too_large',
                `tl${i}`,
            );
            assertError(
                await c.request({ type: 'publish', room: 'lim-not-joined', text: 'x', id: `nj${i}` }),
                'not_joined',
                `nj${i}`,
            );
        }
        const [a, b] = await Promise.all([
            c.request({ type: 'publish', room: 'lim-nt', text: 'one' }),
            c.request({ type: 'publish', room: 'lim-nt', text: 'two' }),
        ]);
        assert.equal(a.type, 'ack', JSON.stringify(a));
        assert.equal(b.type, 'ack', JSON.stringify(b));
        const third = await c.request({ type: 'publish', room: 'lim-nt', text: 'three', id: 'third' });
        assertError(third, 'rate_limited', 'third');
        await assertOpen(c);
    });
});

describe('abuse: close 1008 right after the --abuse-limit-th rate_limited answer', () => {
    it('--abuse-limit 5: 5 rate_limited answers, then close 1008, nothing answered after', async () => {
        const c = await fresh(gSmall, 'abuse');
        await joinOk(c, 'lim-abuse');
        const [a, b] = await Promise.all([
            c.request({ type: 'publish', room: 'lim-abuse', text: 'one' }),
            c.request({ type: 'publish', room: 'lim-abuse', text: 'two' }),
        ]);
        assert.equal(a.type, 'ack', JSON.stringify(a));
        assert.equal(b.type, 'ack', JSON.stringify(b));
        const before = c.frames.length;
        for (let i = 0; i < 12; i++) c.send({ type: 'publish', room: 'lim-abuse', text: `flood ${i}`, id: `f${i}` });
        const info = await c.closedWithin(5000, 'close 1008');
        assert.equal(info.code, 1008, `close ${info.code} "${info.reason}"`);
        const after = c.frames.slice(before);
        const limited = after.filter((f) => f.type === 'error' && f.code === 'rate_limited');
        assert.equal(limited.length, 5, `rate_limited answers before the close: ${JSON.stringify(after)}`);
        assert.deepEqual(
            limited.map((f) => f.id),
            ['f0', 'f1', 'f2', 'f3', 'f4'],
        );
        const last = after[after.length - 1];
        assert.deepEqual(last, limited[4], `frames after the 5th rate_limited: ${JSON.stringify(after)}`);
        assert.ok(!after.some((f) => ['f5', 'f6', 'f7', 'f8', 'f9', 'f10', 'f11'].includes(f.id)), JSON.stringify(after));
    });

    it('rate_limited answers spread wider than --abuse-window do not close', async () => {
        const c = await fresh(gWin, 'window'); // burst 1, 1/s, 3 in 1 s → 1008
        await joinOk(c, 'lim-win');
        assert.equal((await c.request({ type: 'publish', room: 'lim-win', text: 'a' })).type, 'ack');
        for (let i = 0; i < 2; i++) {
            assertError(await c.request({ type: 'publish', room: 'lim-win', text: 'b' }), 'rate_limited');
        }
        await delay(1300); // past the 1 s window (and one token refilled)
        assert.equal((await c.request({ type: 'publish', room: 'lim-win', text: 'c' })).type, 'ack');
        for (let i = 0; i < 2; i++) {
            assertError(await c.request({ type: 'publish', room: 'lim-win', text: 'd' }), 'rate_limited');
        }
        await assertOpen(c); // 4 rate_limited in all, but never 3 within 1 s
        // The 3rd within 1 s: its rate_limited answer, then 1008.
        c.send({ type: 'publish', room: 'lim-win', text: 'e', id: 'e3' });
        const info = await c.closedWithin(3000, 'close 1008');
        assert.equal(info.code, 1008, `close ${info.code} "${info.reason}"`);
        const answer = c.frames.find((f) => f.id === 'e3');
        assert.ok(answer, `no rate_limited answer to the publish that triggered 1008; last frames: ${JSON.stringify(c.frames.slice(-3))}`);
        assertError(answer, 'rate_limited', 'e3');
    });

    it('defaults: 40 acks, then exactly 100 rate_limited answers, then 1008', async () => {
        const c = await fresh(gDefault, 'abuse-def');
        await joinOk(c, 'lim-abuse-def');
        const N = 40 + 120;
        const t0 = Date.now();
        for (let i = 0; i < N; i++) c.send({ type: 'publish', room: 'lim-abuse-def', text: `x${i}`, id: `d${i}` });
        const info = await c.closedWithin(10000, 'close 1008');
        const elapsed = Date.now() - t0;
        assert.equal(info.code, 1008, `close ${info.code} "${info.reason}"`);
        const limited = c.frames.filter((f) => f.type === 'error' && f.code === 'rate_limited');
        const acks = c.frames.filter((f) => f.type === 'ack');
        assert.equal(limited.length, 100, `rate_limited answers: ${limited.length} (acks ${acks.length}, ${elapsed} ms)`);
        // Nothing was answered after the 100th rate_limited (acks are asynchronous and may be
        // cut by the close, so only requests sent after it are checked).
        const lastLimitedIdx = Number(limited[99].id.slice(1));
        const answeredLater = c.frames.filter((f) => typeof f.id === 'string' && Number(f.id.slice(1)) > lastLimitedIdx);
        assert.deepEqual(answeredLater, [], 'requests after the 100th rate_limited were answered');
        assert.ok(acks.length <= 40 + Math.ceil((elapsed / 1000) * 20) + 1, `${acks.length} acks`);
    });
});

describe('rooms per connection (--max-rooms)', () => {
    it('--max-rooms 3: the 4th room → limit_exceeded; re-join and join after leave are fine', async () => {
        const c = await fresh(gSmall, 'rooms');
        for (const r of ['mr1', 'mr2', 'mr3']) await joinOk(c, r);
        assertError(await c.request({ type: 'join', room: 'mr4', id: 'j4' }), 'limit_exceeded', 'j4');
        await assertOpen(c);
        await joinOk(c, 'mr2'); // idempotent re-join: not a new room
        const left = await c.request({ type: 'leave', room: 'mr1' });
        assert.equal(left.type, 'left', JSON.stringify(left));
        await joinOk(c, 'mr4');
        assertError(await c.request({ type: 'join', room: 'mr5', id: 'j5' }), 'limit_exceeded', 'j5');
        // A failed join leaves no membership behind.
        assertError(await c.request({ type: 'leave', room: 'mr5', id: 'l5' }), 'not_joined', 'l5');
        await assertOpen(c);
    });

    it('default 100 rooms: the 101st → limit_exceeded', async () => {
        const c = await fresh(gDefault, 'rooms-def');
        const joins = await Promise.all(
            Array.from({ length: 100 }, (_, i) => c.request({ type: 'join', room: `dr${i}` }, 10000)),
        );
        for (const j of joins) assert.equal(j.type, 'joined', JSON.stringify(j));
        assertError(await c.request({ type: 'join', room: 'dr100', id: 'j101' }), 'limit_exceeded', 'j101');
        await assertOpen(c);
    });
});
