// deploy/cluster.sh as an operator uses it (issues 13 and 17): `--help` explains every command
// and setting; the settings of the first `up` (API_KEY, JWT_SECRET, any gateway setting) are
// recorded and a node that a later `up` restarts gets them, even from a shell that has none,
// so the backend API answers the same through the load balancer whichever node serves it;
// Redis runs with an append-only file, so history survives a Redis restart; and
// `up --redis-cluster` / `up --redis-sentinel` bring up a 3+3 Redis Cluster or a master, a
// replica and three Sentinels on loopback, which `status` shows. The gateway does not speak
// redis+cluster:// and redis+sentinel:// yet: until its --help names them, those runs use
// NODES=0 (Redis only) and check the Redis side.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { JWT_SECRET, outputDir } from './lib/harness.mjs';
import { connect, token } from './lib/client.mjs';
import { redisCall } from './lib/redis_topology.mjs';
import { CLUSTER_SH, LocalCluster, REPO, freePortRange, pidRuns, waitFor } from './support/cluster.mjs';

const BUILD_DIR = process.env.CLUSTER_BUILD_DIR || path.join(REPO, 'build');
const EPHEMERAL_LOW = Number(fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);

/** LocalCluster for any Redis mode: six Redis ports, NODES may be 0, every pidfile tracked. */
class RunnerCluster extends LocalCluster {
    constructor(opts) {
        super(opts);
        this.unset = [];
    }

    async allocatePorts() {
        const nodePorts = this.nodes > 0 ? await freePortRange(this.nodes) : [];
        // Redis Cluster also listens on port + 10000: keep that below the ephemeral range too,
        // where no outgoing connection can hold it.
        let redis;
        for (let i = 0; i < 100 && !(redis + 10005 < EPHEMERAL_LOW); i++) [redis] = await freePortRange(6);
        assert.ok(redis + 10005 < EPHEMERAL_LOW, 'no Redis ports with a free bus range found');
        const [lb, lbTls] = await freePortRange(2);
        this.ports = { base: nodePorts[0] ?? 9001, redis, lb, lbTls, nodes: nodePorts };
        return this.ports;
    }

    /** The environment without the names in `unset`: a new shell that lacks them. */
    get env() {
        const env = super.env;
        for (const k of this.unset) delete env[k];
        return env;
    }

    pidFiles() {
        const files = [[path.join(this.runDir, 'nginx', 'nginx.pid'), 'nginx']];
        const names = fs.existsSync(this.runDir) ? fs.readdirSync(this.runDir) : [];
        for (const f of names.filter((n) => n.endsWith('.pid'))) {
            const expect = f.startsWith('node') ? 'chat-gateway' : f.startsWith('sentinel') ? 'redis-sentinel' : 'redis-server';
            files.push([path.join(this.runDir, f), expect]);
        }
        return files;
    }

