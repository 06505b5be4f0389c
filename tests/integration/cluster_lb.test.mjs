// Issue 5: the local cluster behind nginx, end to end. deploy/cluster.sh brings up redis, three
// gateway nodes and nginx in this test's own RUN_DIR and on private ports; clients connect only
// through the load balancer. Checked: up prints what it promises and is safe to repeat, a busy
// port is named, least_conn spreads 30 clients over all three nodes, a room spanning the nodes
// delivers everywhere, wss:// works with the self-signed certificate (and only when the client
// trusts it), tokens never reach nginx's logs, the README's curl example answers 401/101,
// chat-cli and chat-token work through the LB, the docker-compose nginx template renders to a
// valid config, `docker compose config` accepts the compose file (when a compose client is
// installed), and `down` leaves no process behind.
//
// cluster.sh builds build/ (non-sanitized) when needed, exactly as the README's first command
// does; set CLUSTER_BUILD_DIR to run prebuilt binaries instead.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { once } from 'node:events';
import WebSocket from 'ws';
import { JWT_SECRET, outputDir } from './lib/harness.mjs';
import { Client, connect, connectMany, handshake, token } from './lib/client.mjs';
import { LocalCluster, REPO, freePortRange, pidRuns } from './support/cluster.mjs';

const ROOM = 'lb-room';
const CLIENTS = 30;
const run = (file, args, opts = {}) =>
    new Promise((resolve) => {
        execFile(file, args, { timeout: 20000, maxBuffer: 4 << 20, ...opts }, (err, stdout, stderr) =>
            resolve({ code: err ? (err.code ?? 1) : 0, stdout, stderr, err }),
        );
    });

let cluster;
let upResult;
let upSeconds;
const openClients = [];

before(async () => {
    cluster = new LocalCluster({
        runDir: path.join(outputDir(), 'run'),
        env: { JWT_SECRET, HEARTBEAT: '5', DRAIN_SECONDS: '2', DEV_TOKENS: '1' },
    });
    const t0 = Date.now();
    upResult = await cluster.up();
    upSeconds = (Date.now() - t0) / 1000;
    console.log(`# cluster.sh up took ${upSeconds.toFixed(1)} s; ports ${JSON.stringify(cluster.ports)}`);
});

after(async () => {
    await Promise.all(openClients.map((c) => c.close().catch(() => {})));
    if (cluster) {
        const { leftovers } = await cluster.stop();
        if (leftovers.length) console.error(`# killed leftovers: ${JSON.stringify(leftovers)}`);
    }
});

/** Opens a wss:// connection through the LB's TLS port; `ca` undefined means "trust nothing extra". */
function connectTls(url, { tok, ca, label = 'tls' }) {
    return new Promise((resolve, reject) => {
        const ws = new WebSocket(url, {
            headers: { Authorization: `Bearer ${tok}` },
            ca,
            handshakeTimeout: 5000,
            perMessageDeflate: false,
        });
        const client = new Client(ws, label);
        openClients.push(client);
        const timer = setTimeout(() => {
            ws.terminate();
            reject(new Error(`${label}: no welcome within 5 s`));
        }, 6000);
        ws.once('error', (err) => {
            clearTimeout(timer);
            reject(err);
        });
        ws.once('open', () => {
            client
                .next({ type: 'welcome' }, 5000)
                .then((welcome) => {
                    clearTimeout(timer);
                    client.welcome = welcome;
                    resolve(client);
                })
                .catch(reject);
        });
    });
}

