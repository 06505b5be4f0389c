// ChatClient's connection state machine on a fake socket and a virtual clock: states, backoff,
// each close code as its own case, the refusal probe, liveness, and a clean teardown.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connectReady, fakeFetch, fakeToken, makeClient, settle } from './support/fakes.mjs';

const states = (h) => h.events.state.map((s) => s.state);

describe('connecting', () => {
    it('is open at welcome, ready once rooms are re-joined, with the node known only while open', async () => {
        const h = makeClient();
        h.client.connect();
        await settle();
        assert.equal(h.client.state, 'connecting');
        assert.match(h.socket().url, /^ws:\/\/gw\.test\/ws\?token=/);
        assert.equal(h.client.node, null);
        h.socket().welcome({ node: 'node2' });
        assert.equal(h.client.state, 'open');
        assert.equal(h.client.node, 'node2');
        await settle();
        assert.equal(h.client.ready, true);
        assert.deepEqual(states(h), ['connecting', 'open']);
        h.socket().end(1006);
        assert.equal(h.client.node, null, 'no node claimed while reconnecting');
        h.client.close();
    });

    it('sends the token in an Authorization header with tokenIn: header', async () => {
        const h = makeClient({ tokenIn: 'header' });
        h.client.connect();
        await settle();
        assert.equal(h.socket().url, 'ws://gw.test/ws');
        assert.match(h.socket().options.headers.Authorization, /^Bearer ey/);
        h.client.close();
    });

    it('gives up when no welcome arrives in time, and asks why', async () => {
        const h = makeClient({ connectTimeoutMs: 1000 });
        h.client.connect();
        await settle();
        const ws = h.socket();
        await h.clock.advance(1000);
        assert.equal(ws.closedWith.code, 4100);
        assert.equal(h.fetch.calls.length, 1, 'never opened: the refusal probe runs');
        assert.equal(h.client.state, 'reconnecting');
        h.client.close();
    });
});

describe('reconnecting', () => {
    it('backs off exponentially with jitter while the server is unreachable, and resets after a welcome', async () => {
        const h = makeClient({ fetch: fakeFetch([{ error: 'ECONNREFUSED' }]) });
        h.client.connect();
        const delays = [];
        for (let i = 0; i < 6; i++) {
            await settle();
            h.socket().end(1006);
            await settle();
            const s = h.events.state.at(-1);
            assert.equal(s.state, 'reconnecting');
            assert.equal(s.kind, 'unreachable');
            delays.push(s.delayMs);
            await h.clock.advance(s.delayMs);
        }
        assert.deepEqual(delays, [375, 750, 1500, 3000, 6000, 12000]);
        h.socket().welcome();
        await settle();
        h.socket().end(1006);
        assert.equal(h.events.state.at(-1).delayMs, 375, 'a welcome resets the backoff');
        h.client.close();
    });

    it('1001: reconnects at once (elsewhere), without asking why and without backoff growth', async () => {
        const h = makeClient({ random: () => 1 });
        const ws = await connectReady(h);
        ws.end(1001, 'node draining');
        const s = h.events.state.at(-1);
        assert.deepEqual([s.state, s.kind, s.code], ['reconnecting', 'drain', 1001]);
        assert.ok(s.delayMs <= 250);
        await h.clock.advance(s.delayMs);
        assert.equal(h.sockets.length, 2);
        assert.equal(h.fetch.calls.length, 0);
        h.client.close();
    });

    it('1008 token expired: gets a fresh token from the app and reconnects at once', async () => {
        let n = 0;
        const reasons = [];
        const getToken = async ({ reason }) => {
            reasons.push(reason);
            return fakeToken({ sub: 'me', exp: Math.floor(Date.now() / 1000) + 3600 * 1000, n: ++n });
        };
        const h = makeClient({ getToken });
        const ws = await connectReady(h);
        ws.end(1008, 'token expired');
        const s = h.events.state.at(-1);
        assert.equal(s.kind, 'token_expired');
        await h.clock.advance(s.delayMs);
        assert.deepEqual(reasons, ['connect', 'expired']);
        assert.match(h.socket().url, new RegExp(encodeURIComponent(h.client.token)));
        assert.equal(h.sockets.length, 2);
        h.client.close();
    });

    it('1008 token expired without getToken: stops and says why', async () => {
        const h = makeClient();
        const ws = await connectReady(h);
        ws.end(1008, 'token expired');
        assert.equal(h.client.state, 'closed');
        assert.equal(h.events.error.at(-1).code, 'invalid_token');
        assert.equal(h.events.state.at(-1).reason, 'token expired');
        assert.equal(h.clock.scheduled, 0);
    });

    it('other 1008 (abuse): backs off long', async () => {
        const h = makeClient();
        const ws = await connectReady(h);
        ws.end(1008, 'abuse');
        const s = h.events.state.at(-1);
        assert.equal(s.kind, 'abuse');
        assert.ok(s.delayMs >= 30000, `${s.delayMs}`);
        h.client.close();
    });

    it('4000 and 4001 are cases of their own', async () => {
        const h = makeClient();
        let ws = await connectReady(h);
        ws.end(4000, 'slow consumer');
        assert.equal(h.events.state.at(-1).kind, 'slow_consumer');
        assert.ok(h.events.state.at(-1).delayMs >= 500);
        await h.clock.advance(h.events.state.at(-1).delayMs);
        ws = await connectReady(h);
        ws.end(4001, 'heartbeat timeout');
        assert.equal(h.events.state.at(-1).kind, 'heartbeat');
        assert.ok(h.events.state.at(-1).delayMs <= 250);
        h.client.close();
    });

    it('retryNow() skips the wait', async () => {
        const h = makeClient();
        const ws = await connectReady(h);
        ws.end(1006);
        h.client.retryNow();
        await settle();
        assert.equal(h.sockets.length, 2);
        assert.equal(h.client.state, 'connecting');
        h.client.close();
    });
});