    /** `cluster.sh ...args` with this cluster's environment, bounded; resolves {code, stdout, stderr}. */
    runArgs(args, { timeoutMs = 120000 } = {}) {
        return new Promise((resolve) => {
            const child = spawn('bash', [CLUSTER_SH, ...args], { env: this.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
            let stdout = '';
            let stderr = '';
            child.stdout.on('data', (d) => (stdout += d));
            child.stderr.on('data', (d) => (stderr += d));
            const timer = setTimeout(() => {
                stderr += `\n[test] cluster.sh ${args.join(' ')} killed after ${timeoutMs} ms\n`;
                process.kill(-child.pid, 'SIGKILL');
            }, timeoutMs);
            child.on('close', (code) => {
                clearTimeout(timer);
                fs.appendFileSync(path.join(path.dirname(this.runDir), 'cluster-sh.log'), `\n===== cluster.sh ${args.join(' ')} → ${code}\n${stdout}${stderr}`);
                this.trackPids();
                resolve({ code, stdout, stderr });
            });
        });
    }
}

const clusters = [];
after(async () => {
    for (const c of clusters) {
        const { leftovers } = await c.stop();
        if (leftovers.length) console.error(`# killed leftovers: ${JSON.stringify(leftovers)}`);
    }
});

function newCluster(name, opts) {
    const c = new RunnerCluster({ runDir: path.join(outputDir(), name), ...opts });
    clusters.push(c);
    return c;
}

/** Stops a cluster with `down` and checks nothing it ran is left. */
async function downClean(c) {
    const pids = c.livePids();
    const { res, leftovers } = await c.stop();
    clusters.splice(clusters.indexOf(c), 1);
    assert.equal(res.code, 0, res.stderr);
    assert.deepEqual(leftovers.filter((l) => pids.has(l.pid)), [], 'processes alive after down');
    for (const [pid, expect] of pids) assert.ok(!pidRuns(pid, expect), `pid ${pid} (${expect}) still runs`);
}

/** Runs body(c) and stops c afterwards if body did not (a failed check leaves nothing running). */
async function withCluster(c, body) {
    try {
        await body(c);
    } finally {
        if (clusters.includes(c)) {
            clusters.splice(clusters.indexOf(c), 1);
            await c.stop();
        }
    }
}

function gatewaySpeaks(scheme) {
    return new Promise((resolve) => {
        execFile(path.join(BUILD_DIR, 'chat-gateway'), ['--help'], { timeout: 5000 }, (err, stdout) => resolve(!err && stdout.includes(`${scheme}://`)));
    });
}

function publish(port, room, data, key) {
    return fetch(`http://127.0.0.1:${port}/api/publish`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', ...(key ? { Authorization: `Bearer ${key}` } : {}) },
        body: JSON.stringify({ room, data }),
    });
}

describe('deploy/cluster.sh --help', () => {
    it('prints every command, the Redis modes and the settings, and exits 0', async () => {
        const c = newCluster('help', { nodes: 0 });
        await c.allocatePorts();
        const res = await c.runArgs(['--help']);
        assert.equal(res.code, 0, res.stderr);
        for (const word of ['up [--redis-cluster | --redis-sentinel]', 'down', 'status', 'logs', 'NODES', 'BASE_PORT', 'REDIS_PORT', 'LB_BIND', 'JWT_SECRET', 'DEV_TOKENS', 'API_KEY=', 'redis+cluster://', 'redis+sentinel://', 'appendfsync everysec']) {
            assert.ok(res.stdout.includes(word), `--help mentions ${word}:\n${res.stdout}`);
        }
        const bad = await c.runArgs(['frobnicate']);
        assert.equal(bad.code, 2);
        assert.match(bad.stderr, /--help/);
        clusters.splice(clusters.indexOf(c), 1);
    });
});

describe('settings recorded at the first up', () => {
    const KEY = 'runner-api-key';
    const ROOM = 'runner-room';
    let c;

    it('up with API_KEY says how to call the API; Redis keeps an append-only file', async () => {
        c = newCluster('run', { nodes: 2, env: { JWT_SECRET, API_KEY: KEY, HEARTBEAT: '5', DRAIN_SECONDS: '1', DEV_TOKENS: '0' } });
        const res = await c.up();
        assert.match(res.stdout, /backend +curl -X POST http:\/\/127\.0\.0\.1:\d+\/api\/publish -H "Authorization: Bearer \$API_KEY"/);
        const envFile = path.join(c.runDir, 'cluster.env');
        assert.equal(fs.statSync(envFile).mode & 0o077, 0, 'cluster.env holds secrets: owner-only');
        assert.deepEqual(await redisCall(c.ports.redis, ['CONFIG', 'GET', 'appendonly']), ['appendonly', 'yes']);
        assert.deepEqual(await redisCall(c.ports.redis, ['CONFIG', 'GET', 'appendfsync']), ['appendfsync', 'everysec']);
    });

    it('a node restarted by up from a shell without API_KEY gets the recorded settings', async () => {
        const oldPid = c.nodePid(2);
        process.kill(oldPid, 'SIGTERM');
        await waitFor(() => !pidRuns(oldPid, 'chat-gateway'), { timeoutMs: 10000, what: 'node 2 to stop' });
        c.unset = ['API_KEY', 'JWT_SECRET'];
        const res = await c.run('up', { envOverride: { HEARTBEAT: '9' } });
        c.unset = [];
        assert.equal(res.code, 0, res.stderr);
        assert.notEqual(c.nodePid(2), oldPid, 'node 2 was started again');
        assert.match(res.stdout, /settings +as recorded at the first up: .*API_KEY/);
        assert.match(res.stderr, /runs with HEARTBEAT=5, not 9/);
        // The restarted node has the cluster's API key, JWT secret and heartbeat.
        const [, node2] = c.ports.nodes;
        assert.equal((await publish(node2, ROOM, { n: 0 }, KEY)).status, 200);
        assert.equal((await publish(node2, ROOM, { n: 0 })).status, 401);
        const client = await connect(`ws://127.0.0.1:${node2}/ws`, { token: token({ sub: 'runner-user' }), label: 'node2' });
        assert.equal(client.welcome.heartbeat, 5);
        await client.close();
    });

    it('the backend API answers the same through the load balancer, whichever node serves it', async () => {
        const offsets = [];
        for (let n = 1; n <= 6; n++) {
            const res = await publish(c.ports.lb, ROOM, { n }, KEY);
            const body = await res.text();
            assert.equal(res.status, 200, `publish ${n}: ${res.status} ${body}`);
            offsets.push(JSON.parse(body).offset);
        }
        assert.deepEqual(offsets, offsets.map((_, i) => offsets[0] + i), 'consecutive offsets');
        for (let n = 0; n < 4; n++) assert.equal((await publish(c.ports.lb, ROOM, { n })).status, 401);
    });

    it('history survives a Redis restart (append-only file)', async () => {
        const redisPid = Number(fs.readFileSync(path.join(c.runDir, 'redis.pid'), 'utf8'));
        process.kill(redisPid, 'SIGTERM');
        await waitFor(() => !pidRuns(redisPid, 'redis-server'), { timeoutMs: 10000, what: 'redis to stop' });
        const res = await c.run('up');
        assert.equal(res.code, 0, res.stderr);
        const client = await connect(c.lbUrl, { token: token({ sub: 'history-reader' }), label: 'reader' });
        assert.equal((await client.request({ type: 'join', room: ROOM })).type, 'joined');
        const hist = await client.request({ type: 'history', room: ROOM, limit: 50 });
        await client.close();
        assert.deepEqual(hist.messages.map((m) => m.data.n), [0, 1, 2, 3, 4, 5, 6]);
    });

    it('down stops everything', async () => {
        await downClean(c);
    });
});

describe('Redis topologies', () => {
    it('up --redis-cluster starts 3 masters + 3 replicas on loopback; status shows them', async () => {
        const nodes = (await gatewaySpeaks('redis+cluster')) ? 1 : 0;
        await withCluster(newCluster('redis-cluster', { nodes, env: { JWT_SECRET, DRAIN_SECONDS: '1' } }), async (c) => {
            await c.allocatePorts();
            const up = await c.runArgs(['up', '--redis-cluster']);
            assert.equal(up.code, 0, `${up.stdout}\n${up.stderr}`);
            const p = c.ports.redis;
            assert.match(up.stdout, new RegExp(`REDIS_URL=redis\\+cluster://127\\.0\\.0\\.1:${p},127\\.0\\.0\\.1:${p + 1},127\\.0\\.0\\.1:${p + 2}`));
            for (let port = p; port < p + 6; port++) {
                assert.deepEqual(await redisCall(port, ['CONFIG', 'GET', 'cluster-node-timeout']), ['cluster-node-timeout', '2000']);
                assert.deepEqual(await redisCall(port, ['CONFIG', 'GET', 'appendonly']), ['appendonly', 'yes']);
            }
            const status = await c.runArgs(['status']);
            assert.equal(status.code, 0, status.stdout);
            assert.match(status.stdout, /cluster_state:ok cluster_slots_assigned:16384/);
            const masters = status.stdout.split('\n').filter((l) => /^ +master +127\.0\.0\.1:\d+ +pid \d+ +slots \d+-\d+/.test(l));
            const replicas = status.stdout.split('\n').filter((l) => /^ +replica +127\.0\.0\.1:\d+ +pid \d+ +of 127\.0\.0\.1:\d+/.test(l));
            assert.equal(masters.length, 3, status.stdout);
            assert.equal(replicas.length, 3, status.stdout);
            if (nodes) assert.match(status.stdout, /node1 +up .*readyz 200/);
            await downClean(c);
        });
    });

    it('up --redis-sentinel starts a master, a replica and three Sentinels; status shows the master', async () => {
        const nodes = (await gatewaySpeaks('redis+sentinel')) ? 1 : 0;
        await withCluster(newCluster('redis-sentinel', { nodes, env: { JWT_SECRET, DRAIN_SECONDS: '1' } }), async (c) => {
            await c.allocatePorts();
            const up = await c.runArgs(['up', '--redis-sentinel']);
            assert.equal(up.code, 0, `${up.stdout}\n${up.stderr}`);
            const p = c.ports.redis;
            assert.match(up.stdout, new RegExp(`REDIS_URL=redis\\+sentinel://127\\.0\\.0\\.1:${p + 2},127\\.0\\.0\\.1:${p + 3},127\\.0\\.0\\.1:${p + 4}/mymaster`));
            for (const port of [p, p + 1]) assert.deepEqual(await redisCall(port, ['CONFIG', 'GET', 'appendonly']), ['appendonly', 'yes']);
            const status = await waitFor(
                async () => {
                    const s = await c.runArgs(['status']);
                    return s.code === 0 && /link connected/.test(s.stdout) ? s : null;
                },
                { timeoutMs: 10000, what: 'status to show the replica in sync' },
            );
            assert.match(status.stdout, new RegExp(`master mymaster at 127\\.0\\.0\\.1:${p} \\(3/3 Sentinels agree\\)`));
            assert.match(status.stdout, new RegExp(`data +127\\.0\\.0\\.1:${p + 1} +pid \\d+ +replica of 127\\.0\\.0\\.1:${p}, link connected`));
            assert.equal(status.stdout.split('\n').filter((l) => /^ +sentinel +127\.0\.0\.1:\d+ +pid \d+/.test(l)).length, 3);
            if (nodes) assert.match(status.stdout, /node1 +up .*readyz 200/);
            await downClean(c);
        });
    });
});