describe('deploy/cluster.sh up', () => {
    it('prints the demo URL, a dev token that works, and how to stop', async () => {
        const out = upResult.stdout;
        assert.match(out, new RegExp(`http://127\\.0\\.0\\.1:${cluster.ports.lb}/`));
        assert.match(out, new RegExp(`wss://127\\.0\\.0\\.1:${cluster.ports.lbTls}/ws`));
        assert.match(out, /deploy\/cluster\.sh down/);
        const m = out.match(/TOKEN=(\S+)/);
        assert.ok(m, `no dev token in:\n${out}`);
        const c = await connect(cluster.lbUrl, { token: m[1], label: 'printed-token' });
        openClients.push(c);
        assert.equal(c.welcome.user, 'demo');
    });

    it('serves the demo page, /healthz and /dev/token through nginx, and not /metrics', async () => {
        const page = await fetch(`${cluster.httpUrl}/`);
        assert.equal(page.status, 200);
        assert.match(await page.text(), /<script type="module" src="\.\/app\.js">/);
        for (const file of ['app.js', 'chat-client.js']) {
            const res = await fetch(`${cluster.httpUrl}/${file}`);
            assert.equal(res.status, 200, file);
            assert.match(res.headers.get('content-type'), /javascript/, `${file} must be served as JavaScript for a module`);
        }
        assert.equal((await fetch(`${cluster.httpUrl}/healthz`)).status, 200);
        const dev = await fetch(`${cluster.httpUrl}/dev/token?sub=zoe&name=Zo%C3%AB`);
        assert.equal(dev.status, 200);
        const { token: devToken } = await dev.json();
        const c = await connect(cluster.lbUrl, { token: devToken, tokenIn: 'query', label: 'dev-token' });
        openClients.push(c);
        assert.equal(c.welcome.user, 'zoe');
        assert.equal((await fetch(`${cluster.httpUrl}/metrics`)).status, 404);
    });

    it('is safe to run twice: everything keeps running under the same pids', async () => {
        const before = [...cluster.livePids().keys()].sort();
        const again = await cluster.run('up', { timeoutMs: 120000 });
        assert.equal(again.code, 0, again.stderr);
        assert.deepEqual([...cluster.livePids().keys()].sort(), before);
        assert.equal((await cluster.run('status')).code, 0);
    });

    it('names a port that is already in use, and starts nothing', async () => {
        const [busyPort] = await freePortRange(1);
        const blocker = net.createServer().listen(busyPort, '127.0.0.1');
        await once(blocker, 'listening');
        try {
            const other = new LocalCluster({ runDir: path.join(outputDir(), 'run-busy'), env: { JWT_SECRET } });
            await other.allocatePorts();
            const res = await other.run('up', { envOverride: { LB_PORT: String(busyPort) } });
            assert.notEqual(res.code, 0);
            assert.match(res.stderr, new RegExp(`port ${busyPort} \\(LB_PORT`));
            assert.equal(other.livePids().size, 0, 'a refused up must not leave processes');
        } finally {
            blocker.close();
        }
    });
});

