/*
 * redis_topology — real Redis Cluster and Sentinel topologies for the failover and resharding
 * tests: redis-server / redis-sentinel processes on free 127.0.0.1 ports, started through
 * harness.mjs's startRedis(), so every process is in its registry (stopped by stopAll(),
 * SIGKILLed when the test process exits, reported if it dies on its own).
 *
 *   startRedisCluster({masters, replicas, nodeTimeoutMs}) → {url, seeds, nodes, killMaster(),
 *       waitForFailover(), restartNode(), reshardSlot(), topology(), call(), stop()}
 *   startSentinel({replicas, sentinels}) → {url, master, killMaster(), waitForPromotion(),
 *       restartNode(), call(), stop()}
 *
 * Invariants: every wait is bounded and fails with what it last saw; a node killed on purpose
 * is never reported as a crash; nothing here knows the gateway or its protocol.
 *
 * Redis is asked with a tiny RESP2 client (redisCall) rather than redis-cli so that replies keep
 * their structure (CLUSTER SHARDS-like arrays, errors as exceptions). The cluster is formed with
 * `redis-cli --cluster create`, the tool operators use; a slot is moved by hand with CLUSTER
 * SETSLOT IMPORTING/MIGRATING + MIGRATE + SETSLOT NODE, the protocol redis-cli's reshard runs,
 * so a test can publish between the batches and see ASK redirections.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { canListen, freePort, outputDir, startRedis } from './harness.mjs';
import { pollUntil } from './proc.mjs';

const REDIS_CLI = process.env.REDIS_CLI_BIN || 'redis-cli';
const POLL_MS = 100;
export const SLOTS = 16384;

/* ---------- RESP2 client ---------- */

export class RedisError extends Error {}

/** Parses one RESP2 reply from buf at pos: {value, pos} or null when buf is incomplete. */
function parseReply(buf, pos) {
    const eol = buf.indexOf('\r\n', pos);
    if (eol < 0) return null;
    const type = String.fromCharCode(buf[pos]);
    const line = buf.toString('utf8', pos + 1, eol);
    const next = eol + 2;
    if (type === '+') return { value: line, pos: next };
    if (type === '-') return { value: new RedisError(line), pos: next };
    if (type === ':') return { value: Number(line), pos: next };
    if (type === '$') {
        const len = Number(line);
        if (len < 0) return { value: null, pos: next };
        if (buf.length < next + len + 2) return null;
        return { value: buf.toString('utf8', next, next + len), pos: next + len + 2 };
    }
    if (type === '*') {
        const count = Number(line);
        if (count < 0) return { value: null, pos: next };
        const items = [];
        let at = next;
        for (let i = 0; i < count; i++) {
            const item = parseReply(buf, at);
            if (!item) return null;
            items.push(item.value);
            at = item.pos;
        }
        return { value: items, pos: at };
    }
    throw new Error(`RESP: unexpected reply type ${JSON.stringify(type)}`);
}

/**
 * Sends one command to 127.0.0.1:port and resolves with its parsed reply (strings, numbers,
 * arrays, null); a Redis error reply rejects with a RedisError. Bounded by timeoutMs.
 */
export function redisCall(port, args, { timeoutMs = 3000 } = {}) {
    return new Promise((resolve, reject) => {
        const sock = net.connect(port, '127.0.0.1');
        let buf = Buffer.alloc(0);
        const finish = (err, value) => {
            clearTimeout(timer);
            sock.destroy();
            if (err) reject(err);
            else resolve(value);
        };
        const timer = setTimeout(() => finish(new Error(`redis ${args[0]} on port ${port} timed out after ${timeoutMs} ms`)), timeoutMs);
        sock.on('data', (d) => {
            buf = Buffer.concat([buf, d]);
            let reply;
            try {
                reply = parseReply(buf, 0);
            } catch (err) {
                finish(err);
                return;
            }
            if (!reply) return;
            if (reply.value instanceof RedisError) finish(reply.value);
            else finish(null, reply.value);
        });
        sock.on('error', (err) => finish(err));
        sock.on('close', () => finish(new Error(`redis on port ${port} closed the connection before replying to ${args[0]}`)));
        const parts = args.map((a) => Buffer.from(String(a)));
        sock.write(Buffer.concat([Buffer.from(`*${parts.length}\r\n`), ...parts.flatMap((p) => [Buffer.from(`$${p.length}\r\n`), p, Buffer.from('\r\n')])]));
    });
}