describe('a refused handshake', () => {
    it('401: stops, reports the server message, asks with the same token, schedules nothing', async () => {
        const fetch = fakeFetch([{ status: 401, body: { error: 'invalid_token', message: 'bad signature' } }]);
        const h = makeClient({ fetch });
        h.client.connect();
        await settle();
        h.socket().end(1006);
        await settle();
        assert.equal(fetch.calls[0].url, h.socket().url.replace(/^ws/, 'http'));
        assert.equal(h.client.state, 'closed');
        const err = h.events.error.at(-1);
        assert.deepEqual([err.code, err.message, err.status], ['invalid_token', 'bad signature', 401]);
        const s = h.events.state.at(-1);
        assert.deepEqual([s.final, s.reason, s.status], [true, 'bad signature', 401]);
        assert.equal(h.clock.scheduled, 0);
        await h.clock.advance(120000);
        assert.equal(h.sockets.length, 1, 'never retried');
    });

    it('401 with getToken: a token fetched for this very attempt is refused: final at once', async () => {
        const fetch = fakeFetch([{ status: 401, body: { error: 'invalid_token', message: 'bad signature' } }]);
        let calls = 0;
        const h = makeClient({ fetch, getToken: () => fakeToken({ sub: 'me', n: ++calls }) });
        h.client.connect();
        await settle();
        h.socket().end(1006);
        await settle();
        assert.equal(h.client.state, 'closed');
        assert.equal(calls, 1, 'no loop of fresh tokens');
        assert.equal(h.events.error.at(-1).message, 'bad signature');
        assert.equal(h.clock.scheduled, 0);
    });

    it('401 after a cached token: fetches a fresh one before giving up', async () => {
        const fetch = fakeFetch([{ status: 401, body: { error: 'invalid_token', message: 'token expired' } }]);
        let calls = 0;
        const h = makeClient({ fetch, getToken: () => fakeToken({ sub: 'me', n: ++calls }) });
        const ws = await connectReady(h);
        ws.end(1006); // lost; the reconnect uses the cached token
        await h.clock.advance(h.events.state.at(-1).delayMs);
        h.socket().end(1006);
        await settle();
        await h.clock.advance(0);
        assert.equal(calls, 2, 'a fresh token for the retry');
        assert.equal(h.sockets.length, 3);
        h.client.close();
    });

    it('403: final, with the server message', async () => {
        const fetch = fakeFetch([{ status: 403, body: { error: 'forbidden_origin', message: 'origin not allowed' } }]);
        const h = makeClient({ fetch });
        h.client.connect();
        await settle();
        h.socket().end(1006);
        await settle();
        assert.equal(h.client.state, 'closed');
        assert.equal(h.events.error.at(-1).code, 'forbidden_origin');
        assert.equal(h.events.error.at(-1).message, 'origin not allowed');
    });

    for (const [label, answer, kind] of [
        ['503 (draining / not ready)', { status: 503, body: { error: 'unavailable', message: 'draining' } }, 'unavailable'],
        ['426 (the token is fine)', { status: 426, body: {} }, 'failed'],
        ['no answer', { error: 'network down' }, 'unreachable'],
        ['an answer that is not JSON', { status: 502, body: '<html>bad gateway' }, 'failed'],
    ]) {
        it(`${label}: retries with backoff`, async () => {
            const h = makeClient({ fetch: fakeFetch([answer]) });
            h.client.connect();
            await settle();
            h.socket().end(1006);
            await settle();
            const s = h.events.state.at(-1);
            assert.deepEqual([s.state, s.kind], ['reconnecting', kind]);
            await h.clock.advance(s.delayMs);
            assert.equal(h.sockets.length, 2);
            h.client.close();
        });
    }

    it('a pasted token that has expired is refused locally (no getToken to replace it)', async () => {
        const h = makeClient({ token: fakeToken({ sub: 'me', exp: 1000 }) });
        h.client.connect();
        await settle();
        assert.equal(h.sockets.length, 0);
        assert.equal(h.client.state, 'closed');
        assert.equal(h.events.error.at(-1).message, 'token expired');
    });

    it('a failing getToken is retried with backoff', async () => {
        let ok = false;
        const h = makeClient({
            getToken: async () => {
                if (!ok) throw new Error('auth server down');
                return fakeToken({ sub: 'me' });
            },
        });
        h.client.connect();
        await settle();
        assert.equal(h.events.error.at(-1).code, 'token_unavailable');
        assert.equal(h.events.state.at(-1).kind, 'token_unavailable');
        ok = true;
        await h.clock.advance(h.events.state.at(-1).delayMs);
        assert.equal(h.sockets.length, 1);
        h.client.close();
    });
});