describe('through the load balancer', () => {
    let clients;

    it(`spreads ${CLIENTS} clients over all three nodes (least_conn)`, async () => {
        clients = await connectMany(cluster.lbUrl, CLIENTS, (i) => ({
            token: token({ sub: `lb-user-${i}`, name: `User ${i}` }),
            tokenIn: 'query', // as browsers do: the access log must still not show it
            label: `lb${i}`,
        }));
        openClients.push(...clients);
        const perNode = {};
        for (const c of clients) perNode[c.welcome.node] = (perNode[c.welcome.node] || 0) + 1;
        console.log(`# clients per node: ${JSON.stringify(perNode)}`);
        assert.equal(Object.keys(perNode).length, 3, `all three nodes get clients: ${JSON.stringify(perNode)}`);
        for (const n of Object.values(perNode)) assert.ok(n >= 5, `least_conn keeps nodes balanced: ${JSON.stringify(perNode)}`);
    });

    it('delivers a room spanning the nodes to every member on every node', async () => {
        await Promise.all(clients.map((c) => c.request({ type: 'join', room: ROOM }).then((j) => assert.equal(j.type, 'joined'))));
        // One publisher per node.
        const byNode = new Map();
        for (const c of clients) if (!byNode.has(c.welcome.node)) byNode.set(c.welcome.node, c);
        const publishers = [...byNode.values()];
        const acks = [];
        for (const p of publishers) {
            const ack = await p.request({ type: 'publish', room: ROOM, text: `from ${p.welcome.node}` });
            assert.equal(ack.type, 'ack', JSON.stringify(ack));
            acks.push({ from: p, ack });
        }
        await Promise.all(
            clients.map(async (c) => {
                for (const { from, ack } of acks) {
                    if (c === from) continue;
                    const m = await c.next((f) => f.type === 'message' && f.room === ROOM && f.offset === ack.offset, 5000);
                    assert.equal(m.text, `from ${from.welcome.node}`);
                }
            }),
        );
    });

    it('answers the README curl example: 401 for a bad token, 101 for a good one', async () => {
        const curl = (tok) =>
            run('curl', [
                '-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '2', '--http1.1',
                '-H', 'Connection: Upgrade', '-H', 'Upgrade: websocket',
                '-H', 'Sec-WebSocket-Version: 13', '-H', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
                '-H', `Authorization: Bearer ${tok}`,
                `${cluster.httpUrl}/ws`,
            ]);
        assert.equal((await curl('not-a-jwt')).stdout, '401');
        // curl waits for the upgraded stream until --max-time; the status is printed anyway.
        assert.equal((await curl(token({ sub: 'curl-user' }))).stdout, '101');
        const bad = await handshake(cluster.lbUrl, { token: token({ sub: 'x', key: 'wrong-secret' }), tokenIn: 'query' });
        assert.equal(bad.status, 401);
        assert.equal(bad.body?.error, 'invalid_token');
    });

    it('serves wss:// on the TLS port with the self-signed certificate (trusted via ca)', async () => {
        const cert = fs.readFileSync(path.join(cluster.runDir, 'tls', 'cert.pem'));
        // Not trusted: refused, as it should be.
        await assert.rejects(connectTls(cluster.lbTlsUrl, { tok: token({ sub: 'tls-untrusted' }) }), /self[- ]signed/i);
        const tls = await connectTls(cluster.lbTlsUrl, { tok: token({ sub: 'tls-user', name: 'Tess' }), ca: cert });
        const plain = await connect(cluster.lbUrl, { token: token({ sub: 'plain-user' }), label: 'plain' });
        openClients.push(plain);
        for (const c of [tls, plain]) assert.equal((await c.request({ type: 'join', room: 'tls-room' })).type, 'joined');
        const ack = await tls.request({ type: 'publish', room: 'tls-room', text: 'over TLS' });
        const m = await plain.next({ type: 'message', room: 'tls-room', offset: ack.offset });
        assert.equal(m.text, 'over TLS');
        assert.equal(m.from.name, 'Tess');
    });

    it('chat-token mints and chat-cli publishes through the LB, in script mode, ws:// and wss://', async () => {
        const buildDir = process.env.CLUSTER_BUILD_DIR || path.join(REPO, 'build');
        const cli = path.join(buildDir, 'chat-cli');
        const mint = await run(path.join(buildDir, 'chat-token'), ['--sub', 'cli-user', '--name', 'Cli', '--rooms', 'cli-*'], {
            env: { ...process.env, JWT_SECRET },
        });
        assert.equal(mint.code, 0, mint.stderr);
        const cliToken = mint.stdout.trim();
        const listener = await connect(cluster.lbUrl, { token: token({ sub: 'cli-listener' }), label: 'cli-listener' });
        openClients.push(listener);
        await listener.request({ type: 'join', room: 'cli-room' });

        const runCli = (args, input) =>
            new Promise((resolve) => {
                const child = spawn(cli, args, { stdio: ['pipe', 'pipe', 'pipe'] });
                let stdout = '';
                let stderr = '';
                child.stdout.on('data', (d) => (stdout += d));
                child.stderr.on('data', (d) => (stderr += d));
                const timer = setTimeout(() => child.kill('SIGKILL'), 20000);
                child.on('close', (code) => {
                    clearTimeout(timer);
                    resolve({ code, stdout, stderr });
                });
                child.stdin.end(input);
            });
        const plainRun = await runCli(['--url', cluster.lbUrl, '--token', cliToken, '--room', 'cli-room', '--non-interactive', '--timeout', '5'], 'one\ntwo\n');
        assert.equal(plainRun.code, 0, plainRun.stderr);
        const certFile = path.join(cluster.runDir, 'tls', 'cert.pem');
        const tlsRun = await runCli(
            ['--url', `wss://localhost:${cluster.ports.lbTls}/ws`, '--ca', certFile, '--token', cliToken, '--room', 'cli-room', '--non-interactive', '--timeout', '5'],
            'three\n',
        );
        assert.equal(tlsRun.code, 0, tlsRun.stderr);
        const got = await listener.collect((f) => f.type === 'message' && f.room === 'cli-room', 3, 5000);
        assert.deepEqual(got.map((f) => f.text), ['one', 'two', 'three']);
        assert.ok(got.every((f) => f.from.user === 'cli-user' && f.from.name === 'Cli'));
        // The token's rooms claim is enforced: a room outside cli-* fails the script (exit 1).
        const refused = await runCli(['--url', cluster.lbUrl, '--token', cliToken, '--room', 'general', '--non-interactive', '--timeout', '5'], 'x\n');
        assert.equal(refused.code, 1, refused.stderr);
        assert.match(refused.stderr, /forbidden/);
        // A bad token: the HTTP status is reported and the exit status says "could not connect".
        const badTok = await runCli(['--url', cluster.lbUrl, '--token', 'nope', '--non-interactive'], '');
        assert.equal(badTok.code, 3);
        assert.match(badTok.stderr, /401/);
    });

    it('keeps tokens out of nginx logs (no query strings, no JWTs)', async () => {
        const logs = ['access.log', 'error.log'].map((f) => fs.readFileSync(path.join(cluster.runDir, 'nginx', f), 'utf8')).join('\n');
        assert.match(logs, /"GET \/ws HTTP\/1\.1" 101/);
        assert.doesNotMatch(logs, /token=/);
        assert.doesNotMatch(logs, /eyJ[A-Za-z0-9_-]{10,}/);
    });
});

