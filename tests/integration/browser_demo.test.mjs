// Issues 5, 17, 11: the browser demo (web/, on the @chat-gateway/client package) in a real
// browser. Debian's chromium (/usr/bin/chromium) driven by playwright-core (no browser
// download) opens the demo through the cluster's nginx, on a private 3-node cluster. Checked,
// as a first-time user meets the page: chatting across nodes with presence lines by display
// name; history on join, after a reload and on scrolling back, nothing shown twice; typing
// (announced again right after sending); a reload not announced as leave + join; direct
// messages; unread badges and "seen by"; a refused token stops with the server's reason and
// offers to sign in again; the token is refreshed before it expires; a 390 px phone layout with
// everything visible (screenshot); a room whose stored history is lost (`reset`) starts over;
// and a node killed (SIGKILL) and one drained (SIGTERM) under
// the page: it reconnects elsewhere, the header never claims a node meanwhile, and every offset
// is shown once, in order. Tests of server features not there yet are skipped with the probe's
// finding. Screenshots go to tests/output/browser_demo/; UPDATE_SCREENSHOT=1 also copies the
// desktop one to docs/screenshot.png for the README.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { JWT_SECRET, outputDir } from './lib/harness.mjs';
import { connect, token } from './lib/client.mjs';
import { LocalCluster, REPO } from './support/cluster.mjs';
import {
    launchChromium,
    loadChromium,
    loseRoomHistory,
    nodeIndex,
    range,
    serverChecksTokenOnPlainGet,
    serverHasReadMarkers,
    serverRefreshes,
    startPublisher,
    until,
} from './support/js_client_support.mjs';

const ROOM = 'demo-room';
const WAIT_MS = 10000;
const API_KEY = 'browser-demo-api-key';
const LEAVE_GRACE_MS = 3000; // web/presence.js

const { chromium, skipReason } = await loadChromium();

let cluster;
let context;
const pageErrors = [];

before(async () => {
    if (skipReason) return;
    cluster = new LocalCluster({
        runDir: path.join(outputDir(), 'run'),
        env: { JWT_SECRET, HEARTBEAT: '5', DRAIN_SECONDS: '1', DEV_TOKENS: '1', API_KEY },
    });
    await cluster.up();
    context = await launchChromium(chromium, { viewport: { width: 1100, height: 620 } });
    context.setDefaultTimeout(WAIT_MS);
});

after(async () => {
    if (context) {
        let timer;
        await Promise.race([context.close().catch(() => {}), new Promise((r) => (timer = setTimeout(r, 10000)))]);
        clearTimeout(timer);
        fs.rmSync(path.join(outputDir(), 'chromium-profile'), { recursive: true, force: true });
    }
    if (cluster) {
        const { leftovers } = await cluster.stop();
        assert.deepEqual(leftovers, [], 'cluster.sh down left processes behind');
    }
});

/* ---------- page helpers ---------- */

// What a browser itself logs when a handshake or a fetch is refused: expected in the refusal
// and node-loss tests, not a fault of the page.
const NETWORK_NOISE = /WebSocket connection to|Failed to load resource|ERR_CONNECTION_REFUSED/;

