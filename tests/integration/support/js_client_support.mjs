/*
 * js_client_support — what the JavaScript client's cluster tests (js_client_*.test.mjs,
 * browser_*.test.mjs) share: a paced publisher on a chosen node, waits on client events, the
 * probes that tell whether the gateway under test has a v1.1 feature yet (tests of features a
 * server lacks are skipped with the probe's finding as the reason, so they turn on by
 * themselves when the server gains the feature), and a Redis helper that makes a room lose its
 * stored history.
 *
 * Every wait is bounded; nothing here sleeps to synchronise except the publisher's pacing.
 */
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { TESTS_DIR, outputDir, redisCommand } from '../lib/harness.mjs';
import { connect, token } from '../lib/client.mjs';

export const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';

/**
 * {chromium, skipReason}: playwright-core's chromium launcher, or why the browser tests cannot
 * run here. playwright-core >= 1.62 requires Node 20 and exits the process when imported on an
 * older one, so its `engines` range is checked before the import.
 */
export async function loadChromium() {
    let engines = '';
    try {
        engines = JSON.parse(fs.readFileSync(path.join(TESTS_DIR, 'node_modules', 'playwright-core', 'package.json'), 'utf8')).engines?.node ?? '';
    } catch {
        return { chromium: null, skipReason: 'playwright-core is not installed (cd tests && npm ci)' };
    }
    const needs = Number(/>=\s*(\d+)/.exec(engines)?.[1] ?? 0);
    const have = Number(process.versions.node.split('.')[0]);
    if (have < needs) return { chromium: null, skipReason: `the installed playwright-core needs Node ${engines}; this is Node ${process.versions.node}` };
    if (!fs.existsSync(CHROMIUM)) {
        return { chromium: null, skipReason: `${CHROMIUM} not found (deploy/install-deps.sh --test installs Debian's chromium)` };
    }
    const { chromium } = await import('playwright-core');
    return { chromium, skipReason: null };
}

/** 'node2' → 2. */
export const nodeIndex = (nodeId) => Number(String(nodeId).replace(/^node/, ''));

/**
 * Headless Debian Chromium in a fresh profile under the test's output directory (persistent, so
 * the page's localStorage and cookies behave as in a real browser). `options` are added to the
 * launch options (e.g. a viewport).
 */
export function launchChromium(chromium, options = {}) {
    const profile = path.join(outputDir(), 'chromium-profile');
    fs.rmSync(profile, { recursive: true, force: true });
    return chromium.launchPersistentContext(profile, {
        executablePath: CHROMIUM,
        headless: true,
        args: [
            '--headless',
            '--no-sandbox',
            '--disable-gpu',
            '--disable-quic',
            '--no-first-run',
            '--disable-background-networking',
            '--disable-component-update',
            '--disable-sync',
        ],
        timeout: 30000,
        ...options,
    });
}

/** Resolves with the next `type` event of a ChatClient satisfying pred; rejects after timeoutMs. */
export function nextEvent(client, type, pred = () => true, timeoutMs = 10000) {
    return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
            off();
            reject(new Error(`no '${type}' event within ${timeoutMs} ms`));
        }, timeoutMs);
        const off = client.on(type, (ev) => {
            if (!pred(ev)) return;
            clearTimeout(timer);
            off();
            resolve(ev);
        });
    });
}

/** Polls fn (bounded) until truthy. */
export async function until(fn, { timeoutMs = 10000, intervalMs = 50, what = 'condition' } = {}) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
        const v = await fn();
        if (v) return v;
        if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
        await delay(intervalMs);
    }
}

/**
 * A raw client on node `index` (1-based) of cluster that publishes to room every intervalMs
 * (under the 20/s publish budget) until stopped. `acked` lists the offsets the server assigned.
 */
export async function startPublisher(cluster, index, room, { intervalMs = 60, sub = `pub-${room}` } = {}) {
    const url = `ws://127.0.0.1:${cluster.ports.nodes[index - 1]}/ws`;
    const c = await connect(url, { token: token({ sub }), label: sub });
    await c.request({ type: 'join', room });
    const acked = [];
    let stopped = false;
    let n = 0;
    const loop = (async () => {
        while (!stopped) {
            const ack = await c.request({ type: 'publish', room, text: `tick ${++n}` }, 5000);
            if (ack.type !== 'ack') throw new Error(`publish answered ${JSON.stringify(ack)}`);
            acked.push(ack.offset);
            await delay(intervalMs);
        }
    })();
    return {
        client: c,
        acked,
        /** Resolves once `count` more offsets than now are acked. */
        more: (count, timeoutMs = 15000) => {
            const target = acked.length + count;
            return until(() => acked.length >= target, { timeoutMs, what: `${count} more publishes` });
        },
        async stop() {
            stopped = true;
            await loop;
            await c.close();
            return acked;
        },
    };
}

/** [first..last] */
export const range = (first, last) => Array.from({ length: last - first + 1 }, (_, i) => first + i);

/* ---------- feature probes (PROTOCOL.md v1.1 parts a gateway may not have yet) ---------- */

/** Whether a plain GET /ws answers a bad token with 401 (not 426): the refusal probe works. */
export async function serverChecksTokenOnPlainGet(httpUrl) {
    const res = await fetch(`${httpUrl}/ws?token=${token({ sub: 'probe', key: 'not-the-secret' })}`);
    await res.text();
    return { supported: res.status === 401, finding: `GET /ws with a bad token answers ${res.status}` };
}

/** Sends one request on a fresh connection to url after joining room; resolves the reply. */
async function probeRequest(url, frame, room = 'feature-probe') {
    const c = await connect(url, { token: token({ sub: 'feature-probe' }), label: 'probe' });
    try {
        await c.request({ type: 'join', room });
        return await c.request(frame);
    } finally {
        await c.close();
    }
}

export async function serverRefreshes(url) {
    const reply = await probeRequest(url, { type: 'refresh', token: token({ sub: 'feature-probe' }) });
    return { supported: reply.type === 'refreshed', finding: `refresh answers ${JSON.stringify(reply)}` };
}

export async function serverHasReadMarkers(url) {
    const reply = await probeRequest(url, { type: 'read', room: 'feature-probe', offset: 0 });
    return { supported: reply.type === 'read_ok', finding: `read answers ${JSON.stringify(reply)}` };
}

/** Deletes what Redis stores of room's history (offsets, log, epoch; not presence). */
export async function loseRoomHistory(redisPort, room) {
    const script =
        "local n = 0 for _, k in ipairs(redis.call('KEYS', ARGV[1])) do " +
        "if not (k:find('}:pu:', 1, true) or k:find('}:users', 1, true) or k:find('}:names', 1, true) or k:find('}:ch', 1, true)) " +
        "then redis.call('DEL', k) n = n + 1 end end return n";
    return redisCommand(redisPort, 'EVAL', script, '0', `*{${room}}:*`);
}
