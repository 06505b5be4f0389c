// chat-cli as a user meets it, in a real terminal (a pty, see support/chat_cli_terminal.mjs)
// against a real gateway and redis: issue 17 points 2 and 5, issue 11's --token-cmd, issue
// 15's unread counts on join.
//
// Checked: a refused handshake ends the program at once (exit 3, never retried) and prints the
// server's own reason; --room is validated before connecting; own messages are echoed with
// the ack's offset; /room, /leave, /join with a wrong room and unknown commands get a brief
// local answer; /dm says when nobody received the message; --token-cmd provides the token at
// start and (where the server refreshes in band) before it expires, and a fresh one after a
// 1008 "token expired"; unread counts are printed on join; after a room's history is lost,
// new messages still show, and a `reset` frame is announced.
//
// Some cases need server features of PROTOCOL.md v1.1 that a gateway may not have yet (reasons
// on a plain GET /ws, in-band refresh, close at expiry, read/unread, reset). Each such case
// probes the gateway first and skips, saying which feature is missing, when it is absent.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { JWT_SECRET, freePort, httpGet, outputDir, redisCommand, startGateway, startRedis, stopAll } from './lib/harness.mjs';
import { connect, nowSeconds, token } from './lib/client.mjs';
import { CHAT_TOKEN, Terminal, closeTerminals, runToEnd } from './support/chat_cli_terminal.mjs';

let redis;
let gw;
let caps;

/** What the gateway under test supports of PROTOCOL.md v1.1 (see the file comment). */
async function probeCapabilities() {
    const c = await connect(gw.url, { token: token({ sub: 'probe' }), label: 'probe' });
    const refresh = await c.request({ type: 'refresh', token: token({ sub: 'probe' }) });
    const joined = await c.request({ type: 'join', room: 'probe-room' });
    await c.close();
    const get = await httpGet(gw.port, '/ws', { headers: { Authorization: 'Bearer not-a-jwt' } });
    return { refresh: refresh.type === 'refreshed', unread: 'unread' in joined, getReasons: get.status === 401 };
}

before(async () => {
    redis = await startRedis();
    gw = await startGateway({ redisPort: redis.port, args: ['--allowed-origins', 'https://chat.example'] });
    caps = await probeCapabilities();
    console.log(`# gateway supports: ${JSON.stringify(caps)}`);
});

after(async () => {
    await closeTerminals();
    await stopAll();
});

const cli = (args, opts) => new Terminal(['--url', gw.url, ...args], opts);
const run = (args) => runToEnd(['--url', gw.url, ...args]);

/** A shell script printing chat-token's token for sub with ttl seconds; call n (1-based) of
 * the script fails when n is in failCalls. Returns {cmd, calls()}. */
function tokenCommand(name, { sub, ttl, failCalls = [] }) {
    const dir = path.join(outputDir(), name);
    fs.mkdirSync(dir, { recursive: true });
    const count = path.join(dir, 'calls');
    const script = path.join(dir, 'token.sh');
    fs.writeFileSync(
        script,
        [
            '#!/bin/sh',
            `n=$(( $(cat '${count}' 2>/dev/null || echo 0) + 1 ))`,
            `echo "$n" > '${count}'`,
            ...failCalls.map((n) => `[ "$n" -eq ${n} ] && { echo "token.sh: call $n fails on purpose" >&2; exit 1; }`),
            `exec '${CHAT_TOKEN}' --sub '${sub}' --ttl ${ttl} --secret '${JWT_SECRET}'`,
            '',
        ].join('\n'),
        { mode: 0o755 },
    );
    return { cmd: script, calls: () => Number(fs.readFileSync(count, 'utf8').trim() || 0) };
}