/** INFO <section> as an object of field → string value. */
export async function redisInfo(port, section) {
    const text = await redisCall(port, ['INFO', section]);
    const out = {};
    for (const line of text.split('\r\n')) {
        const i = line.indexOf(':');
        if (i > 0 && !line.startsWith('#')) out[line.slice(0, i)] = line.slice(i + 1);
    }
    return out;
}

/** True when the master on port has at least `count` replicas and all of them are in sync. */
async function replicasOnline(port, count) {
    const info = await redisInfo(port, 'replication');
    if (info.role !== 'master') return true;
    const links = Object.keys(info).filter((k) => /^slave\d+$/.test(k));
    return links.length >= count && links.every((k) => info[k].includes('state=online'));
}

/* Replicas sync at once instead of after the 5 s diskless-sync delay, so fixtures are ready fast. */
const FAST_SYNC = ['--repl-diskless-sync-delay', '0'];

/** Calls fn until it returns a truthy value (resolved with it) or timeoutMs passes. */
function waitUntil(fn, { timeoutMs, what }) {
    return pollUntil(fn, { timeoutMs, what, intervalMs: POLL_MS });
}

/* ---------- slots ---------- */

/** CRC16/XMODEM, the checksum Redis Cluster maps keys with. */
function crc16(bytes) {
    let crc = 0;
    for (const b of bytes) {
        crc ^= b << 8;
        for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    }
    return crc;
}

/** The cluster slot of a key, honouring a non-empty {hash tag} as Redis does. */
export function keySlot(key) {
    const open = key.indexOf('{');
    if (open >= 0) {
        const close = key.indexOf('}', open + 1);
        if (close > open + 1) key = key.slice(open + 1, close);
    }
    return crc16(Buffer.from(key, 'utf8')) % SLOTS;
}

/* ---------- Redis Cluster ---------- */

/** CLUSTER NODES as [{id, port, role, masterId, failed, connected, slots: [[from, to], ...]}]. */
function parseClusterNodes(text) {
    return text
        .trim()
        .split('\n')
        .map((line) => {
            const f = line.trim().split(' ');
            const flags = f[2].split(',');
            const slots = f
                .slice(8)
                .filter((s) => !s.startsWith('['))
                .map((s) => {
                    const [a, b] = s.split('-').map(Number);
                    return [a, b ?? a];
                });
            return {
                id: f[0],
                port: Number(f[1].split('@')[0].split(':').pop()),
                role: flags.includes('master') ? 'master' : 'replica',
                masterId: f[3] === '-' ? null : f[3],
                failed: flags.includes('fail') || flags.includes('fail?') || flags.includes('noaddr'),
                connected: f[7] === 'connected',
                myself: flags.includes('myself'),
                slots,
            };
        });
}

const ownsSlot = (node, slot) => node.slots.some(([a, b]) => slot >= a && slot <= b);
const slotCount = (node) => node.slots.reduce((n, [a, b]) => n + b - a + 1, 0);

