// PROTOCOL.md §4 liveness: the server sends WebSocket pings every `heartbeat` seconds and closes
// with 4001 a connection that has not answered with a pong (or sent anything) within two
// periods. Browsers answer pings automatically (RFC 6455: a pong echoing the ping's payload).
// Idle connections cost no CPU beyond that.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import { startGateway, startRedis, stopAll } from './lib/harness.mjs';
import { connect, token } from './lib/client.mjs';

const HB = 1; // --heartbeat 1: pings every second, 4001 after 2 s of silence
let gw;
let idleGw; // --heartbeat 30, for the CPU check

before(async () => {
    const redis = await startRedis();
    [gw, idleGw] = await Promise.all([
        startGateway({ redisPort: redis.port, nodeId: 'hb1', heartbeat: HB }),
        startGateway({ redisPort: redis.port, nodeId: 'hb30', heartbeat: 30 }),
    ]);
});

after(stopAll);

let seq = 0;
async function open(label, wsOptions, node = gw) {
    const sub = `hb-${label}-${++seq}`;
    const c = await connect(node.url, { token: token({ sub }), label: sub, wsOptions });
    c.opened = Date.now();
    c.pings = 0;
    c.ws.on('ping', () => {
        c.pings++;
    });
    return c;
}

/** Resolves with {info, ms} when c closes, or with null if it is still open after ms. */
async function closeWithin(c, ms) {
    let timer;
    const r = await Promise.race([
        c.closed.then((info) => ({ info, ms: Date.now() - c.opened })),
        new Promise((resolve) => {
            timer = setTimeout(() => resolve(null), ms);
        }),
    ]);
    clearTimeout(timer);
    return r;
}

describe(`--heartbeat ${HB}`, () => {
    it('a client that answers nothing and sends nothing is pinged, then closed 4001 after ~2 periods', async () => {
        const c = await open('silent', { autoPong: false });
        const r = await closeWithin(c, 6000);
        assert.ok(r, 'silent client still open after 6 s');
        assert.equal(r.info.code, 4001, `close ${r.info.code} "${r.info.reason}" after ${r.ms} ms`);
        assert.ok(r.ms >= 2 * HB * 1000 - 100, `closed after only ${r.ms} ms (two periods: ${2 * HB * 1000} ms)`);
        assert.ok(r.ms <= 4500, `closed only after ${r.ms} ms`);
        assert.ok(c.pings >= 1, `no WebSocket ping received before the close (${c.pings})`);
    });

    it('a client that answers pings automatically (like a browser) and sends nothing stays open over 4 s', async () => {
        const c = await open('autopong'); // npm ws answers pings with an echoing pong by default
        const r = await closeWithin(c, 4500);
        assert.equal(
            r,
            null,
            `closed ${JSON.stringify(r?.info)} after ${r?.ms} ms although it answered ${c.pings} ping(s) with pongs`,
        );
        assert.ok(c.pings >= 3, `only ${c.pings} pings in 4.5 s with --heartbeat ${HB}`);
        const pong = await c.request({ type: 'ping' });
        assert.equal(pong.type, 'pong');
    });

    it('a client that answers no ping but sends JSON pings every 500 ms stays open (any traffic counts)', async () => {
        const c = await open('talker', { autoPong: false });
        const timer = setInterval(() => {
            if (c.isOpen) c.send({ type: 'ping' });
        }, 500);
        try {
            const r = await closeWithin(c, 4500);
            assert.equal(r, null, `closed ${JSON.stringify(r?.info)} after ${r?.ms} ms`);
        } finally {
            clearInterval(timer);
        }
    });

    it('a client that answers pings, then stops answering, is closed 4001 within ~2–3 periods', async () => {
        const c = await open('stopper', { autoPong: false });
        let answering = true;
        c.ws.on('ping', (data) => {
            if (answering && c.isOpen) c.ws.pong(data); // echo, as RFC 6455 asks
        });
        const early = await closeWithin(c, 3500);
        assert.equal(early, null, `closed ${JSON.stringify(early?.info)} after ${early?.ms} ms while answering pings`);
        answering = false;
        const stoppedAt = Date.now();
        const r = await closeWithin(c, 3500 + 4500);
        assert.ok(r, 'still open 4.5 s after it stopped answering');
        const ms = Date.now() - stoppedAt;
        assert.equal(r.info.code, 4001, `close ${r.info.code} "${r.info.reason}"`);
        assert.ok(ms <= 4500, `closed ${ms} ms after it stopped answering`);
    });
});

/** utime + stime of pid in clock ticks (/proc/<pid>/stat fields 14 and 15). */
function cpuTicks(pid) {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]);
}

describe('idle connections', () => {
    it('200 idle connections cost (almost) no CPU over 3 s', async () => {
        const clients = [];
        for (let i = 0; i < 200; i += 20) {
            clients.push(...(await Promise.all(Array.from({ length: 20 }, () => open('idle', undefined, idleGw)))));
        }
        await delay(300); // let the connection burst settle before measuring
        const t0 = cpuTicks(idleGw.pid);
        const w0 = Date.now();
        await delay(3000); // measuring idleness: nothing to await
        const ticks = cpuTicks(idleGw.pid) - t0;
        const wallS = (Date.now() - w0) / 1000;
        // Clock ticks are 1/100 s; allow 5 % of one core (ASan build included).
        assert.ok(ticks <= wallS * 100 * 0.05, `${ticks} CPU ticks in ${wallS.toFixed(1)} s with 200 idle connections`);
        for (const c of clients) assert.ok(c.isOpen, `${c.label} closed: ${JSON.stringify(c.closeInfo)}`);
        await Promise.all(clients.map((c) => c.close()));
    });
});