describe('a refused handshake', () => {
    it('ends the program at once with exit 3 and the HTTP status, never retried (401, 403)', async () => {
        const cases = [
            [['--token', 'not-a-jwt'], 401],
            [['--token', token({ sub: 'late', exp: nowSeconds() - 60 })], 401],
            [['--token', token({ sub: 'x', key: 'wrong-secret' })], 401],
            [['--token', token({ sub: 'evil' }), '--origin', 'https://evil.example'], 403],
        ];
        for (const [args, status] of cases) {
            const { code, screen } = await run([...args, '--room', 'r']);
            assert.equal(code, 3, screen);
            assert.match(screen, new RegExp(`handshake refused: HTTP ${status}: `));
            assert.equal(screen.match(/handshake refused/g).length, 1, `one attempt only:\n${screen}`);
            assert.doesNotMatch(screen, /reconnecting|connected to node/);
        }
    });

    it("prints the server's reason from the JSON body", async (t) => {
        if (!caps.getReasons) {
            t.skip('the gateway does not answer a plain GET /ws with the handshake checks yet (it answers 426 to a bad token)');
            return;
        }
        const cases = [
            [['--token', 'not-a-jwt'], /HTTP 401: malformed token/],
            [['--token', token({ sub: 'late', exp: nowSeconds() - 60 })], /HTTP 401: token expired/],
            [['--token', token({ sub: 'x', key: 'wrong-secret' })], /HTTP 401: bad signature/],
            [['--token', token({ sub: 'evil' }), '--origin', 'https://evil.example'], /HTTP 403: origin not allowed/],
        ];
        for (const [args, re] of cases) {
            const { code, screen } = await run(args);
            assert.equal(code, 3, screen);
            assert.match(screen, re);
            assert.doesNotMatch(screen, /gave no reason|bad or missing token/);
        }
    });
});

