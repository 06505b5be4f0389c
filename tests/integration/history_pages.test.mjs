// PROTOCOL.md §2 (issue 11): a history reply holds at most 256 KiB of messages — it stops early
// (oldest first, the newest that fit) with "more":true and the client pages with `before`; a
// join with `since` replays in pages too. A client with large messages is therefore not closed
// as a slow consumer by its own history, and a flood of history requests cannot make the node
// hold Redis's answers in memory.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { startGateway, startRedis, stopAll } from './lib/harness.mjs';
import { connect, token } from './lib/client.mjs';

const KEY = 'hist-key';
const PAGE = 256 * 1024;
const N = 300;
const TEXT = 4000;
let node;

before(async () => {
    const redis = await startRedis();
    node = await startGateway({ redisPort: redis.port, args: ['--api-key', KEY] });
});

after(stopAll);

async function apiPublish(room, text) {
    const res = await fetch(`${node.httpUrl}/api/publish`, {
        method: 'POST',
        headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ room, text }),
        signal: AbortSignal.timeout(5000),
    });
    assert.equal(res.status, 200);
    return (await res.json()).offset;
}

const rssKiB = () => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${node.pid}/status`, 'utf8'))[1]);

describe('history in pages of 256 KiB', () => {
    const room = 'big-history';

    before(async () => {
        for (let i = 1; i <= N; i++) await apiPublish(room, `${String(i).padStart(5, '0')}${'x'.repeat(TEXT - 5)}`);
    });

    it('a page stops at 256 KiB with more:true; paging with before gets every offset once', async () => {
        const c = await connect(node.url, { token: token({ sub: 'pager' }) });
        await c.request({ type: 'join', room });
        const seen = [];
        let before;
        for (let pages = 0; pages < 20; pages++) {
            const h = await c.request({ type: 'history', room, limit: 1000, ...(before ? { before } : {}) });
            assert.equal(h.type, 'history');
            const bytes = h.messages.reduce((n, m) => n + Buffer.byteLength(JSON.stringify(m)), 0);
            assert.ok(bytes <= PAGE + 2 * TEXT, `page of ${bytes} bytes`);
            const offs = h.messages.map((m) => m.offset);
            assert.deepEqual(offs, [...offs].sort((a, b) => a - b), 'oldest first');
            seen.unshift(...offs);
            if (!h.more) break;
            assert.ok(offs.length > 0);
            before = offs[0];
        }
        assert.deepEqual(seen, Array.from({ length: N }, (_, i) => i + 1));
        await c.close();
    });

    it('a join with since 0 replays all 1.2 MB in order without closing the client', async () => {
        const c = await connect(node.url, { token: token({ sub: 'recoverer' }) });
        const j = await c.request({ type: 'join', room, since: { offset: 0, epoch: (await epochOf()) } }, 15000);
        assert.equal(j.type, 'joined');
        assert.equal(j.recovered, true);
        const offs = c.frames.filter((f) => f.type === 'message').map((f) => f.offset);
        assert.deepEqual(offs, Array.from({ length: N }, (_, i) => i + 1));
        assert.equal(c.ws.readyState, 1, 'still open');
        await c.close();
    });

    it('100 history requests at once: the budget serves at most ~20 pages, memory stays bounded', async () => {
        const c = await connect(node.url, { token: token({ sub: 'flooder' }) });
        await c.request({ type: 'join', room });
        const before = rssKiB();
        const closed = new Promise((resolve) => c.ws.once('close', (code) => resolve(code)));
        for (let i = 0; i < 100; i++) c.send({ type: 'history', room, limit: 1000, id: `h${i}` });
        // Twenty pages of 256 KiB at once exceed the 1 MiB outbound cap unless the reader keeps
        // up: either every request is answered, or the flood ends as a slow consumer (4000).
        const outcome = await Promise.race([
            closed.then((code) => ({ code })),
            c.collect((f) => f.id && String(f.id).startsWith('h'), 100, 15000).then(() => ({ code: null })),
        ]);
        const served = c.frames.filter((f) => f.type === 'history').length;
        const limited = c.frames.filter((f) => f.code === 'rate_limited').length;
        assert.ok(served <= 25, `${served} pages served`);
        if (outcome.code === null) assert.equal(served + limited, 100);
        else assert.equal(outcome.code, 4000);
        const grew = rssKiB() - before;
        assert.ok(grew < 64 * 1024, `RSS grew by ${grew} KiB`);
        // The node still serves everyone else.
        const other = await connect(node.url, { token: token({ sub: 'after-flood' }) });
        await other.request({ type: 'join', room });
        const h = await other.request({ type: 'history', room, limit: 5 });
        assert.deepEqual(h.messages.map((m) => m.offset), [N - 4, N - 3, N - 2, N - 1, N]);
        await other.close();
    });
});

async function epochOf() {
    const c = await connect(node.url, { token: token({ sub: 'epoch-reader' }) });
    const j = await c.request({ type: 'join', room: 'big-history' });
    await c.close();
    return j.epoch;
}
