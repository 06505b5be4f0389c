// PROTOCOL.md §3: a request that fails gets {"type":"error","id":..,"code":C,"message":..} and
// the connection stays open; an error for a frame that could not be parsed has no id. Ids are
// echoed with their JSON type (string or number).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster, stopAll } from './lib/harness.mjs';
import { connect, token } from './lib/client.mjs';

let node;

// One top-level suite holds the hooks: root-level before/after are unreliable on Node 18.
describe('errors keep the connection open (§3)', () => {
    before(async () => {
        const cluster = await startCluster({ nodes: 1 });
        [node] = cluster.nodes;
    });

    after(stopAll);

    const isError = (f) => f.type === 'error';
    isError.description = 'an error frame';

    function assertErrorFrame(f, code, id) {
        assert.equal(f.type, 'error', `expected error ${code}, got ${JSON.stringify(f)}`);
        assert.equal(f.code, code, `expected code ${code}, got ${JSON.stringify(f)}`);
        assert.equal(typeof f.message, 'string', `error without message: ${JSON.stringify(f)}`);
        assert.ok(f.message.length > 0);
        if (id === undefined) assert.ok(!('id' in f), `error for an unparseable frame carries an id: ${JSON.stringify(f)}`);
        else assert.equal(f.id, id, `id not echoed: ${JSON.stringify(f)}`);
    }

    /** The connection still works: a JSON ping gets its pong. */
    async function assertStillOpen(c) {
        assert.ok(c.isOpen, `connection closed: ${JSON.stringify(c.closeInfo)}`);
        const pong = await c.request({ type: 'ping' });
        assert.equal(pong.type, 'pong', JSON.stringify(pong));
    }

    /** Sends raw text (string) or an object, awaits the next error frame. */
    async function errorFor(c, frame) {
        const reply = c.next(isError);
        if (typeof frame === 'string') c.sendRaw(frame);
        else c.send(frame);
        return reply;
    }

    describe('malformed frames → bad_request, connection stays open', () => {
        let c;
        before(async () => {
            c = await connect(node.url, { token: token({ sub: 'err-user' }), label: 'err-user' });
        });

        it('not JSON → bad_request without id', async () => {
            assertErrorFrame(await errorFor(c, 'this is not json'), 'bad_request');
            await assertStillOpen(c);
            assertErrorFrame(await errorFor(c, '{"type":"ping","id":"x"'), 'bad_request');
            await assertStillOpen(c);
        });

        it('a JSON array → bad_request without id', async () => {
            assertErrorFrame(await errorFor(c, '[{"type":"ping","id":1}]'), 'bad_request');
            await assertStillOpen(c);
        });

        it('JSON scalars (string, number, null) → bad_request without id', async () => {
            for (const raw of ['"ping"', '42', 'null', 'true']) {
                assertErrorFrame(await errorFor(c, raw), 'bad_request');
            }
            await assertStillOpen(c);
        });

        it('missing type → bad_request (id echoed)', async () => {
            assertErrorFrame(await errorFor(c, { id: 'no-type', room: 'x' }), 'bad_request', 'no-type');
            await assertStillOpen(c);
        });

        it('type not a string → bad_request (id echoed)', async () => {
            assertErrorFrame(await errorFor(c, { type: 5, id: 'num-type' }), 'bad_request', 'num-type');
            await assertStillOpen(c);
        });

        it('missing or mistyped fields → bad_request', async () => {
            assertErrorFrame(await errorFor(c, { type: 'join', id: 'j-noroom' }), 'bad_request', 'j-noroom');
            assertErrorFrame(await errorFor(c, { type: 'join', room: 5, id: 'j-numroom' }), 'bad_request', 'j-numroom');
            assertErrorFrame(await errorFor(c, { type: 'leave', id: 'l-noroom' }), 'bad_request', 'l-noroom');
            assertErrorFrame(await errorFor(c, { type: 'publish', room: 'r', id: 'p-notext' }), 'bad_request', 'p-notext');
            assertErrorFrame(await errorFor(c, { type: 'publish', room: 'r', text: 42, id: 'p-numtext' }), 'bad_request', 'p-numtext');
            await assertStillOpen(c);
        });

        it('unknown type → unknown_type with the id echoed (string and number)', async () => {
            assertErrorFrame(await errorFor(c, { type: 'dance', id: 'u1' }), 'unknown_type', 'u1');
            assertErrorFrame(await errorFor(c, { type: 'subscribe', id: 17 }), 'unknown_type', 17);
            await assertStillOpen(c);
        });
    });

    describe('state errors', () => {
        it('invalid room names → invalid_room (with id); a 64-character name is fine', async () => {
            const c = await connect(node.url, { token: token({ sub: 'rooms-user' }), label: 'rooms-user' });
            const bad = ['bad room', '', 'a'.repeat(65), 'slash/room', 'ümlaut', 'semi;colon', 'star*'];
            for (const [i, room] of bad.entries()) {
                const id = `ir-${i}`;
                assertErrorFrame(await c.request({ type: 'join', room, id }), 'invalid_room', id);
            }
            assertErrorFrame(await c.request({ type: 'publish', room: 'no spaces', text: 'x', id: 'ir-pub' }), 'invalid_room', 'ir-pub');
            assertErrorFrame(await c.request({ type: 'leave', room: 'bad!', id: 'ir-leave' }), 'invalid_room', 'ir-leave');
            const okRoom = `${'a'.repeat(60)}_.:-`;
            assert.equal(okRoom.length, 64);
            const j = await c.request({ type: 'join', room: okRoom });
            assert.equal(j.type, 'joined', JSON.stringify(j));
            await assertStillOpen(c);
        });

        it('rooms claim: ["team-*"] allows team-a, forbids general (forbidden, with id)', async () => {
            const c = await connect(node.url, { token: token({ sub: 'teamer', rooms: ['team-*'] }), label: 'teamer' });
            const ok = await c.request({ type: 'join', room: 'team-a', id: 'f-ok' });
            assert.equal(ok.type, 'joined', JSON.stringify(ok));
            assert.equal(ok.id, 'f-ok');
            assertErrorFrame(await c.request({ type: 'join', room: 'general', id: 'f-no' }), 'forbidden', 'f-no');
            assertErrorFrame(await c.request({ type: 'join', room: 'xteam-a', id: 'f-no2' }), 'forbidden', 'f-no2');
            await assertStillOpen(c);
            // the allowed room still works after a forbidden join
            const ack = await c.request({ type: 'publish', room: 'team-a', text: 'hi' });
            assert.equal(ack.type, 'ack', JSON.stringify(ack));
        });

        it('rooms claim: [] forbids every room', async () => {
            const c = await connect(node.url, { token: token({ sub: 'nobody', rooms: [] }), label: 'nobody' });
            assertErrorFrame(await c.request({ type: 'join', room: 'general', id: 'e1' }), 'forbidden', 'e1');
            await assertStillOpen(c);
        });

        it('publish to a room not joined → not_joined', async () => {
            const c = await connect(node.url, { token: token({ sub: 'outsider' }), label: 'outsider' });
            assertErrorFrame(await c.request({ type: 'publish', room: 'elsewhere', text: 'x', id: 'nj-1' }), 'not_joined', 'nj-1');
            await assertStillOpen(c);
        });

        it('text over the 4096-byte limit → too_large; 4096 bytes is fine (bytes, not characters)', async () => {
            const c = await connect(node.url, { token: token({ sub: 'big' }), label: 'big' });
            assert.equal((await c.request({ type: 'join', room: 'big' })).type, 'joined');
            const ok = await c.request({ type: 'publish', room: 'big', text: 'x'.repeat(4096) });
            assert.equal(ok.type, 'ack', `4096 bytes: ${JSON.stringify(ok).slice(0, 200)}`);
            assertErrorFrame(await c.request({ type: 'publish', room: 'big', text: 'x'.repeat(4097), id: 'tl-1' }), 'too_large', 'tl-1');
            // 2049 × 'é' = 2049 characters but 4098 UTF-8 bytes
            assertErrorFrame(await c.request({ type: 'publish', room: 'big', text: 'é'.repeat(2049), id: 'tl-2' }), 'too_large', 'tl-2');
            await assertStillOpen(c);
        });

        it('over 100 rooms on one connection → limit_exceeded', async () => {
            const c = await connect(node.url, { token: token({ sub: 'many-rooms' }), label: 'many-rooms' });
            const replies = [];
            for (let i = 0; i < 100; i++) replies.push(c.request({ type: 'join', room: `many-${i}` }, 15000));
            const joined = await Promise.all(replies);
            assert.deepEqual(joined.filter((j) => j.type !== 'joined'), [], 'the first 100 joins succeed');
            assertErrorFrame(await c.request({ type: 'join', room: 'many-100', id: 'le-1' }), 'limit_exceeded', 'le-1');
            // re-joining a room already joined is not a new room
            assert.equal((await c.request({ type: 'join', room: 'many-0' })).type, 'joined');
            await assertStillOpen(c);
        });

        it('publishing past the default rate (20/s, burst 40) → rate_limited, connection open', async () => {
            const c = await connect(node.url, { token: token({ sub: 'spammer' }), label: 'spammer' });
            assert.equal((await c.request({ type: 'join', room: 'spam' })).type, 'joined');
            const replies = [];
            for (let i = 0; i < 50; i++) replies.push(c.request({ type: 'publish', room: 'spam', text: `s${i}`, id: `rl-${i}` }));
            const got = await Promise.all(replies);
            const acks = got.filter((f) => f.type === 'ack');
            const limited = got.filter((f) => f.type === 'error');
            for (const e of limited) assert.equal(e.code, 'rate_limited', JSON.stringify(e));
            assert.ok(acks.length >= 40, `only ${acks.length} of 50 accepted; burst is 40`);
            assert.ok(limited.length >= 1, 'no rate_limited among 50 instant publishes');
            await assertStillOpen(c);
        });
    });

    describe('ping and ids', () => {
        it('ping → pong with id and a numeric ts', async () => {
            const c = await connect(node.url, { token: token({ sub: 'pinger' }), label: 'pinger' });
            const t0 = Date.now();
            const pong = await c.request({ type: 'ping', id: 'p-1' });
            assert.equal(pong.type, 'pong');
            assert.equal(pong.id, 'p-1');
            assert.equal(typeof pong.ts, 'number');
            assert.ok(Math.abs(pong.ts - t0) < 5000, `pong.ts ${pong.ts} vs now ${t0}`);
        });

        it('a string id and a numeric id are echoed with their JSON type', async () => {
            const c = await connect(node.url, { token: token({ sub: 'ids' }), label: 'ids' });
            const raw = [];
            c.ws.on('message', (d) => raw.push(d.toString('utf8')));
            const s = await c.request({ type: 'ping', id: '7' });
            assert.equal(s.id, '7');
            assert.equal(typeof s.id, 'string');
            const n = await c.request({ type: 'ping', id: 7 });
            assert.equal(n.id, 7);
            assert.equal(typeof n.id, 'number');
            // same for replies other than pong
            const j = await c.request({ type: 'join', room: 'ids', id: 8 });
            assert.equal(j.type, 'joined');
            assert.equal(j.id, 8);
            const js = await c.request({ type: 'join', room: 'ids', id: '8' });
            assert.equal(js.id, '8');
            const e = await c.request({ type: 'leave', room: 'not-joined', id: 9 });
            assert.equal(e.id, 9);
            assert.equal(typeof e.id, 'number');
            assert.ok(raw.some((t) => /"id":"7"/.test(t)) && raw.some((t) => /"id":7[,}]/.test(t)), raw.join('\n'));
            await assertStillOpen(c);
        });

        it('a ping without id gets a pong without id', async () => {
            const c = await connect(node.url, { token: token({ sub: 'noid' }), label: 'noid' });
            const reply = c.next((f) => f.type === 'pong');
            c.send({ type: 'ping' });
            const pong = await reply;
            assert.ok(!('id' in pong) || pong.id === null, `pong for a request without id: ${JSON.stringify(pong)}`);
        });
    });
});