describe('a node that answers 503', () => {
    it('is retried with backoff (the reason printed each time) until it is ready', async () => {
        // A node whose Redis is not there yet refuses handshakes with 503 "not ready".
        const redisPort = await freePort();
        const lonely = await startGateway({ redisPort, nodeId: 'not-ready', waitFor: '/healthz' });
        const term = new Terminal(['--url', lonely.url, '--token', token({ sub: 'patient' }), '--room', 'wait-room', '--timeout', '30'], {
            label: 'patient',
        });
        await term.waitFor(/handshake refused: HTTP 503: .*; reconnecting in \d+\.\d s/);
        await term.waitFor(/handshake refused: HTTP 503[\s\S]*handshake refused: HTTP 503/, { timeoutMs: 5000 });
        await startRedis({ port: redisPort });
        await term.waitFor(/connected to node not-ready as patient/, { timeoutMs: 20000 });
        await term.waitFor(/joined #wait-room/);
        if (caps.getReasons) assert.match(term.screen, /HTTP 503: node not ready/);
        assert.equal((await term.quit()).code, 0, term.screen);
        await lonely.stop();
    });
});

describe('arguments and commands', () => {
    it("rejects --room with a name that is not a room, before connecting (no splitting on spaces)", async () => {
        for (const [room, named] of [['bad room!', 'bad room!'], ['general,no spaces', 'no spaces'], ['', '']]) {
            const { code, screen } = await run(['--token', token({ sub: 'v' }), '--room', room]);
            assert.equal(code, 2, screen);
            if (named) assert.match(screen, new RegExp(`'${named}' is not a room name \\(1-64 characters of A-Z a-z 0-9 _ \\. : -`));
            else assert.match(screen, /names no room/);
            assert.doesNotMatch(screen, /connected|joined/);
        }
    });

    it('echoes own messages with the ack offset and answers wrong commands briefly', async () => {
        const bob = await connect(gw.url, { token: token({ sub: 'bob' }), label: 'bob' });
        await bob.request({ type: 'join', room: 'lobby' });
        const alice = cli(['--token', token({ sub: 'alice' }), '--room', 'lobby'], { label: 'alice' });
        await alice.waitFor(/joined #lobby/);

        alice.type('hello bob');
        const echo = await alice.waitFor(/\] #lobby alice: hello bob {2}\(sent, offset (\d+)\)/);
        const got = await bob.next({ type: 'message', room: 'lobby', text: 'hello bob' });
        assert.equal(got.offset, Number(echo[1]), 'the echo carries the offset everyone else sees');

        let from = alice.mark();
        alice.type('/room nowhere');
        await alice.waitFor(/! you have not joined #nowhere \(\/join nowhere joins it\)/, { from });
        alice.type('/x');
        await alice.waitFor(/! unknown command \/x \(try \/help\)\n/, { from });
        alice.type('/join bad room!');
        await alice.waitFor(/! 'bad room!' is not a room name/, { from });
        alice.type('/leave nowhere');
        await alice.waitFor(/! you are not in #nowhere/, { from });
        alice.type('/dm');
        await alice.waitFor(/! usage: \/dm USER TEXT/, { from });
        assert.doesNotMatch(alice.screen.slice(from), /commands:/, 'an unknown command does not print the whole help');
        assert.doesNotMatch(alice.screen.slice(from), /joined #bad|#nowhere alice/);

        from = alice.mark();
        alice.type('/join side');
        await alice.waitFor(/joined #side/, { from });
        alice.type('in the side room');
        await alice.waitFor(/\] #side alice: in the side room {2}\(sent/, { from });
        alice.type('/room lobby');
        await alice.waitFor(/now talking in #lobby/, { from });
        alice.type('back in the lobby');
        await alice.waitFor(/\] #lobby alice: back in the lobby {2}\(sent/, { from });
        await bob.next({ type: 'message', room: 'lobby', text: 'back in the lobby' });
        await bob.request({ type: 'publish', room: 'lobby', text: 'hi alice' });
        await alice.waitFor(/\] #lobby bob: hi alice\n/, { from });
        assert.deepEqual((await alice.quit()).code, 0, alice.screen);
        await bob.close();
    });

    it('/dm reaches an online user, and says so when nobody received it', async () => {
        const bob = await connect(gw.url, { token: token({ sub: 'bob' }), label: 'bob' });
        const alice = cli(['--token', token({ sub: 'alice' })], { label: 'alice' });
        await alice.waitFor(/connected to node/);
        alice.type('/dm bob psst');
        assert.equal((await bob.next({ type: 'direct', text: 'psst' })).from.user, 'alice');
        await alice.waitFor(/\] alice -> bob: psst\n/);
        const from = alice.mark();
        alice.type('/dm carol are you there?');
        await alice.waitFor(/\] alice -> carol: are you there\?\n/, { from });
        await alice.waitFor(/carol is offline; the message was not delivered to anyone/, { from });
        assert.doesNotMatch(alice.screen, /bob is offline/);
        assert.equal((await alice.quit()).code, 0, alice.screen);
        await bob.close();
    });

    it('prints the unread count of a room on join, and /read marks it read', async (t) => {
        if (!caps.unread) {
            t.skip('the gateway does not send read/unread in joined yet (PROTOCOL.md §8)');
            return;
        }
        const bob = await connect(gw.url, { token: token({ sub: 'bob' }), label: 'bob' });
        await bob.request({ type: 'join', room: 'unread-room' });
        for (const text of ['one', 'two', 'three']) await bob.request({ type: 'publish', room: 'unread-room', text });
        const alice = cli(['--token', token({ sub: 'unread-alice' }), '--room', 'unread-room'], { label: 'alice' });
        await alice.waitFor(/#unread-room: 3 unread/);
        alice.type('/read');
        await alice.waitFor(/#unread-room: marked read up to 3/);
        assert.equal((await alice.quit()).code, 0, alice.screen);
        const again = cli(['--token', token({ sub: 'unread-alice' }), '--room', 'unread-room'], { label: 'alice-again' });
        await again.waitFor(/joined #unread-room/);
        assert.equal((await again.quit()).code, 0, again.screen);
        assert.doesNotMatch(again.screen, /#unread-room: \d+ unread/, "no unread count once marked read");
        await bob.close();
    });
});

describe('--token-cmd', () => {
    it('takes the token from the command at start; a failing command is reported (exit 3)', async () => {
        const tc = tokenCommand('token-cmd-start', { sub: 'tc-user', ttl: 3600 });
        const t = cli(['--token-cmd', tc.cmd, '--room', 'tc-room'], { label: 'tc' });
        await t.waitFor(/connected to node \S+ as tc-user/);
        await t.waitFor(/joined #tc-room/);
        assert.equal(tc.calls(), 1);
        assert.equal((await t.quit()).code, 0, t.screen);

        const failing = await run(['--token-cmd', 'echo no token here >&2; exit 7', '--room', 'r']);
        assert.equal(failing.code, 3, failing.screen);
        assert.match(failing.screen, /no token here/);
        assert.match(failing.screen, /--token-cmd: no fresh token: it failed \(status 7\)/);
        const both = await run(['--token-cmd', 'true', '--token', 'x']);
        assert.equal(both.code, 2, both.screen);
        assert.match(both.screen, /only one of --token, --token-cmd and --sub/);
    });

    it('refreshes a short-lived token in band before it expires; the connection stays', async (t) => {
        if (!caps.refresh) {
            t.skip('the gateway does not answer `refresh` yet (PROTOCOL.md §7)');
            return;
        }
        const ttl = 3;
        const tc = tokenCommand('token-cmd-refresh', { sub: 'tc-refresh', ttl });
        const started = Date.now();
        const term = cli(['--token-cmd', tc.cmd, '--room', 'tc-room'], { label: 'tc-refresh' });
        await term.waitFor(/joined #tc-room/);
        await term.waitFor(/token refreshed \(valid until/, { timeoutMs: ttl * 1000 + 3000 });
        assert.ok(tc.calls() >= 2, `the command ran again for the refresh (${tc.calls()} calls)`);
        // The first token expired at started + ttl at the latest, and the server closes within
        // a second of that: past that moment, the connection is still the first one.
        await delay(Math.max(0, started + (ttl + 1.5) * 1000 - Date.now()));
        assert.ok(term.lines(/token refreshed/).length >= 2, `refreshed again:\n${term.screen}`);
        const from = term.mark();
        term.type('/ping');
        await term.waitFor(/pong in \d+ ms/, { from });
        assert.doesNotMatch(term.screen, /reconnect|closed the connection/);
        assert.equal((await term.quit()).code, 0, term.screen);
    });

    it('after a 1008 "token expired" close: a fixed --token ends (exit 4); --token-cmd reconnects with a fresh token', async (t) => {
        const fixed = cli(['--token', token({ sub: 'short', exp: nowSeconds() + 2 }), '--room', 'exp-room'], { label: 'fixed' });
        await fixed.waitFor(/joined #exp-room/);
        try {
            await fixed.waitFor(/1008 token expired/, { timeoutMs: 6000 });
        } catch {
            await fixed.quit();
            t.skip('the gateway does not close connections when their token expires yet (PROTOCOL.md §1)');
            return;
        }
        assert.equal((await fixed.exit()).code, 4, fixed.screen);
        assert.match(fixed.screen, /--token-cmd CMD or --sub renew tokens automatically/);

        // Call 2 (the in-band refresh) fails, so the server ends the connection at expiry; call
        // 3 is the fresh token of the reconnect.
        const tc = tokenCommand('token-cmd-expiry', { sub: 'tc-expiry', ttl: 3, failCalls: [2] });
        const term = cli(['--token-cmd', tc.cmd, '--room', 'exp-room'], { label: 'tc-expiry' });
        await term.waitFor(/joined #exp-room/);
        await term.waitFor(/1008 token expired; reconnecting now/, { timeoutMs: 8000 });
        await term.waitFor(/reconnected to node \S+ as tc-expiry/);
        await term.waitFor(/rejoined #exp-room/);
        assert.equal(tc.calls(), 3);
        assert.equal((await term.quit()).code, 0, term.screen);
    });
});

describe('a room whose history is lost while connected', () => {
    it('still shows new messages (offsets restart), and announces a reset frame', async () => {
        const bob = await connect(gw.url, { token: token({ sub: 'bob' }), label: 'bob' });
        await bob.request({ type: 'join', room: 'reset-room' });
        const alice = cli(['--token', token({ sub: 'alice' }), '--room', 'reset-room'], { label: 'alice' });
        await alice.waitFor(/joined #reset-room/);
        for (const text of ['before 1', 'before 2', 'before 3']) await bob.request({ type: 'publish', room: 'reset-room', text });
        await alice.waitFor(/#reset-room bob: before 3\n/);

        assert.equal(await redisCommand(redis.port, 'FLUSHALL'), '+OK');
        const ack = await bob.request({ type: 'publish', room: 'reset-room', text: 'after the loss' });
        assert.equal(ack.type, 'ack', JSON.stringify(ack));
        await alice.waitFor(/#reset-room bob: after the loss\n/);
        const reset = await bob.next({ type: 'reset', room: 'reset-room' }, 2000).catch(() => null);
        if (reset) {
            await alice.waitFor(/#reset-room: the server lost this room's stored history/);
        } else {
            console.log('# the gateway sent no reset frame (PROTOCOL.md §2): only the restart of offsets was checked');
        }
        assert.equal((await alice.quit()).code, 0, alice.screen);
        await bob.close();
    });
});
