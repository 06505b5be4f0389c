/*
 * cluster — runs deploy/cluster.sh for a test, in the test's own RUN_DIR and on its own ports,
 * so a developer's cluster (.run/, 6390, 9001.., 8080, 8443) is never touched.
 *
 * Invariants:
 *  - every cluster.sh invocation is bounded (a timeout kills its whole process group);
 *  - after `up`, the pids the script recorded (redis, nodes, nginx master and its workers) are
 *    remembered; stop() runs `cluster.sh down`, and anything still alive afterwards — or still
 *    alive when the test process exits, pass or fail — is SIGKILLed, after checking that the
 *    pid still runs the program we started (never a recycled pid);
 *  - ports come from below the kernel's ephemeral range, so they cannot collide with the
 *    OS-assigned ports other test files running in parallel get from freePort().
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { canListen } from '../lib/harness.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(HERE, '..', '..', '..');
export const CLUSTER_SH = path.join(REPO, 'deploy', 'cluster.sh');

/* ---------- ports ---------- */

function ephemeralLow() {
    try {
        return Number(fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || 32768;
    } catch {
        return 32768;
    }
}

const taken = new Set();
/** `count` consecutive free ports on 127.0.0.1 between 20000 and the ephemeral range. */
export async function freePortRange(count) {
    const low = 20000;
    const high = Math.max(low + 1000, ephemeralLow()) - count;
    for (let attempt = 0; attempt < 200; attempt++) {
        const base = low + Math.floor(Math.random() * (high - low));
        const ports = Array.from({ length: count }, (_, i) => base + i);
        if (ports.some((p) => taken.has(p))) continue;
        const free = await Promise.all(ports.map(canListen));
        if (free.every(Boolean)) {
            ports.forEach((p) => taken.add(p));
            return ports;
        }
    }
    throw new Error(`no ${count} consecutive free ports found`);
}

/* ---------- pids ---------- */

function cmdline(pid) {
    try {
        return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
    } catch {
        return null;
    }
}

/** True while pid runs a program whose command line contains `expect`. */
export function pidRuns(pid, expect) {
    const cmd = cmdline(pid);
    if (cmd === null) return false;
    try {
        const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
        if (/\) Z /.test(stat)) return false; // a zombie has exited already
    } catch {
        return false;
    }
    return cmd.includes(expect);
}

function childrenOf(pid) {
    const out = [];
    for (const entry of fs.readdirSync('/proc')) {
        if (!/^\d+$/.test(entry)) continue;
        try {
            const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
            const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
            if (ppid === pid) out.push(Number(entry));
        } catch {
            /* gone */
        }
    }
    return out;
}

const tracked = new Map(); // pid → expected command substring
process.on('exit', () => {
    for (const [pid, expect] of tracked) {
        if (pidRuns(pid, expect)) {
            try {
                process.kill(pid, 'SIGKILL');
            } catch {
                /* gone */
            }
        }
    }
});

/* ---------- the runner ---------- */

/**
 * A cluster run by deploy/cluster.sh with a private RUN_DIR and private ports.
 * opts: runDir (required), nodes (3), env (extra environment, e.g. JWT_SECRET, HEARTBEAT).
 */
export class LocalCluster {
    constructor({ runDir, nodes = 3, env = {} }) {
        this.runDir = runDir;
        this.nodes = nodes;
        this.extraEnv = env;
        this.ports = null;
    }

    async allocatePorts() {
        const [base] = await freePortRange(this.nodes);
        const [redis, lb, lbTls] = await freePortRange(3);
        this.ports = { base, redis, lb, lbTls, nodes: Array.from({ length: this.nodes }, (_, i) => base + i) };
        return this.ports;
    }

    get env() {
        const p = this.ports;
        return {
            ...process.env,
            RUN_DIR: this.runDir,
            NODES: String(this.nodes),
            BASE_PORT: String(p.base),
            REDIS_PORT: String(p.redis),
            LB_PORT: String(p.lb),
            LB_TLS_PORT: String(p.lbTls),
            ...this.extraEnv,
        };
    }

    get lbUrl() {
        return `ws://127.0.0.1:${this.ports.lb}/ws`;
    }

    get lbTlsUrl() {
        return `wss://127.0.0.1:${this.ports.lbTls}/ws`;
    }