describe('docker compose', () => {
    it('renders the shared nginx template the way the official image does (envsubst) into a valid config', async (t) => {
        const envsubst = await run('sh', ['-c', 'command -v envsubst']);
        if (envsubst.code !== 0) {
            t.skip('envsubst (gettext-base) not installed');
            return;
        }
        const dir = path.join(outputDir(), 'compose-nginx');
        fs.mkdirSync(dir, { recursive: true });
        const [p1, p2] = await freePortRange(2);
        const env = {
            PATH: process.env.PATH,
            NGINX_WORKERS: 'auto',
            NGINX_STATE_DIR: dir,
            // compose logs to the container's stderr/stdout; a test's stdio may be a socket,
            // which /dev/stdout cannot reopen, so files here.
            NGINX_ERROR_LOG: path.join(dir, 'error.log'),
            NGINX_ACCESS_LOG: path.join(dir, 'access.log'),
            LB_LISTEN_ADDR: '127.0.0.1',
            LB_PORT: String(p1),
            LB_TLS_PORT: String(p2),
            TLS_CERT: path.join(cluster.runDir, 'tls', 'cert.pem'),
            TLS_KEY: path.join(cluster.runDir, 'tls', 'key.pem'),
            WEB_ROOT: path.join(REPO, 'web'),
            // In compose these are gateway1..3:9001; those names only resolve inside compose.
            GATEWAY_UPSTREAMS: cluster.ports.nodes.map((p) => `server 127.0.0.1:${p} max_fails=1 fail_timeout=5s;`).join(' '),
        };
        // The same command as the image's /docker-entrypoint.d/20-envsubst-on-templates.sh.
        const rendered = await run('sh', ['-c', 'envsubst "$(printf \'${%s} \' $(env | cut -d= -f1))" < "$0" > "$1"', path.join(REPO, 'deploy/nginx/nginx.conf'), path.join(dir, 'nginx.conf')], { env });
        assert.equal(rendered.code, 0, rendered.stderr);
        const text = fs.readFileSync(path.join(dir, 'nginx.conf'), 'utf8');
        assert.match(text, /proxy_set_header Upgrade \$http_upgrade;/, "nginx's own variables survive envsubst");
        const check = await run('nginx', ['-t', '-p', dir, '-c', path.join(dir, 'nginx.conf'), '-e', path.join(dir, 'error.log')]);
        assert.equal(check.code, 0, check.stderr);
    });

    it('docker-compose.yml passes `docker compose config` (skipped without a compose client)', async (t) => {
        const file = path.join(REPO, 'docker-compose.yml');
        const text = fs.readFileSync(file, 'utf8');
        assert.match(text, /deploy\/nginx\/nginx\.conf:\/etc\/nginx\/templates\/nginx\.conf\.template/, 'compose uses the one nginx config');
        let res = await run('docker', ['compose', 'version']);
        let cmd = ['docker', ['compose', '-f', file, 'config', '-q']];
        if (res.code !== 0) {
            res = await run('docker-compose', ['version']);
            cmd = ['docker-compose', ['-f', file, 'config', '-q']];
        }
        if (res.code !== 0) {
            t.skip('neither `docker compose` nor `docker-compose` is installed');
            return;
        }
        const check = await run(cmd[0], cmd[1], { cwd: REPO, env: { ...process.env, JWT_SECRET: 'x' } });
        assert.equal(check.code, 0, `${cmd[0]} ${cmd[1].join(' ')}:\n${check.stderr}`);
    });
});

describe('deploy/cluster.sh down', () => {
    it('stops exactly what up started and leaves no stray process', async () => {
        const pids = cluster.livePids();
        assert.ok(pids.size >= 1 + 3 + 2, `redis, 3 nodes, nginx master + workers: ${JSON.stringify([...pids])}`);
        await Promise.all(openClients.splice(0).map((c) => c.close().catch(() => {})));
        const { res, leftovers } = await cluster.stop();
        assert.equal(res.code, 0, res.stderr);
        assert.deepEqual(leftovers, [], 'processes alive after down');
        for (const [pid, expect] of pids) assert.ok(!pidRuns(pid, expect), `pid ${pid} (${expect}) still runs`);
        for (const [file] of cluster.pidFiles()) assert.ok(!fs.existsSync(file), `${file} removed`);
        const status = await cluster.run('status');
        assert.notEqual(status.code, 0, 'status reports the cluster down');
        cluster = null; // nothing left for after()
    });
});
