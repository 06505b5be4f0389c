// Issue 5: the browser demo in a real browser. Debian's chromium (/usr/bin/chromium) driven by
// playwright-core (no browser download) opens the demo twice through the cluster's nginx; two
// people sign in by name (dev tokens), land on different nodes and chat in one room. Then the
// node of the first page gets SIGTERM: the page must reconnect on its own (to another node,
// visible in the header) and both keep chatting. Screenshots go to tests/output/browser_demo/;
// UPDATE_SCREENSHOT=1 also copies one to docs/screenshot.png for the README.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { JWT_SECRET, outputDir } from './lib/harness.mjs';
import { connect, token } from './lib/client.mjs';
import { LocalCluster, REPO } from './support/cluster.mjs';

const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
const ROOM = 'demo-room';
const WAIT_MS = 10000;

let chromium = null;
try {
    ({ chromium } = await import('playwright-core'));
} catch {
    chromium = null;
}
const skipReason = !chromium
    ? 'playwright-core is not installed (cd tests && npm ci)'
    : !fs.existsSync(CHROMIUM)
      ? `${CHROMIUM} not found (deploy/install-deps.sh --test installs Debian's chromium)`
      : null;

let cluster;
let context;
const pageErrors = [];

before(async () => {
    if (skipReason) return;
    cluster = new LocalCluster({
        runDir: path.join(outputDir(), 'run'),
        // A short drain so the stopped node is gone quickly; heartbeats short so nothing lingers.
        env: { JWT_SECRET, HEARTBEAT: '5', DRAIN_SECONDS: '1', DEV_TOKENS: '1' },
    });
    const t0 = Date.now();
    await cluster.up();
    console.log(`# cluster.sh up took ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const profile = path.join(outputDir(), 'chromium-profile');
    fs.rmSync(profile, { recursive: true, force: true });
    context = await chromium.launchPersistentContext(profile, {
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
        viewport: { width: 1100, height: 620 },
        timeout: 30000,
    });
    context.setDefaultTimeout(WAIT_MS);
    console.log(`# chromium ready ${((Date.now() - t0) / 1000).toFixed(1)} s after the start`);
});

after(async () => {
    if (context) {
        // Bounded: a browser that does not close is killed when this process exits anyway.
        const t0 = Date.now();
        let timer;
        await Promise.race([
            context.close().catch(() => {}),
            new Promise((r) => (timer = setTimeout(r, 10000))),
        ]);
        clearTimeout(timer);
        console.log(`# chromium closed in ${Date.now() - t0} ms`);
        fs.rmSync(path.join(outputDir(), 'chromium-profile'), { recursive: true, force: true });
    }
    if (cluster) {
        const { leftovers } = await cluster.stop();
        assert.deepEqual(leftovers, [], 'cluster.sh down left processes behind');
    }
});

async function openPage(label) {
    const page = await context.newPage();
    page.on('pageerror', (err) => pageErrors.push(`${label}: ${err.message}`));
    page.on('console', (msg) => {
        if (msg.type() === 'error') pageErrors.push(`${label} console: ${msg.text()}`);
    });
    await page.goto(`${cluster.httpUrl}/`);
    return page;
}

async function signIn(page, name) {
    await page.fill('#name', name);
    await page.click('#signin-button');
    await page.waitForSelector('#state[data-state="open"]');
    return (await page.textContent('#node')).trim();
}

async function joinRoom(page, room) {
    await page.fill('#room-input', room);
    await page.click('#join');
    await page.waitForSelector(`#rooms li.current[data-room="${room}"]`);
    await page.waitForSelector(`.sys >> text=You joined #${room}.`);
}

async function say(page, text) {
    await page.fill('#text', text);
    await page.press('#text', 'Enter');
    // Acked: the pending style is gone and the server's offset is on the element.
    await page.waitForSelector(`.msg.mine[data-offset]:has(.msg-text:text-is("${text}"))`);
}

const seen = (page, from, text) => page.waitForSelector(`.msg[data-from="${from}"]:has(.msg-text:text-is("${text}"))`);

/** Whether this gateway relays `typing` (the UI must cope either way). */
async function serverRelaysTyping() {
    const a = await connect(cluster.lbUrl, { token: token({ sub: 'probe-a' }), label: 'probe-a' });
    const b = await connect(cluster.lbUrl, { token: token({ sub: 'probe-b' }), label: 'probe-b' });
    try {
        await a.request({ type: 'join', room: 'typing-probe' });
        await b.request({ type: 'join', room: 'typing-probe' });
        a.send({ type: 'typing', room: 'typing-probe', state: true, id: 'probe' });
        const first = await Promise.race([
            b.next({ type: 'typing' }, 3000).then(() => 'relayed', () => 'silent'),
            a.next({ type: 'error', id: 'probe' }, 3000).then(() => 'error', () => 'silent'),
        ]);
        return first === 'relayed';
    } finally {
        await a.close();
        await b.close();
    }
}

describe('browser demo', { skip: skipReason || false }, () => {
    let alice;
    let bob;
    let aliceNode;
    let bobNode;

    it('two people on different nodes chat in one room', async () => {
        alice = await openPage('alice');
        aliceNode = await signIn(alice, 'Alice');
        bob = await openPage('bob');
        bobNode = await signIn(bob, 'Bob');
        assert.notEqual(aliceNode, bobNode, 'least_conn puts the second person on another node');
        await joinRoom(alice, ROOM);
        await joinRoom(bob, ROOM);

        await say(alice, 'Hi Bob, I am on ' + aliceNode);
        await seen(bob, 'alice', 'Hi Bob, I am on ' + aliceNode);
        await say(bob, 'Hello Alice! Here is ' + bobNode);
        await seen(alice, 'bob', 'Hello Alice! Here is ' + bobNode);

        // Who is online: from presence, or (without it) from events and senders.
        await alice.waitForSelector('#online li[data-user="bob"]');
        await bob.waitForSelector('#online li[data-user="alice"]');
        // Timestamps are shown on every message.
        const meta = await bob.textContent('.msg[data-from="alice"] .meta');
        assert.match(meta, /\d{1,2}:\d{2}:\d{2}/);
    });

    it('shows typing indicators when the server relays them (and degrades quietly when not)', async () => {
        const relays = await serverRelaysTyping();
        // Like a person: keystrokes over more than 2 s. The server drops a typing frame that
        // comes within 2 s of the previous one (the throttle), and the page re-announces
        // typing every 2 s while keys are pressed; so the indicator appears within this span
        // whatever the timing of the earlier test's typing.
        await alice.locator('#text').pressSequentially('typing a longer message, slowly…', { delay: 90 });
        if (relays) {
            await bob.waitForSelector('#typing >> text=Alice is typing');
        } else {
            // Nothing to show, nothing broken: the page keeps working without typing support.
            assert.equal((await bob.textContent('#typing')).trim(), '');
        }
        await alice.fill('#text', '');
    });

    it('reconnects by itself when its node is stopped (SIGTERM) and keeps chatting', async () => {
        const index = Number(aliceNode.replace(/^node/, ''));
        assert.ok(index >= 1 && index <= 3, `node id ${aliceNode} maps to a pidfile`);
        process.kill(cluster.nodePid(index), 'SIGTERM');

        // The header shows the way: reconnecting, then connected on another node.
        await alice.waitForFunction(
            (old) => {
                const state = document.querySelector('#state').dataset.state;
                const node = document.querySelector('#node').textContent.trim();
                return state === 'open' && node !== old;
            },
            aliceNode,
            { timeout: 20000 },
        );
        const newNode = (await alice.textContent('#node')).trim();
        assert.notEqual(newNode, aliceNode);
        await alice.waitForSelector(`.sys >> text=now on ${newNode} (was ${aliceNode})`);

        await say(alice, 'Still here after the restart');
        await seen(bob, 'alice', 'Still here after the restart');
        await say(bob, 'Welcome back');
        await seen(alice, 'bob', 'Welcome back');
        assert.equal(await bob.getAttribute('#state', 'data-state'), 'open', "bob's node was not touched");

        const shotA = path.join(outputDir(), 'alice.png');
        const shotB = path.join(outputDir(), 'bob.png');
        await alice.screenshot({ path: shotA });
        await bob.screenshot({ path: shotB });
        if (process.env.UPDATE_SCREENSHOT === '1') fs.copyFileSync(shotA, path.join(REPO, 'docs', 'screenshot.png'));
    });

    it('raised no errors in the pages', () => {
        assert.deepEqual(pageErrors, []);
    });
});