    get httpUrl() {
        return `http://127.0.0.1:${this.ports.lb}`;
    }

    /**
     * Runs `cluster.sh <command>` (bounded by timeoutMs) with this cluster's environment plus
     * envOverride; resolves {code, stdout, stderr}. Output is also appended to RUN_DIR/../cluster-sh.log.
     */
    run(command, { timeoutMs = 120000, envOverride = {} } = {}) {
        fs.mkdirSync(path.dirname(this.runDir), { recursive: true });
        const logFile = path.join(path.dirname(this.runDir), 'cluster-sh.log');
        return new Promise((resolve) => {
            const child = spawn('bash', [CLUSTER_SH, command], {
                env: { ...this.env, ...envOverride },
                stdio: ['ignore', 'pipe', 'pipe'],
                detached: true, // own process group: a timeout kills the script and its children
            });
            let stdout = '';
            let stderr = '';
            child.stdout.on('data', (d) => (stdout += d));
            child.stderr.on('data', (d) => (stderr += d));
            const timer = setTimeout(() => {
                stderr += `\n[test] cluster.sh ${command} did not finish within ${timeoutMs} ms: killed\n`;
                try {
                    process.kill(-child.pid, 'SIGKILL');
                } catch {
                    /* gone */
                }
            }, timeoutMs);
            child.on('close', (code, signal) => {
                clearTimeout(timer);
                fs.appendFileSync(
                    logFile,
                    `\n===== cluster.sh ${command} → code ${code} signal ${signal}\n--- stdout\n${stdout}--- stderr\n${stderr}`,
                );
                resolve({ code, signal, stdout, stderr });
            });
        });
    }

    /** `up`, then remembers every pid it started. Throws with the script's output on failure. */
    async up(opts) {
        if (!this.ports) await this.allocatePorts();
        const res = await this.run('up', { timeoutMs: 200000, ...opts });
        this.trackPids();
        if (res.code !== 0) {
            throw new Error(`cluster.sh up failed (code ${res.code}):\n${res.stdout}\n${res.stderr}`);
        }
        return res;
    }

    pidFiles() {
        const files = [['redis.pid', 'redis-server'], ['nginx/nginx.pid', 'nginx']];
        for (let i = 1; i <= this.nodes; i++) files.push([`node${i}.pid`, 'chat-gateway']);
        return files.map(([f, expect]) => [path.join(this.runDir, f), expect]);
    }

    /** pid → expected command of everything the cluster runs now (nginx workers included). */
    livePids() {
        const out = new Map();
        for (const [file, expect] of this.pidFiles()) {
            let pid;
            try {
                pid = Number(fs.readFileSync(file, 'utf8').trim());
            } catch {
                continue;
            }
            if (!pid || !pidRuns(pid, expect)) continue;
            out.set(pid, expect);
            if (expect === 'nginx') for (const w of childrenOf(pid)) if (pidRuns(w, 'nginx')) out.set(w, 'nginx');
        }
        return out;
    }

    trackPids() {
        for (const [pid, expect] of this.livePids()) tracked.set(pid, expect);
    }

    /** Node i's pid (1-based), from its pidfile. */
    nodePid(i) {
        return Number(fs.readFileSync(path.join(this.runDir, `node${i}.pid`), 'utf8').trim());
    }

    /**
     * `down`, then SIGKILLs whatever it left behind. Resolves {res, leftovers}: leftovers lists
     * the pids that were still alive after `down` (they are killed anyway).
     */
    async stop() {
        this.trackPids();
        const before = new Map(tracked);
        const res = await this.run('down', { timeoutMs: 60000 });
        const leftovers = [];
        for (const [pid, expect] of before) {
            if (pidRuns(pid, expect)) {
                leftovers.push({ pid, expect, cmd: cmdline(pid) });
                try {
                    process.kill(pid, 'SIGKILL');
                } catch {
                    /* gone */
                }
            }
            tracked.delete(pid);
        }
        return { res, leftovers, stopped: [...before.keys()] };
    }
}

/** Resolves once fn() returns a truthy value (polled every intervalMs), or rejects after timeoutMs. */
export async function waitFor(fn, { timeoutMs = 10000, intervalMs = 50, what = 'condition' } = {}) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
        const v = await fn();
        if (v) return v;
        if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
        await new Promise((r) => setTimeout(r, intervalMs));
    }
}
