// Issue 16: the JavaScript client package in Chromium (playwright-core + Debian's
// /usr/bin/chromium), against a real 3-node cluster behind nginx. The page imports the
// package's browser build as served by nginx (/chat-client.js, the demo's copy) and drives it
// directly, without the demo UI. Checked: a node killed (SIGKILL) and then one drained
// (SIGTERM) under the connected client — it reconnects through the load balancer and the app
// sees every offset once, in order; and a refused token, which a browser reports only as a
// failed WebSocket, stops the client with the server's reason (learned from GET /ws).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { JWT_SECRET, outputDir } from './lib/harness.mjs';
import { token } from './lib/client.mjs';
import { LocalCluster } from './support/cluster.mjs';
import { launchChromium, loadChromium, nodeIndex, range, serverChecksTokenOnPlainGet, startPublisher } from './support/js_client_support.mjs';


const { chromium, skipReason } = await loadChromium();

let cluster;
let browser;
let page;
const pageErrors = [];

before(async () => {
    if (skipReason) return;
    cluster = new LocalCluster({
        runDir: path.join(outputDir(), 'run'),
        env: { JWT_SECRET, HEARTBEAT: '5', DRAIN_SECONDS: '1', DEV_TOKENS: '1' },
    });
    await cluster.up();
    browser = await launchChromium(chromium);
    browser.setDefaultTimeout(10000);
    page = await browser.newPage();
    page.on('pageerror', (err) => pageErrors.push(err.message));
    await page.goto(`${cluster.httpUrl}/`);
});

after(async () => {
    if (browser) {
        let timer;
        await Promise.race([browser.close().catch(() => {}), new Promise((r) => (timer = setTimeout(r, 10000)))]);
        clearTimeout(timer);
        fs.rmSync(path.join(outputDir(), 'chromium-profile'), { recursive: true, force: true });
    }
    if (cluster) {
        const { leftovers } = await cluster.stop();
        assert.deepEqual(leftovers, [], 'cluster.sh down left processes behind');
    }
});

describe('ChatClient in Chromium on a cluster behind nginx', { skip: skipReason || false }, () => {
    it('survives a node killed (SIGKILL) and one drained (SIGTERM): every offset once, in order', async () => {
        const room = 'browser-pkg-room';
        const first = await page.evaluate(async (r) => {
            const { ChatClient } = await import('/chat-client.js');
            const getToken = async () => (await (await fetch('/dev/token?sub=browser-pkg&name=Pkg', { cache: 'no-store' })).json()).token;
            const c = new ChatClient({ url: `ws://${location.host}/ws`, getToken, initialDelayMs: 100, maxDelayMs: 1000 });
            window.pkg = { client: c, got: [], kinds: [] };
            c.on('message', (m) => m.room === r && window.pkg.got.push(m.offset));
            c.on('state', (s) => s.kind && window.pkg.kinds.push(s.kind));
            c.connect();
            await c.join(r);
            return c.node;
        }, room);
        let node = first;
        let pub = null;
        let pubNode = null;
        const acked = [];
        for (const signal of ['SIGKILL', 'SIGTERM']) {
            const victim = nodeIndex(node);
            const alive = range(1, 3).filter((i) => i !== victim && cluster.livePids().has(cluster.nodePid(i)));
            if (!pub || pubNode === victim) {
                // The publisher must outlive this round: (re)start it on a surviving node.
                if (pub) acked.push(...(await pub.stop()));
                pubNode = alive[0];
                pub = await startPublisher(cluster, pubNode, room, { sub: `pub-${signal}` });
            }
            await pub.more(10);
            process.kill(cluster.nodePid(victim), signal);
            await page.waitForFunction((old) => window.pkg.client.ready && window.pkg.client.node !== old, node, { timeout: 20000 });
            node = await page.evaluate(() => window.pkg.client.node);
            assert.notEqual(node, `node${victim}`, `${signal}: on another node`);
            await pub.more(10);
        }
        acked.push(...(await pub.stop()));
        await page.waitForFunction((last) => window.pkg.got.includes(last), acked.at(-1));
        const got = await page.evaluate(() => window.pkg.got);
        assert.deepEqual(got, range(1, acked.at(-1)), 'every offset once, in order');
        const kinds = await page.evaluate(() => window.pkg.kinds);
        assert.ok(kinds.includes('drain'), `the SIGTERM was seen as a drain (1001): ${kinds.join(' ')}`);
        await page.evaluate(() => window.pkg.client.close());
    });

    it('a refused token stops the client with the server reason (learned from GET /ws)', async (t) => {
        const probe = await serverChecksTokenOnPlainGet(cluster.httpUrl);
        if (!probe.supported) return t.skip(`waits on the server: ${probe.finding}`);
        const bad = token({ sub: 'mallory', key: 'not-the-cluster-secret' });
        const result = await page.evaluate(async (tok) => {
            const { ChatClient } = await import('/chat-client.js');
            const c = new ChatClient({ url: `ws://${location.host}/ws`, token: tok, initialDelayMs: 100 });
            const states = [];
            c.on('state', (s) => states.push(s.state));
            const err = new Promise((resolve) => c.once('error', resolve));
            c.connect();
            const e = await Promise.race([err, new Promise((resolve) => setTimeout(() => resolve(null), 8000))]);
            await new Promise((resolve) => setTimeout(resolve, 1000)); // would it retry?
            return { code: e?.code, status: e?.status, message: e?.message, states, state: c.state };
        }, bad);
        assert.equal(result.code, 'invalid_token', JSON.stringify(result));
        assert.equal(result.status, 401);
        assert.match(result.message, /signature/);
        assert.deepEqual(result.states, ['connecting', 'closed']);
        assert.equal(result.state, 'closed');
    });

    it('raised no errors in the page', () => {
        assert.deepEqual(pageErrors, []);
    });
});
