// PROTOCOL.md §1 and §7 (issue 11): a connection lives no longer than its token — closed 1008
// "token expired" within one second of exp (+ leeway) — unless an in-band `refresh` with a
// valid token of the same user extends it; a refused refresh changes nothing; a new `rooms`
// claim applies at once (rooms no longer allowed are left with `left` frames).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, startRedis, stopAll } from './lib/harness.mjs';
import { connect, nowSeconds, token } from './lib/client.mjs';

let node;

before(async () => {
    const redis = await startRedis();
    node = await startGateway({ redisPort: redis.port });
});

after(stopAll);

/* A token whose exp falls on a whole second at least minMs from now. */
function shortToken(sub, minMs, extra = {}) {
    const exp = Math.ceil((Date.now() + minMs) / 1000);
    return { exp, jwt: token({ sub, exp, extra }) };
}

describe('token lifetime', () => {
    it('closes 1008 "token expired" within one second of exp, and answers until then', async () => {
        const { exp, jwt } = shortToken('shortlived', 2000);
        const c = await connect(node.url, { token: jwt });
        const done = c.closedWithin(6000);
        assert.equal((await c.request({ type: 'ping' })).type, 'pong');
        const { code, reason, at } = await done;
        assert.equal(code, 1008);
        assert.equal(reason, 'token expired');
        assert.ok(at >= exp * 1000 - 50, `closed ${exp * 1000 - at} ms before exp`);
        assert.ok(at <= exp * 1000 + 1000, `closed ${at - exp * 1000} ms after exp`);
    });

    it('refresh with a later token extends the connection', async () => {
        const first = shortToken('refresher', 2000);
        const c = await connect(node.url, { token: first.jwt });
        const later = nowSeconds() + 3600;
        const r = await c.request({ type: 'refresh', token: token({ sub: 'refresher', exp: later }) });
        assert.equal(r.type, 'refreshed');
        assert.equal(r.exp, later);
        // Well past the first exp (+1 s), the connection still answers.
        await new Promise((resolve) => setTimeout(resolve, Math.max(0, first.exp * 1000 + 1500 - Date.now())));
        assert.equal((await c.request({ type: 'ping' })).type, 'pong');
        await c.close();
    });

    it('a token of another user is refused with invalid_token and changes nothing', async () => {
        const first = shortToken('owner', 2000);
        const c = await connect(node.url, { token: first.jwt });
        const done = c.closedWithin(6000);
        const r = await c.request({ type: 'refresh', token: token({ sub: 'intruder', exp: nowSeconds() + 3600 }) });
        assert.equal(r.type, 'error');
        assert.equal(r.code, 'invalid_token');
        const bad = await c.request({ type: 'refresh', token: 'not.a.jwt' });
        assert.equal(bad.code, 'invalid_token');
        const expired = await c.request({ type: 'refresh', token: token({ sub: 'owner', exp: nowSeconds() - 10 }) });
        assert.equal(expired.code, 'invalid_token');
        assert.match(expired.message, /expired/);
        const { code, at } = await done;
        assert.equal(code, 1008, 'the old exp still ends the connection');
        assert.ok(at <= first.exp * 1000 + 1000);
    });

    it('a narrower rooms claim leaves the rooms it no longer allows', async () => {
        const c = await connect(node.url, { token: token({ sub: 'narrow', extra: { rooms: ['keep', 'drop-*'] } }) });
        for (const room of ['keep', 'drop-1', 'drop-2'])
            assert.equal((await c.request({ type: 'join', room })).type, 'joined');
        const r = await c.request({ type: 'refresh', token: token({ sub: 'narrow', extra: { rooms: ['keep'] } }) });
        assert.equal(r.type, 'refreshed');
        const left = c.frames.filter((f) => f.type === 'left').map((f) => f.room).sort();
        assert.deepEqual(left, ['drop-1', 'drop-2']);
        const pub = await c.request({ type: 'publish', room: 'drop-1', text: 'x' });
        assert.equal(pub.code, 'not_joined');
        const again = await c.request({ type: 'join', room: 'drop-2' });
        assert.equal(again.code, 'forbidden');
        assert.equal((await c.request({ type: 'publish', room: 'keep', text: 'still here' })).type, 'ack');
        await c.close();
    });
});