async function openPage(label, { viewport } = {}) {
    const page = await context.newPage();
    if (viewport) await page.setViewportSize(viewport);
    page.sentFrames = []; // every WebSocket frame the page sends, across reloads
    page.on('websocket', (ws) => ws.on('framesent', (f) => page.sentFrames.push(String(f.payload))));
    page.on('pageerror', (err) => pageErrors.push(`${label}: ${err.message}`));
    page.on('console', (msg) => {
        if (msg.type() === 'error' && !NETWORK_NOISE.test(msg.text())) pageErrors.push(`${label} console: ${msg.text()}`);
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
    await page.waitForSelector(`.msg.mine[data-offset]:has(.msg-text:text-is("${text}"))`);
}

const seen = (page, from, text) => page.waitForSelector(`.msg[data-from="${from}"]:has(.msg-text:text-is("${text}"))`);

/** Offsets of the messages shown in the current conversation, in page order. */
const shownOffsets = (page) => page.$$eval('#messages .msg[data-offset]', (els) => els.map((e) => Number(e.dataset.offset)));

const sysLines = (page) => page.$$eval('#messages .sys', (els) => els.map((e) => e.textContent));

async function seedHistory(room, count, text = (i) => `seed ${i}`) {
    for (let i = 1; i <= count; i++) {
        const res = await fetch(`http://127.0.0.1:${cluster.ports.nodes[0]}/api/publish`, {
            method: 'POST',
            headers: { Authorization: `Bearer ${API_KEY}`, 'Content-Type': 'application/json' },
            body: JSON.stringify({ room, text: text(i) }),
        });
        assert.equal(res.status, 200, await res.text());
    }
}

/** Whether a typing frame sent right after a message is relayed (the server's half of issue 17.6). */
async function serverRelaysTypingAfterMessage() {
    const a = await connect(cluster.lbUrl, { token: token({ sub: 'probe-a' }), label: 'probe-a' });
    const b = await connect(cluster.lbUrl, { token: token({ sub: 'probe-b' }), label: 'probe-b' });
    try {
        await a.request({ type: 'join', room: 'typing-probe' });
        await b.request({ type: 'join', room: 'typing-probe' });
        a.send({ type: 'typing', room: 'typing-probe', state: true });
        await b.next({ type: 'typing', state: true }, 3000);
        await a.request({ type: 'publish', room: 'typing-probe', text: 'sent' });
        a.send({ type: 'typing', room: 'typing-probe', state: true });
        const again = await b.next({ type: 'typing', state: true }, 1500).then(() => true, () => false);
        return { supported: again, finding: 'typing right after a message is not relayed (the throttle window still runs)' };
    } finally {
        await a.close();
        await b.close();
    }
}

describe('browser demo', { skip: skipReason || false }, () => {
    let alice;
    let bob;
    let aliceNode;
    const features = {};

    it('two people on different nodes chat in one room; presence lines use display names', async () => {
        features.refusal = await serverChecksTokenOnPlainGet(cluster.httpUrl);
        features.refresh = await serverRefreshes(cluster.lbUrl);
        features.read = await serverHasReadMarkers(cluster.lbUrl);
        console.log(`# server features: ${JSON.stringify(Object.fromEntries(Object.entries(features).map(([k, v]) => [k, v.supported])))}`);
        alice = await openPage('alice');
        aliceNode = await signIn(alice, 'Alice');
        bob = await openPage('bob');
        const bobNode = await signIn(bob, 'Bob');
        assert.notEqual(aliceNode, bobNode, 'least_conn puts the second person on another node');
        await joinRoom(alice, ROOM);
        await joinRoom(bob, ROOM);
        await alice.waitForSelector('.sys >> text=Bob joined.');

        await say(alice, `Hi Bob, I am on ${aliceNode}`);
        await seen(bob, 'alice', `Hi Bob, I am on ${aliceNode}`);
        await say(bob, `Hello Alice! Here is ${bobNode}`);
        await seen(alice, 'bob', `Hello Alice! Here is ${bobNode}`);
        await alice.waitForSelector('#online li[data-user="bob"]:text-is("Bob")');
        await bob.waitForSelector('#online li[data-user="alice"]:text-is("Alice")');
        assert.match(await bob.textContent('.msg[data-from="alice"] .meta'), /\d{1,2}:\d{2}:\d{2}/);
        assert.equal(await alice.textContent('.msg[data-from="bob"] .who'), 'Bob');
    });

    it('history: shown on join and after a reload, paged back on scroll, nothing twice', async () => {
        await seedHistory('hist-room', 80);
        await joinRoom(alice, 'hist-room');
        await alice.waitForFunction(() => document.querySelectorAll('#messages .msg[data-offset]').length >= 50);
        assert.deepEqual(await shownOffsets(alice), range(31, 80), 'the newest page on join');
        assert.equal(await alice.$eval('#messages', (b) => b.scrollHeight - b.scrollTop - b.clientHeight < 40), true, 'scrolled to the end');

        await alice.$eval('#messages', (b) => b.scrollTo(0, 0));
        await alice.waitForSelector('.sys >> text=This is the beginning of #hist-room.');
        assert.deepEqual(await shownOffsets(alice), range(1, 80), 'paged back to the first message');

        await say(alice, 'after the history');
        await alice.reload();
        await alice.waitForSelector('#state[data-state="open"]');
        await alice.waitForSelector('#rooms li.current[data-room="hist-room"]');
        await alice.waitForSelector('.msg.mine:has(.msg-text:text-is("after the history"))');
        assert.deepEqual(await shownOffsets(alice), range(32, 81), 'after a reload: the newest page again, once');
        await alice.click(`#rooms li[data-room="${ROOM}"]`);
        await seen(alice, 'bob', 'Hello Alice! Here is ' + (await bob.textContent('#node')).trim());
        const offsets = await shownOffsets(alice);
        assert.deepEqual(offsets, [...new Set(offsets)].sort((a, b) => a - b));
    });

    it('typing: shown to the others; typing right after sending is announced again', async (t) => {
        const frames = alice.sentFrames;
        await bob.click(`#rooms li[data-room="${ROOM}"]`);
        await alice.locator('#text').pressSequentially('typing a longer message, slowly…', { delay: 90 });
        await bob.waitForSelector('#typing >> text=Alice is typing');
        await alice.press('#text', 'Enter');
        const sentAt = frames.length;
        await alice.locator('#text').pressSequentially('and more', { delay: 20 });
        const typingAfter = () => frames.slice(sentAt).map((f) => JSON.parse(f)).filter((f) => f.type === 'typing' && f.state === true);
        // The page's half (issue 17.6): the message ended the local typing state, so the next
        // keystroke is announced although the last announcement was less than 2 s ago.
        await until(() => typingAfter().length > 0, { timeoutMs: 3000, what: `a typing frame after sending (sent: ${frames.slice(sentAt).join(' ')})` });
        assert.equal(typingAfter().length, 1, 'still throttled while typing on');
        const server = await serverRelaysTypingAfterMessage();
        if (!server.supported) {
            await alice.fill('#text', '');
            return t.skip(`the rest waits on the server: ${server.finding}`);
        }
        await bob.waitForSelector('#typing >> text=Alice is typing', { timeout: 1500 });
        await alice.fill('#text', '');
    });

    it('presence: a reload is not announced as leave + join; a real leave is, by name', async () => {
        const before = (await sysLines(alice)).length;
        await bob.reload();
        await bob.waitForSelector(`#rooms li.current[data-room="${ROOM}"]`);
        await bob.waitForSelector('#state[data-state="open"]');
        // Absence can only be seen by waiting: past the page's grace period for a rejoin.
        await delay(LEAVE_GRACE_MS + 1000);
        const lines = (await sysLines(alice)).slice(before);
        assert.deepEqual(lines.filter((l) => /Bob (left|joined)/.test(l)), [], `lines: ${lines.join(' | ')}`);
        assert.ok(await alice.isVisible('#online li[data-user="bob"]'));
        // A real leave, then a join: both announced, by display name (user_left carries none).
        await bob.click(`#rooms li[data-room="${ROOM}"] .leave`);
        await alice.waitForSelector('.sys >> text=Bob left.', { timeout: LEAVE_GRACE_MS + WAIT_MS });
        await alice.waitForSelector('#online li[data-user="bob"]', { state: 'detached' });
        await joinRoom(bob, ROOM);
        await alice.waitForSelector('#online li[data-user="bob"]');
        await alice.waitForFunction((n) => [...document.querySelectorAll('#messages .sys')].slice(n).some((e) => e.textContent.endsWith('Bob joined.')), before);
    });

    it('direct messages: from the online list, with a thread and a badge on the other side', async () => {
        await alice.click('#online li[data-user="bob"]');
        await alice.waitForSelector('#rooms li.current[data-dm="bob"]');
        assert.match(await alice.textContent('#room-title'), /@Bob/);
        await alice.fill('#text', 'just for you, Bob');
        await alice.press('#text', 'Enter');
        await alice.waitForSelector('.msg.mine:has(.msg-text:text-is("just for you, Bob")) .meta:not(:text("sending"))');
        await bob.waitForSelector('#rooms li[data-dm="alice"] .unread:text-is("1")');
        await bob.click('#rooms li[data-dm="alice"]');
        await seen(bob, 'alice', 'just for you, Bob');
        await bob.fill('#text', 'thanks!');
        await bob.press('#text', 'Enter');
        await seen(alice, 'bob', 'thanks!');
        await alice.click(`#rooms li[data-room="${ROOM}"]`);
        await bob.click(`#rooms li[data-room="${ROOM}"]`);
    });

    it('unread badges per room; "seen by" under the last message', async (t) => {
        await joinRoom(bob, 'side-room'); // bob now looks at another room
        await say(alice, 'one for the badge');
        await say(alice, 'and another');
        await bob.waitForSelector(`#rooms li[data-room="${ROOM}"] .unread:text-is("2")`);
        await bob.click(`#rooms li[data-room="${ROOM}"]`);
        await bob.waitForFunction((room) => document.querySelector(`#rooms li[data-room="${room}"] .unread`).textContent === '', ROOM);
        if (!features.read.supported) return t.skip(`"seen by" and badges after a reload wait on the server: ${features.read.finding}`);
        await alice.waitForSelector('#messages .seen:text-is("Seen by Bob")');
        await bob.click('#rooms li[data-room="side-room"]');
        await say(alice, 'unread while bob reloads');
        await bob.waitForSelector(`#rooms li[data-room="${ROOM}"] .unread:text-is("1")`);
        await bob.reload();
        await bob.waitForSelector(`#rooms li[data-room="${ROOM}"] .unread:text-is("1")`);
    });

    it('a 390 px phone: rooms, join box, online list, header and Sign out all visible (screenshot)', async () => {
        const dana = await openPage('dana', { viewport: { width: 390, height: 844 } });
        await signIn(dana, 'Dana Scully-Mulder');
        await joinRoom(dana, ROOM);
        await dana.waitForSelector('#online li[data-user="alice"]');
        await say(dana, 'Hello from a phone');
        for (const sel of ['header h1', '#state', '#signout', `#rooms li[data-room="${ROOM}"]`, '#room-input', '#join', '#online li[data-user="dana-scully-mulder"]', '#text', '#send']) {
            const box = await dana.locator(sel).boundingBox();
            assert.ok(box, `${sel} is not visible`);
            assert.ok(box.x >= 0 && box.x + box.width <= 390 + 0.5, `${sel} is cut off: ${JSON.stringify(box)}`);
            assert.ok(box.y >= 0 && box.y + box.height <= 844, `${sel} is off screen: ${JSON.stringify(box)}`);
        }
        const h1 = await dana.locator('header h1').boundingBox();
        assert.ok(h1.height < 30, `the title wraps: ${JSON.stringify(h1)}`);
        assert.ok((await dana.evaluate(() => document.documentElement.scrollWidth)) <= 390, 'no sideways scrolling');
        await dana.screenshot({ path: path.join(outputDir(), 'phone-390.png') });
        await dana.setViewportSize({ width: 360, height: 740 });
        assert.ok((await dana.evaluate(() => document.documentElement.scrollWidth)) <= 360, 'no sideways scrolling at 360 px');
        assert.ok(await dana.isVisible('#signout'));
        await dana.click('#signout');
        await dana.waitForSelector('#signin:not([hidden])');
        await dana.close();

        const shot = path.join(outputDir(), 'desktop.png');
        await alice.screenshot({ path: shot });
        if (process.env.UPDATE_SCREENSHOT === '1') fs.copyFileSync(shot, path.join(REPO, 'docs', 'screenshot.png'));
    });

    it('a refused token stops, shows the server reason and offers to sign in again', async (t) => {
        const page = await openPage('refused');
        let sockets = 0;
        page.on('websocket', () => sockets++);
        // A pasted token that has expired: the page knows without asking.
        await page.click('#token-box summary');
        await page.fill('#token', token({ sub: 'eve', exp: Math.floor(Date.now() / 1000) - 60 }));
        await page.click('#token-button');
        await page.waitForSelector('#signin-problem:text("The server refused your token: token expired. Sign in again.")');
        assert.equal(sockets, 0);
        if (!features.refusal.supported) {
            await page.close();
            return t.skip(`a wrong signature waits on the server: ${features.refusal.finding}`);
        }
        await page.fill('#token', token({ sub: 'eve', key: 'not-the-cluster-secret' }));
        await page.click('#token-button');
        await page.waitForSelector('#signin-problem:text-matches("The server refused your token: .*signature.*Sign in again")');
        await page.waitForSelector('#signin:not([hidden])');
        assert.equal(await page.getAttribute('#state', 'data-state'), 'idle');
        await delay(1500); // would a retry loop open more sockets?
        assert.equal(sockets, 1, 'one attempt, no retry loop');
        await page.fill('#name', 'Eve');
        await page.click('#signin-button');
        await page.waitForSelector('#state[data-state="open"]');
        await page.close();
    });

    it('refreshes its dev token before it expires and keeps the connection', async (t) => {
        if (!features.refresh.supported) return t.skip(`waits on the server: ${features.refresh.finding}`);
        const page = await context.newPage();
        page.on('pageerror', (err) => pageErrors.push(`carol: ${err.message}`));
        const devTokens = [];
        await page.route('**/dev/token?*', (route) => {
            const url = new URL(route.request().url());
            url.searchParams.set('ttl', '6');
            devTokens.push(Date.now());
            route.continue({ url: url.href });
        });
        await page.goto(`${cluster.httpUrl}/`);
        await signIn(page, 'Carol');
        const conn = await page.evaluate(() => window.chatDemo.client.welcome.conn);
        const refreshed = await page.evaluate(
            () => new Promise((resolve) => {
                window.chatDemo.client.once('refreshed', () => resolve(true));
                setTimeout(() => resolve(false), 8000);
            }),
        );
        assert.ok(refreshed, 'no refreshed within 8 s of a 6 s token');
        await delay(5000); // past the first token's exp
        assert.equal(await page.evaluate(() => window.chatDemo.client.welcome.conn), conn, 'the same connection');
        assert.equal(await page.getAttribute('#state', 'data-state'), 'open');
        assert.ok(devTokens.length >= 2, `dev tokens fetched: ${devTokens.length}`);
        await page.close();
    });

    it('a room whose stored history is lost (reset): the page starts the room over and says so', async (t) => {
        const room = 'reset-room';
        await seedHistory(room, 2);
        await joinRoom(alice, room);
        await alice.waitForSelector('#messages .msg[data-offset="2"]');
        const reset = alice.evaluate(
            () => new Promise((resolve) => {
                window.chatDemo.client.once('reset', () => resolve(true));
                setTimeout(() => resolve(false), 5000);
            }),
        );
        await loseRoomHistory(cluster.ports.redis, room);
        await seedHistory(room, 1, () => 'after the loss');
        if (!(await reset)) return t.skip('waits on the server: no reset after the room lost its history');
        await alice.waitForSelector('.sys >> text=The room history was lost on the server');
        await seen(alice, '@server', 'after the loss');
        assert.deepEqual(await shownOffsets(alice), [1]);
    });

    for (const signal of ['SIGKILL', 'SIGTERM']) {
        it(`a node ${signal === 'SIGKILL' ? 'killed (SIGKILL)' : 'drained (SIGTERM)'} under the page: reconnects elsewhere, no node claimed meanwhile, every offset once`, async () => {
            const room = `survive-${signal.toLowerCase()}`;
            await joinRoom(alice, room);
            const node = (await alice.textContent('#node')).trim();
            await alice.evaluate(() => {
                window.__header = [];
                const note = () =>
                    window.__header.push({
                        state: document.querySelector('#state').dataset.state,
                        nodeShown: !document.querySelector('#node-info').hidden,
                        hint: document.querySelector('#online-hint').textContent,
                    });
                new MutationObserver(note).observe(document.body, { attributes: true, subtree: true, childList: true });
            });
            const victim = nodeIndex(node);
            const alive = range(1, 3).filter((i) => i !== victim && cluster.livePids().has(cluster.nodePid(i)));
            const pub = await startPublisher(cluster, alive[0], room);
            await pub.more(10);
            process.kill(cluster.nodePid(victim), signal);
            await alice.waitForFunction(
                (old) => document.querySelector('#state').dataset.state === 'open' && document.querySelector('#node').textContent.trim() !== old,
                node,
                { timeout: 20000 },
            );
            const newNode = (await alice.textContent('#node')).trim();
            await alice.waitForSelector(`.sys >> text=now on ${newNode} (was ${node})`);
            await pub.more(10);
            const acked = await pub.stop();
            await alice.waitForSelector(`#messages .msg[data-offset="${acked.at(-1)}"]`);
            assert.deepEqual(await shownOffsets(alice), range(1, acked.at(-1)), 'every offset once, in order');
            const header = await alice.evaluate(() => window.__header);
            assert.ok(header.some((h) => h.state !== 'open'), 'the header showed the reconnect');
            assert.deepEqual(header.filter((h) => h.state !== 'open' && h.nodeShown), [], 'no node claimed while not connected');
            assert.deepEqual(header.filter((h) => h.hint), [], 'no "does not answer presence" while merely disconnected');
        });
    }

    it('raised no errors in the pages', () => {
        assert.deepEqual(pageErrors, []);
    });
});
