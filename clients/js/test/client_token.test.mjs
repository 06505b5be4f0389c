// ChatClient's token refresh on a fake socket and clock: `refresh` before exp through the
// app's getToken, re-armed from each new exp, and what happens when it fails.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connectReady, fakeToken, makeClient, settle } from './support/fakes.mjs';

/** A getToken handing out tokens valid for lifeS seconds from the fake clock's now. */
function tokens(h, lifeS) {
    const issued = [];
    const getToken = async ({ reason }) => {
        const exp = Math.floor(h.clock.now() / 1000) + lifeS;
        const t = fakeToken({ sub: 'me', exp, n: issued.length });
        issued.push({ reason, exp, token: t });
        return t;
    };
    return { issued, getToken };
}

function setup(lifeS, opts = {}) {
    const box = {};
    // liveness off: the fake server never answers pings, and these tests skip hours ahead.
    const h = makeClient({ getToken: (r) => box.getToken(r), liveness: false, ...opts });
    Object.assign(box, tokens(h, lifeS));
    return { h, issued: box.issued };
}

describe('token refresh', () => {
    it('refreshes before exp (refreshBeforeMs ahead) and re-arms from the new exp', async () => {
        const { h, issued } = setup(3600);
        const ws = await connectReady(h);
        assert.equal(issued.length, 1);
        await h.clock.advance(3600 * 1000 - 60000 - 1);
        assert.equal(ws.sentOf('refresh').length, 0);
        await h.clock.advance(1);
        const r = ws.last('refresh');
        assert.equal(r.token, issued[1].token);
        assert.equal(issued[1].reason, 'refresh');
        ws.receive({ type: 'refreshed', id: r.id, exp: issued[1].exp });
        await settle();
        assert.equal(h.events.refreshed.length, 1);
        assert.equal(h.client.token, issued[1].token, 'the next handshake uses the new token');
        await h.clock.advance(3600 * 1000 - 60000);
        assert.equal(ws.sentOf('refresh').length, 2);
        h.client.close();
    });

    it('a short-lived token is refreshed half-way through', async () => {
        const { h } = setup(10);
        const ws = await connectReady(h);
        await h.clock.advance(4999);
        assert.equal(ws.sentOf('refresh').length, 0);
        await h.clock.advance(1);
        assert.equal(ws.sentOf('refresh').length, 1);
        h.client.close();
    });

    it('invalid_token: reported and retried while time is left', async () => {
        const { h } = setup(100);
        const ws = await connectReady(h);
        await h.clock.advance(50000);
        ws.receive({ type: 'error', id: ws.last('refresh').id, code: 'invalid_token', message: 'sub differs' });
        await settle();
        assert.equal(h.events.error.at(-1).message, 'sub differs');
        await h.clock.advance(25000);
        assert.equal(ws.sentOf('refresh').length, 2);
        h.client.close();
    });

    it('a server without refresh (unknown_type): no error event, no retry, new token kept', async () => {
        const { h, issued } = setup(100);
        const ws = await connectReady(h);
        await h.clock.advance(50000);
        ws.receive({ type: 'error', id: ws.last('refresh').id, code: 'unknown_type', message: 'unknown type' });
        await settle();
        assert.equal(h.events.error, undefined);
        await h.clock.advance(40000);
        assert.equal(ws.sentOf('refresh').length, 1);
        assert.equal(h.client.token, issued[1].token);
        h.client.close();
    });

    it('refreshToken() refreshes now; a drop cancels the armed refresh', async () => {
        const { h, issued } = setup(3600);
        const ws = await connectReady(h);
        const p = h.client.refreshToken();
        await settle();
        ws.receive({ type: 'refreshed', id: ws.last('refresh').id, exp: issued[1].exp });
        assert.equal((await p).exp, issued[1].exp);
        ws.end(1006);
        await h.clock.advance(h.events.state.at(-1).delayMs);
        await h.clock.advance(3600 * 1000);
        assert.equal(ws.sentOf('refresh').length, 1, 'nothing sent on a dead socket');
        h.client.close();
    });

    it('connects with a token close to exp only after replacing it', async () => {
        const { h, issued } = setup(3);
        h.client.connect();
        await settle();
        assert.equal(issued.length, 1);
        await h.clock.advance(0);
        assert.equal(issued[0].reason, 'connect');
        h.socket().welcome();
        h.socket().end(1006);
        await h.clock.advance(h.events.state.at(-1).delayMs);
        assert.equal(issued.length, 2);
        assert.equal(issued[1].reason, 'expiring');
        h.client.close();
    });
});
