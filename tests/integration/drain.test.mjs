// PROTOCOL.md §5 drain: on SIGTERM (or SIGINT) a node keeps its listener open but refuses new
// WebSocket handshakes with 503, answers /readyz with 503, closes its connections with 1001
// spread over the drain window, and exits 0. A second signal ends the drain at once (remaining
// connections get 1001, exit 0).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, startRedis, stopAll } from './lib/harness.mjs';
import { connectMany, handshake, token } from './lib/client.mjs';
import { parsePrometheus } from './lib/prom.mjs';
import { pollUntil } from './lib/proc.mjs';

const N = 10;
let redis;

before(async () => {
    redis = await startRedis();
});

after(stopAll);

async function nodeWithClients(nodeId, drainSeconds, n = N) {
    const gw = await startGateway({
        redisPort: redis.port,
        nodeId,
        heartbeat: 60, // liveness is not under test here
        args: ['--drain-seconds', String(drainSeconds)],
    });
    const clients = await connectMany(gw.url, n, (i) => ({ token: token({ sub: `${nodeId}-u${i}` }), label: `${nodeId}-u${i}` }));
    for (const c of clients) {
        c.ws.once('close', () => {
            c.closedAt = Date.now();
        });
    }
    return { gw, clients };
}

/** Resolves with the exit status, or rejects after ms. */
function exitWithin(gw, ms) {
    let timer;
    return Promise.race([
        gw.exitPromise,
        new Promise((_, reject) => {
            timer = setTimeout(() => reject(new Error(`${gw.nodeId} did not exit within ${ms} ms; log:\n${gw.logTail(15)}`)), ms);
        }),
    ]).finally(() => clearTimeout(timer));
}

function allClosedWithin(clients, ms) {
    let timer;
    return Promise.race([
        Promise.all(clients.map((c) => c.closed)),
        new Promise((_, reject) => {
            timer = setTimeout(() => {
                const open = clients.filter((c) => !c.closeInfo).map((c) => c.label);
                reject(new Error(`${open.length} clients still open after ${ms} ms: ${open.join(', ')}`));
            }, ms);
        }),
    ]).finally(() => clearTimeout(timer));
}

describe('SIGTERM with --drain-seconds 2', () => {
    let gw;
    let clients;
    let t0;
    let exitP;

    before(async () => {
        ({ gw, clients } = await nodeWithClients('drain2', 2));
        t0 = Date.now();
        exitP = gw.kill('SIGTERM');
    });

    it('/readyz answers 503 (while /healthz stays 200) and /metrics shows the drain', async () => {
        await pollUntil(async () => (await gw.get('/readyz')).status === 503, {
            timeoutMs: 1500,
            intervalMs: 20,
            what: '/readyz 503 after SIGTERM',
        });
        assert.equal((await gw.get('/healthz')).status, 200);
        const m = parsePrometheus((await gw.get('/metrics')).body);
        assert.equal(m.value('chat_draining'), 1);
        assert.equal(m.value('chat_ready'), 0);
    });

    it('a new WebSocket handshake gets 503, never 101', async () => {
        const res = await handshake(gw.url, { token: token({ sub: 'latecomer' }) });
        assert.equal(res.upgraded, false, 'a handshake was upgraded during the drain');
        assert.equal(res.status, 503, `${res.status} ${res.text}`);
        assert.equal(res.body?.error, 'unavailable', res.text);
        assert.ok(Date.now() - t0 < 1500, 'checked too late to be during the drain');
    });

    it(`every one of the ${N} clients gets close 1001, spread over the window`, async () => {
        const infos = await allClosedWithin(clients, 2000 + 2000);
        for (const [i, info] of infos.entries()) {
            assert.equal(info.code, 1001, `${clients[i].label}: close ${info.code} "${info.reason}"`);
        }
        const times = clients.map((c) => c.closedAt - t0).sort((a, b) => a - b);
        assert.ok(times[times.length - 1] <= 2000 + 1000, `last close ${times[times.length - 1]} ms after SIGTERM`);
        assert.ok(
            times[times.length - 1] - times[0] >= 800,
            `closes not spread over the 2 s window: ${times.join(', ')} ms after SIGTERM`,
        );
    });

    it('the process exits 0 within the drain window + slack', async () => {
        const status = await exitWithin(gw, 2000 + 3000);
        assert.equal(await exitP, status);
        const ms = Date.now() - t0;
        assert.deepEqual({ code: status.code, signal: status.signal }, { code: 0, signal: null }, `log:\n${gw.logTail(10)}`);
        assert.ok(ms <= 5000, `exited ${ms} ms after SIGTERM`);
    });
});

describe('second SIGTERM during a 30 s drain', () => {
    it('ends the drain at once: every client gets 1001 promptly, exit 0', async () => {
        const { gw, clients } = await nodeWithClients('drain30', 30);
        gw.kill('SIGTERM');
        await pollUntil(async () => (await gw.get('/readyz')).status === 503, {
            timeoutMs: 1500,
            intervalMs: 20,
            what: '/readyz 503 after the first SIGTERM',
        });
        const stillOpen = clients.filter((c) => !c.closeInfo).length;
        assert.ok(stillOpen >= N - 1, `only ${stillOpen} of ${N} open right after the first signal of a 30 s drain`);
        const t1 = Date.now();
        gw.kill('SIGTERM');
        const infos = await allClosedWithin(clients, 2000);
        for (const [i, info] of infos.entries()) {
            assert.equal(info.code, 1001, `${clients[i].label}: close ${info.code} "${info.reason}"`);
        }
        const status = await exitWithin(gw, 3000);
        assert.deepEqual({ code: status.code, signal: status.signal }, { code: 0, signal: null }, `log:\n${gw.logTail(10)}`);
        assert.ok(Date.now() - t1 <= 3000, `exit ${Date.now() - t1} ms after the second signal`);
    });
});

describe('SIGINT drains like SIGTERM', () => {
    it('clients get 1001 and the process exits 0 (--drain-seconds 1)', async () => {
        const { gw, clients } = await nodeWithClients('drainint', 1, 3);
        const t0 = Date.now();
        gw.kill('SIGINT');
        const infos = await allClosedWithin(clients, 1000 + 2000);
        for (const info of infos) assert.equal(info.code, 1001, `close ${info.code} "${info.reason}"`);
        const status = await exitWithin(gw, 1000 + 3000);
        assert.deepEqual({ code: status.code, signal: status.signal }, { code: 0, signal: null });
        assert.ok(Date.now() - t0 <= 4000);
    });
});