describe('liveness', () => {
    it('pings after two silent heartbeat periods and drops a connection that stays silent', async () => {
        const h = makeClient();
        const ws = await connectReady(h);
        await h.clock.advance(25000);
        assert.equal(ws.sentOf('ping').length, 0, 'one silent period is normal');
        await h.clock.advance(25000);
        assert.equal(ws.sentOf('ping').length, 1);
        await h.clock.advance(25000);
        assert.equal(ws.closedWith.code, 4100);
        assert.equal(h.client.state, 'reconnecting');
        h.client.close();
    });

    it('keeps a connection that answers', async () => {
        const h = makeClient();
        const ws = await connectReady(h);
        await h.clock.advance(50000);
        ws.receive({ type: 'pong', id: ws.last('ping').id, ts: 1 });
        await h.clock.advance(25000);
        assert.equal(h.client.state, 'open');
        h.client.close();
    });
});

describe('close()', () => {
    it('ends everything: socket, timers, requests, offline joins; no reconnect', async () => {
        const h = makeClient();
        const ws = await connectReady(h);
        const inFlight = h.client.publish('a', 'x');
        ws.end(1006);
        await assert.rejects(inFlight, { code: 'disconnected' });
        const queued = h.client.publish('a', 'y');
        const join = h.client.join('b');
        h.client.close();
        await assert.rejects(queued, { code: 'closed' });
        await assert.rejects(join, { code: 'closed' });
        assert.equal(h.client.state, 'closed');
        assert.equal(h.clock.scheduled, 0, 'no timer left behind');
        await h.clock.advance(600000);
        assert.equal(h.sockets.length, 1);
        await assert.rejects(h.client.publish('a', 'z'), { code: 'closed' });
    });

    it('while open: closes the socket with the given code', async () => {
        const h = makeClient();
        const ws = await connectReady(h);
        h.client.close(1000, 'bye');
        assert.deepEqual(ws.closedWith, { code: 1000, reason: 'bye' });
        ws.end(1000, 'bye'); // the late close event of the old socket changes nothing
        assert.equal(h.client.state, 'closed');
        assert.equal(h.clock.scheduled, 0);
    });

    it('during the refusal probe: the answer is ignored', async () => {
        let answer;
        const fetch = () => new Promise((resolve) => (answer = resolve));
        const h = makeClient({ fetch });
        h.client.connect();
        await settle();
        h.socket().end(1006);
        await settle();
        h.client.close();
        answer({ status: 503, text: async () => '{}' });
        await settle();
        assert.equal(h.client.state, 'closed');
        assert.equal(h.clock.scheduled, 0);
    });
});
