// chat-cli keeps a session across nodes going away (issue 17 point 4), in a real terminal
// (support/chat_cli_terminal.mjs), through the load balancer of a real cluster:
// deploy/cluster.sh's redis, three gateway nodes and nginx, in this test's own RUN_DIR and
// ports (support/cluster.mjs).
//
// While another user publishes m1, m2, ... without pause from a node that stays up, the node
// chat-cli is on is drained (SIGTERM: close 1001, chat-cli reconnects at once) or killed
// (SIGKILL: the connection just drops, chat-cli reconnects after a backoff). Either way it
// must come back through the load balancer on another node, rejoin the room with `since`, and
// show every message exactly once, in order — none missed while it was away, none twice.
//
// cluster.sh builds build/ (non-sanitized) when needed; CLUSTER_BUILD_DIR runs prebuilt
// gateways instead. chat-cli itself is BUILD_DIR's (ctest's build, sanitized under tests/run.sh).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { JWT_SECRET, outputDir } from './lib/harness.mjs';
import { connect, token } from './lib/client.mjs';
import { LocalCluster } from './support/cluster.mjs';
import { Terminal, closeTerminals } from './support/chat_cli_terminal.mjs';

// The server's publish budget is 20/s per connection: one message every 60 ms stays under it.
const PUBLISH_EVERY_MS = 60;
// Messages published after chat-cli has rejoined, so the end of the test is live traffic.
const AFTER_REJOIN = 10;

let cluster;
const clients = [];

before(async () => {
    cluster = new LocalCluster({
        runDir: path.join(outputDir(), 'run'),
        env: { JWT_SECRET, HEARTBEAT: '5', DRAIN_SECONDS: '2', DEV_TOKENS: '0' },
    });
    await cluster.up();
});

after(async () => {
    await closeTerminals();
    await Promise.all(clients.map((c) => c.close().catch(() => {})));
    if (cluster) {
        const { leftovers } = await cluster.stop();
        if (leftovers.length) console.error(`# killed leftovers: ${JSON.stringify(leftovers)}`);
    }
});

/**
 * Publishes "m1", "m2", ... to room from client, one every PUBLISH_EVERY_MS, each awaited;
 * finish() makes it publish `extra` more and resolves with the last number sent.
 */
function startPublishing(client, room) {
    let n = 0;
    let stopAt = Infinity;
    const loop = (async () => {
        while (n < stopAt) {
            n++;
            const ack = await client.request({ type: 'publish', room, text: `m${n}` });
            assert.equal(ack.type, 'ack', `publish m${n}: ${JSON.stringify(ack)}`);
            await delay(PUBLISH_EVERY_MS);
        }
        return n;
    })();
    return {
        finish: (extra) => {
            stopAt = n + extra;
            return loop;
        },
    };
}

/** The numbers of bob's messages in room, in the order the terminal showed them. */
function shownNumbers(term, room) {
    const re = new RegExp(`^\\[\\d\\d:\\d\\d:\\d\\d\\] #${room} bob: m(\\d+)$`);
    return term.lines(re).map((m) => Number(m[1]));
}

/** Starts chat-cli through the load balancer in room; resolves with {term, node (1-based)}. */
async function chatCliOn(room, label) {
    const term = new Terminal(['--url', cluster.lbUrl, '--token', token({ sub: 'alice' }), '--room', room], { label });
    const [, node] = await term.waitFor(/connected to node node(\d+) as alice/);
    await term.waitFor(new RegExp(`joined #${room}`));
    return { term, node: Number(node) };
}

/** bob, connected straight to a live node other than `avoid`, in room. */
async function publisherAvoiding(avoid, room) {
    const index = cluster.ports.nodes.findIndex((_, i) => i + 1 !== avoid && cluster.livePids().has(cluster.nodePid(i + 1)));
    const bob = await connect(`ws://127.0.0.1:${cluster.ports.nodes[index]}/ws`, { token: token({ sub: 'bob' }), label: 'bob' });
    clients.push(bob);
    assert.equal((await bob.request({ type: 'join', room })).type, 'joined');
    return bob;
}

/** Runs one node-loss scenario; returns the terminal and the number of messages published. */
async function survive(room, loseNode) {
    const { term, node } = await chatCliOn(room, `alice-${room}`);
    const bob = await publisherAvoiding(node, room);
    const publishing = startPublishing(bob, room);
    await term.waitFor(new RegExp(`#${room} bob: m5\\n`));
    const from = term.mark();
    loseNode(cluster.nodePid(node));
    const [, back] = await term.waitFor(/reconnected to node node(\d+) as alice/, { from, timeoutMs: 15000 });
    assert.notEqual(Number(back), node, 'back on another node');
    await term.waitFor(new RegExp(`rejoined #${room}`), { from });
    const total = await publishing.finish(AFTER_REJOIN);
    await term.waitFor(new RegExp(`#${room} bob: m${total}\\n`));
    const shown = shownNumbers(term, room);
    assert.deepEqual(shown, Array.from({ length: total }, (_, i) => i + 1), 'every message exactly once, in order');
    return { term, from, total };
}

describe('chat-cli through the load balancer while its node goes away', () => {
    it('a draining node (1001): reconnects at once, rejoins with since, nothing missed or doubled', async () => {
        const { term, from, total } = await survive('cli-drain', (pid) => process.kill(pid, 'SIGTERM'));
        const screen = term.screen.slice(from);
        assert.match(screen, /the server closed the connection: 1001 node draining; reconnecting now/);
        console.log(`# ${total} messages; ${screen.match(/rejoined #cli-drain[^\n]*/)[0]}`);
        assert.equal((await term.quit()).code, 0, term.screen);
        await cluster.up(); // the drained node back, for the next case
    });

    it('a killed node (kill -9): reconnects after a backoff and recovers what was said meanwhile', async () => {
        const { term, from, total } = await survive('cli-kill', (pid) => process.kill(pid, 'SIGKILL'));
        const screen = term.screen.slice(from);
        assert.match(screen, /connection lost; reconnecting in \d+\.\d s/);
        const recovered = screen.match(/rejoined #cli-kill: (\d+) missed messages? recovered/);
        assert.ok(recovered && Number(recovered[1]) >= 1, `messages sent while away came back through since:\n${screen}`);
        console.log(`# ${total} messages; ${recovered[0]}`);
        assert.equal((await term.quit()).code, 0, term.screen);
    });
});