function runRedisCli(args, { timeoutMs = 30000 } = {}) {
    return new Promise((resolve, reject) => {
        const logFile = path.join(outputDir(), 'redis-cli.log');
        fs.appendFileSync(logFile, `# ${new Date().toISOString()} ${REDIS_CLI} ${args.join(' ')}\n`);
        const child = spawn(REDIS_CLI, args, { stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        child.stdout.on('data', (d) => (out += d));
        child.stderr.on('data', (d) => (out += d));
        const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
        child.on('error', (err) => {
            clearTimeout(timer);
            reject(err);
        });
        child.on('close', (code, signal) => {
            clearTimeout(timer);
            fs.appendFileSync(logFile, out);
            if (code === 0) resolve(out);
            else reject(new Error(`${REDIS_CLI} ${args.join(' ')} failed (code ${code} signal ${signal}):\n${out}`));
        });
    });
}

/* A cluster node also listens on port + 10000 (the cluster bus). That port must be free too,
 * and below the kernel's ephemeral range, where any outgoing connection may hold it. */
const BUS_OFFSET = 10000;
const EPHEMERAL_LOW = (() => {
    try {
        return Number(fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || 32768;
    } catch {
        return 32768;
    }
})();

/** A free port whose bus port is free and below the ephemeral range. */
async function clusterPort() {
    for (let i = 0; i < 500; i++) {
        const port = await freePort();
        if (port + BUS_OFFSET < EPHEMERAL_LOW && (await canListen(port + BUS_OFFSET))) return port;
    }
    throw new Error('no port with a free cluster bus port found');
}

/** Starts one cluster node; a port lost to a race (port or bus port) is retried with another. */
async function startClusterNode(dir, args) {
    for (let attempt = 1; ; attempt++) {
        try {
            return await startRedis({ port: await clusterPort(), label: 'redis-cluster', args: ['--dir', dir, ...args] });
        } catch (err) {
            if (attempt >= 3 || !/Address already in use/.test(err.message)) throw err;
        }
    }
}

/**
 * A running Redis Cluster (see startRedisCluster). `nodes` is the last snapshot of CLUSTER
 * NODES ({id, port, role, masterId, failed, slots, pid}); refresh() renews it.
 */
class RedisClusterFixture {
    constructor(servers) {
        this.servers = servers; // port → startRedis handle (.killed once killed on purpose)
        this.nodes = [];
        this.seedList = []; // the masters at creation, set by startRedisCluster
        this.lastKilled = null;
    }

    call(port, ...cmd) {
        return redisCall(port, cmd);
    }

    live() {
        return [...this.servers.entries()].filter(([, s]) => !s.killed).map(([p]) => p);
    }

    async topology(port = this.live()[0]) {
        return parseClusterNodes(await this.call(port, 'CLUSTER', 'NODES'));
    }

    /** True when every live node reports cluster_state:ok and a view where each slot has a live master. */
    async healthy() {
        for (const port of this.live()) {
            if (!/cluster_state:ok/.test(await this.call(port, 'CLUSTER', 'INFO'))) return false;
            const view = await this.topology(port);
            const served = view.filter((n) => n.role === 'master' && !n.failed).reduce((sum, n) => sum + slotCount(n), 0);
            if (served !== SLOTS) return false;
        }
        return true;
    }

    /** True when every live master's replicas are in sync. */
    async replicasInSync() {
        for (const port of this.live()) if (!(await replicasOnline(port, 0))) return false;
        return true;
    }

    /** Refreshes and returns `nodes` from a live node's CLUSTER NODES. */
    async refresh() {
        const view = await this.topology();
        this.nodes = view.map((n) => ({ ...n, pid: this.servers.get(n.port)?.pid }));
        return this.nodes;
    }

    get masters() {
        return this.nodes.filter((n) => n.role === 'master');
    }

    /** Seed addresses (the masters at creation) and the URL the gateway takes. */
    get seeds() {
        return this.seedList;
    }

    get url() {
        return `redis+cluster://${this.seedList.join(',')}`;
    }

    /** The live master that owns slot now. */
    async ownerOf(slot) {
        const owner = (await this.topology()).find((n) => n.role === 'master' && !n.failed && ownsSlot(n, slot));
        if (!owner) throw new Error(`no live master owns slot ${slot}`);
        return owner;
    }

    /** SIGKILLs the master owning `slotOrPort` (a slot, 0..16383, or a node's port). */
    async killMaster(slotOrPort) {
        const view = await this.topology();
        const victim =
            slotOrPort >= SLOTS
                ? view.find((n) => n.port === slotOrPort && n.role === 'master')
                : view.find((n) => n.role === 'master' && !n.failed && ownsSlot(n, slotOrPort));
        if (!victim) throw new Error(`killMaster(${slotOrPort}): no such live master`);
        const server = this.servers.get(victim.port);
        server.killed = true;
        await server.kill('SIGKILL');
        this.lastKilled = { ...victim, killedAt: Date.now() };
        return this.lastKilled;
    }

    /**
     * Waits until a replica of the last killed master has taken over its slots and every live
     * node is healthy again; resolves {master, ms} (ms since the kill).
     */
    async waitForFailover({ timeoutMs = 20000 } = {}) {
        const killed = this.lastKilled;
        if (!killed) throw new Error('waitForFailover: no master was killed');
        const probe = killed.slots[0][0];
        const master = await waitUntil(
            async () => {
                if (!(await this.healthy())) return false;
                const owner = (await this.topology()).find((n) => n.role === 'master' && !n.failed && ownsSlot(n, probe));
                return owner && owner.port !== killed.port ? owner : false;
            },
            { timeoutMs, what: `a replica of 127.0.0.1:${killed.port} promoted` },
        );
        await this.refresh();
        return { master, ms: Date.now() - killed.killedAt };
    }

    /**
     * Starts a killed node again on its port with its nodes.conf. Back means: every live node
     * sees it alive in the role it sees itself in (a failed-over master learns it is a replica
     * now), and every replica is in sync again.
     */
    async restartNode(port) {
        const server = this.servers.get(port);
        if (!server) throw new Error(`restartNode: ${port} is not a node of this cluster`);
        await server.restart();
        server.killed = false;
        const converged = async () => {
            if (!(await this.healthy())) return false;
            const self = (await this.topology(port)).find((n) => n.myself);
            for (const p of this.live()) {
                const seen = (await this.topology(p)).find((n) => n.port === port);
                if (!seen || seen.failed || seen.role !== self.role) return false;
            }
            return this.replicasInSync();
        };
        await waitUntil(converged, { timeoutMs: 15000, what: `127.0.0.1:${port} back in the cluster` });
        return this.refresh();
    }

    /**
     * Moves `slot` (and its keys) to the master `to` (node id or port), as redis-cli's reshard
     * does: IMPORTING on the target, MIGRATING on the source, MIGRATE in batches of `batch`
     * keys (awaiting betweenBatches({moved}) after each one, so a test can publish meanwhile
     * and meet ASK), then SETSLOT NODE on target, source and every other master. Resolves
     * {from, to, moved} once every live node sees the new owner.
     */
    async reshardSlot(slot, to, { batch = 100, betweenBatches, timeoutMs = 30000 } = {}) {
        const deadline = Date.now() + timeoutMs;
        const view = await this.topology();
        const src = view.find((n) => n.role === 'master' && !n.failed && ownsSlot(n, slot));
        const dst = view.find((n) => n.role === 'master' && !n.failed && (n.id === to || n.port === to));
        if (!src || !dst) throw new Error(`reshardSlot(${slot}, ${to}): source or target master not found`);
        if (src.id === dst.id) throw new Error(`reshardSlot: slot ${slot} is already on ${to}`);
        await this.call(dst.port, 'CLUSTER', 'SETSLOT', slot, 'IMPORTING', src.id);
        await this.call(src.port, 'CLUSTER', 'SETSLOT', slot, 'MIGRATING', dst.id);
        let moved = 0;
        for (;;) {
            if (Date.now() > deadline) throw new Error(`reshardSlot(${slot}): keys still migrating after ${timeoutMs} ms`);
            const keys = await this.call(src.port, 'CLUSTER', 'GETKEYSINSLOT', slot, batch);
            if (keys.length === 0) break;
            await this.call(src.port, 'MIGRATE', '127.0.0.1', dst.port, '', 0, 5000, 'KEYS', ...keys);
            moved += keys.length;
            if (betweenBatches) await betweenBatches({ moved });
        }
        const others = view.filter((n) => n.role === 'master' && !n.failed && n.id !== src.id && n.id !== dst.id);
        for (const n of [dst, src, ...others]) await this.call(n.port, 'CLUSTER', 'SETSLOT', slot, 'NODE', dst.id);
        await waitUntil(
            async () => {
                for (const port of this.live()) {
                    const owner = (await this.topology(port)).find((n) => n.role === 'master' && ownsSlot(n, slot));
                    if (!owner || owner.id !== dst.id) return false;
                }
                return true;
            },
            { timeoutMs: Math.max(1000, deadline - Date.now()), what: `every node to see slot ${slot} on 127.0.0.1:${dst.port}` },
        );
        await this.refresh();
        return { from: src, to: dst, moved };
    }

    stop() {
        return Promise.all([...this.servers.values()].map((s) => s.stop()));
    }
}

/**
 * Starts masters × (1 + replicas) cluster-enabled redis-servers, forms a cluster with
 * `redis-cli --cluster create`, and waits until every node sees all 16384 slots served and
 * every replica is in sync. `args` are extra redis-server arguments for every node (e.g.
 * ['--appendonly', 'yes']).
 */
export async function startRedisCluster({ masters = 3, replicas = 1, nodeTimeoutMs = 2000, args = [] } = {}) {
    const base = path.join(outputDir(), 'redis-cluster');
    const started = await Promise.all(
        Array.from({ length: masters * (1 + replicas) }, (_, i) => {
            const dir = path.join(base, `node${i + 1}`);
            fs.rmSync(dir, { recursive: true, force: true });
            fs.mkdirSync(dir, { recursive: true });
            return startClusterNode(dir, [
                '--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', nodeTimeoutMs, ...FAST_SYNC, ...args,
            ]);
        }),
    );
    const addrs = started.map((s) => `127.0.0.1:${s.port}`);
    await runRedisCli(['--cluster', 'create', ...addrs, '--cluster-replicas', String(replicas), '--cluster-yes']);
    const cluster = new RedisClusterFixture(new Map(started.map((s) => [s.port, s])));
    await waitUntil(() => cluster.healthy(), { timeoutMs: 20000, what: `a ${masters}-master cluster with every slot served` });
    // A failover can only keep data a replica has: wait until every replica's first sync is done.
    await waitUntil(() => cluster.replicasInSync(), { timeoutMs: 15000, what: 'every replica in sync with its master' });
    await cluster.refresh();
    cluster.seedList = cluster.masters.map((n) => `127.0.0.1:${n.port}`);
    return cluster;
}

/* ---------- Sentinel ---------- */

/** A running Sentinel setup (see startSentinel). */
class SentinelFixture {
    constructor({ masterName, data, sentinels, args }) {
        this.masterName = masterName;
        this.data = data; // port → startRedis handle of the data nodes (.killed once killed on purpose)
        this.sentinelHandles = sentinels;
        this.args = args;
        const first = [...data.values()][0];
        this.master = { port: first.port, pid: first.pid };
        this.lastKilled = null;
    }

    call(port, ...cmd) {
        return redisCall(port, cmd);
    }

    get url() {
        return `redis+sentinel://${this.sentinels.map((s) => `127.0.0.1:${s.port}`).join(',')}/${this.masterName}`;
    }

    get sentinels() {
        return this.sentinelHandles.map((s) => ({ port: s.port, pid: s.pid }));
    }

    /** The live data nodes other than the master. */
    get replicas() {
        return [...this.data.entries()].filter(([p, s]) => p !== this.master.port && !s.killed).map(([p, s]) => ({ port: p, pid: s.pid }));
    }

    /** SENTINEL MASTER <name> of the Sentinel on port, as an object. */
    async sentinelView(port) {
        const flat = await this.call(port, 'SENTINEL', 'MASTER', this.masterName);
        const m = {};
        for (let i = 0; i < flat.length; i += 2) m[flat[i]] = flat[i + 1];
        return m;
    }

    /** True when every Sentinel knows `replicas` replicas and every other Sentinel. */
    async acquainted(replicas) {
        for (const s of this.sentinelHandles) {
            const m = await this.sentinelView(s.port);
            if (Number(m['num-slaves']) !== replicas || Number(m['num-other-sentinels']) !== this.sentinelHandles.length - 1) return false;
        }
        return true;
    }

    /** The master port every Sentinel agrees on and that ROLE confirms; null otherwise. */
    async agreedMaster() {
        const answers = await Promise.all(
            this.sentinelHandles.map((s) => this.call(s.port, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', this.masterName).catch(() => null)),
        );
        const ports = new Set(answers.map((a) => (a ? Number(a[1]) : null)));
        if (ports.size !== 1 || ports.has(null)) return null;
        const [port] = ports;
        const role = await this.call(port, 'ROLE').catch(() => null);
        return role && role[0] === 'master' ? port : null;
    }

    /** SIGKILLs the current master; resolves {port, killedAt}. */
    async killMaster() {
        const port = this.master.port;
        const server = this.data.get(port);
        server.killed = true;
        await server.kill('SIGKILL');
        this.lastKilled = { port, killedAt: Date.now() };
        return this.lastKilled;
    }

    /** Waits until every Sentinel names a new master that ROLE confirms; resolves {master, ms}. */
    async waitForPromotion({ timeoutMs = 20000 } = {}) {
        const killed = this.lastKilled;
        if (!killed) throw new Error('waitForPromotion: no master was killed');
        const port = await waitUntil(
            async () => {
                const p = await this.agreedMaster();
                return p && p !== killed.port ? p : null;
            },
            { timeoutMs, what: `the Sentinels to promote a replica of 127.0.0.1:${killed.port}` },
        );
        this.master = { port, pid: this.data.get(port).pid };
        return { master: this.master, ms: Date.now() - killed.killedAt };
    }

    /**
     * Starts a killed data node again on its port as a replica of the current master, as the
     * Sentinels would reconfigure it (they do so only at their next 10 s INFO round).
     */
    async restartNode(port) {
        if (!this.data.get(port)?.killed) throw new Error(`restartNode: ${port} is not a killed data node of this setup`);
        const master = this.master.port;
        this.data.set(port, await startRedis({ port, label: 'sentinel-data', args: ['--replicaof', '127.0.0.1', master, ...FAST_SYNC, ...this.args] }));
        await waitUntil(() => replicasOnline(master, this.replicas.length), {
            timeoutMs: 10000,
            what: `127.0.0.1:${port} in sync with 127.0.0.1:${master}`,
        });
    }

    async stop() {
        await Promise.all(this.sentinelHandles.map((s) => s.stop()));
        await Promise.all([...this.data.values()].map((s) => s.stop()));
    }
}

/** Writes a Sentinel config file (Sentinel rewrites it, so one per Sentinel) and starts it. */
function startOneSentinel(i, { masterName, masterPort, quorum, downAfterMs, failoverTimeoutMs }) {
    const conf = path.join(outputDir(), `sentinel-${i + 1}.conf`);
    fs.writeFileSync(
        conf,
        [
            `sentinel monitor ${masterName} 127.0.0.1 ${masterPort} ${quorum}`,
            `sentinel down-after-milliseconds ${masterName} ${downAfterMs}`,
            `sentinel failover-timeout ${masterName} ${failoverTimeoutMs}`,
            `sentinel parallel-syncs ${masterName} 1`,
            '',
        ].join('\n'),
    );
    return startRedis({ label: 'sentinel', configFile: conf, args: ['--sentinel'] });
}

/**
 * Starts a master, `replicas` replicas and `sentinels` Sentinels monitoring them as
 * `masterName` (quorum 2, or 1 with fewer than 3 Sentinels), and waits until every Sentinel
 * knows every replica and every other Sentinel. `args` go to the data nodes. A down-after
 * below 2 s makes Sentinels flap: their PING period is 1 s.
 */
export async function startSentinel({
    replicas = 1,
    sentinels = 3,
    masterName = 'mymaster',
    downAfterMs = 2000,
    failoverTimeoutMs = 5000,
    args = [],
} = {}) {
    const first = await startRedis({ label: 'sentinel-data', args: [...FAST_SYNC, ...args] });
    const reps = await Promise.all(
        Array.from({ length: replicas }, () =>
            startRedis({ label: 'sentinel-data', args: ['--replicaof', '127.0.0.1', first.port, ...FAST_SYNC, ...args] }),
        ),
    );
    await waitUntil(() => replicasOnline(first.port, replicas), {
        timeoutMs: 10000,
        what: `${replicas} replica(s) in sync with 127.0.0.1:${first.port}`,
    });
    const quorum = sentinels >= 3 ? 2 : 1;
    const handles = await Promise.all(
        Array.from({ length: sentinels }, (_, i) => startOneSentinel(i, { masterName, masterPort: first.port, quorum, downAfterMs, failoverTimeoutMs })),
    );
    const data = new Map([first, ...reps].map((s) => [s.port, s]));
    const setup = new SentinelFixture({ masterName, data, sentinels: handles, args });
    await waitUntil(() => setup.acquainted(replicas), {
        timeoutMs: 20000,
        what: `every Sentinel to know ${replicas} replica(s) and ${sentinels - 1} other Sentinel(s)`,
    });
    return setup;
}
