/*
 * harness — real processes for the integration tests: a redis-server on a free port and
 * chat-gateway processes pointed at it, each with its output captured in a log file under
 * tests/output/<test>/.
 *
 * Invariants:
 *  - every process started here is in `registry` until it has exited; it is stopped by
 *    stopAll() (call it from an after() hook) and, as a last resort, SIGKILLed synchronously
 *    from process.on('exit') and on SIGINT/SIGTERM of the test process, pass or fail;
 *  - every wait is bounded (readiness, PING, stop), and a process that exits while we wait for
 *    it, or at any time we did not ask it to, is reported with the tail of its log;
 *  - stopAll() fails (throws) when a gateway died unexpectedly or wrote a sanitizer report,
 *    so such a test file never passes silently.
 *
 * Only 127.0.0.1 is used. Nothing here knows the wire protocol; client.mjs does.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const TESTS_DIR = path.resolve(HERE, '..', '..');
export const GATEWAY_BIN = process.env.GATEWAY_BIN || '/work/main/build/chat-gateway';
export const REDIS_BIN = process.env.REDIS_BIN || 'redis-server';
export const JWT_SECRET = 'test-secret';
export const HEARTBEAT_S = 5;
const READY_TIMEOUT_MS = Number(process.env.GATEWAY_READY_TIMEOUT_MS || 10000);
const STOP_GRACE_MS = 5000;
const POLL_MS = 50;

/* ---------- process registry and last-resort cleanup ---------- */

const registry = new Set(); // entries not yet exited
const allEntries = []; // every entry ever started (for sanitizer scans)
const problems = []; // human-readable failure reports (unexpected exits, ...)
const cleanupHooks = []; // run by stopAll() before processes are stopped (e.g. close clients)

function killAllSync() {
    for (const entry of registry) {
        try {
            entry.child.kill('SIGKILL');
        } catch {
            /* already gone */
        }
    }
}
process.on('exit', killAllSync);
for (const [sig, num] of [['SIGINT', 2], ['SIGTERM', 15]]) {
    process.once(sig, () => {
        killAllSync();
        process.exit(128 + num);
    });
}

/** Registers fn (may be async) to run at the start of stopAll(), before processes stop. */
export function onCleanup(fn) {
    cleanupHooks.push(fn);
}

/** Text describing every process that died unexpectedly so far ('' when none). */
export function problemsReport() {
    return problems.length ? `\n${problems.join('\n')}` : '';
}

/* ---------- output directory ---------- */

/** The name of the running test file, e.g. "cross_node" for cross_node.test.mjs. */
export function testName() {
    if (process.env.TEST_NAME) return process.env.TEST_NAME;
    const base = path.basename(process.argv[1] || 'adhoc');
    return base.replace(/\.test\.mjs$/, '').replace(/\.m?js$/, '') || 'adhoc';
}

let outputDirCache = null;
/** tests/output/<test>/, emptied on first use in this process, then reused. */
export function outputDir() {
    if (!outputDirCache) {
        outputDirCache = path.join(TESTS_DIR, 'output', testName());
        fs.rmSync(outputDirCache, { recursive: true, force: true });
        fs.mkdirSync(outputDirCache, { recursive: true });
    }
    return outputDirCache;
}

export function logTail(file, lines = 40) {
    try {
        const text = fs.readFileSync(file, 'utf8');
        return text.split('\n').slice(-lines - 1).join('\n');
    } catch (err) {
        return `(no log: ${err.message})`;
    }
}

/* ---------- ports and small network helpers ---------- */

const portsHandedOut = new Set();
/** A TCP port on 127.0.0.1 that nothing listens on right now (never the same one twice). */
/** Whether a server can listen on 127.0.0.1:port right now (it is closed again at once). */
export function canListen(port) {
    return new Promise((resolve) => {
        const srv = net.createServer();
        srv.unref();
        srv.once('error', () => resolve(false));
        srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
    });
}

export async function freePort() {
    // Ports come from below the kernel's ephemeral range (32768-60999 here): a port from that
    // range (what listen(0) hands out) can be taken as the source port of some other test's
    // outgoing connection before our server binds it. Random start, so parallel test files
    // rarely probe the same ports; a port is handed out once per test process.
    const LOW = 20000;
    const HIGH = 32000;
    let port = LOW + Math.floor(Math.random() * (HIGH - LOW));
    for (let attempt = 0; attempt < 200; attempt++, port = port + 1 >= HIGH ? LOW : port + 1) {
        if (portsHandedOut.has(port)) continue;
        if (await canListen(port)) {
            portsHandedOut.add(port);
            return port;
        }
    }
    throw new Error('freePort: could not find an unused port');
}

/** GET http://127.0.0.1:port/path → {status, headers, body} (body as text); bounded. */
export function httpGet(port, urlPath, { headers = {}, timeoutMs = 2000 } = {}) {
    return new Promise((resolve, reject) => {
        const req = http.get(
            { host: '127.0.0.1', port, path: urlPath, headers, timeout: timeoutMs, agent: false },
            (res) => {
                const chunks = [];
                res.on('data', (c) => chunks.push(c));
                res.on('end', () =>
                    resolve({
                        status: res.statusCode,
                        headers: res.headers,
                        body: Buffer.concat(chunks).toString('utf8'),
                    }),
                );
                res.on('error', reject);
            },
        );
        req.on('timeout', () => req.destroy(new Error(`GET ${urlPath} timed out after ${timeoutMs} ms`)));
        req.on('error', reject);
    });
}

/** Resolves true once redis on port answers +PONG to a RESP PING; one attempt, bounded. */
function redisPingOnce(port, timeoutMs = 1000) {
    return new Promise((resolve) => {
        const sock = net.connect({ host: '127.0.0.1', port });
        let buf = '';
        const done = (ok) => {
            clearTimeout(timer);
            sock.destroy();
            resolve(ok);
        };
        const timer = setTimeout(() => done(false), timeoutMs);
        sock.on('connect', () => sock.write('PING\r\n'));
        sock.on('data', (d) => {
            buf += d.toString('latin1');
            if (buf.includes('\r\n')) done(buf.startsWith('+PONG'));
        });
        sock.on('error', () => done(false));
        sock.on('close', () => done(false));
    });
}

/* ---------- spawning ---------- */

function spawnLogged({ kind, name, cmd, args, env, logFile }) {
    fs.appendFileSync(logFile, `# harness: ${new Date().toISOString()} ${cmd} ${args.map((a) => (a === '' ? "''" : a)).join(' ')}\n`);
    const fd = fs.openSync(logFile, 'a');
    let child;
    try {
        child = spawn(cmd, args, { stdio: ['ignore', fd, fd], env: { ...process.env, ...env } });
    } finally {
        fs.closeSync(fd);
    }
    const entry = { kind, name, child, logFile, stopping: false, starting: true, exited: false, status: null };
    registry.add(entry);
    allEntries.push(entry);
    entry.exitPromise = new Promise((resolve) => {
        const finish = (status) => {
            if (entry.exited) return;
            entry.exited = true;
            entry.status = status;
            registry.delete(entry);
            if (!entry.stopping && !entry.starting) {
                const what = status.error
                    ? `could not start (${status.error.message})`
                    : `exited unexpectedly (code=${status.code} signal=${status.signal})`;
                const report =
                    `${kind} ${name} pid=${child.pid} ${what}; log ${logFile}:\n` +
                    `----- log tail -----\n${logTail(logFile)}\n--------------------`;
                problems.push(report);
                console.error(report);
            }
            resolve(status);
        };
        child.once('exit', (code, signal) => finish({ code, signal }));
        child.once('error', (error) => finish({ code: null, signal: null, error }));
    });
    return entry;
}

/** SIGTERM, then (if still alive) a second SIGTERM after 2 s — which ends a gateway's drain at
 * once — and SIGKILL after `graceMs`; resolves with the exit status. */
async function stopEntry(entry, graceMs = STOP_GRACE_MS) {
    if (entry.exited) return entry.status;
    entry.stopping = true;
    entry.child.kill('SIGTERM');
    const secondTerm = setTimeout(() => {
        if (!entry.exited) entry.child.kill('SIGTERM');
    }, Math.min(2000, graceMs / 2));
    const killer = setTimeout(() => {
        if (!entry.exited) {
            fs.appendFileSync(entry.logFile, `# harness: no exit ${graceMs} ms after SIGTERM, sending SIGKILL\n`);
            entry.child.kill('SIGKILL');
        }
    }, graceMs);
    const status = await entry.exitPromise;
    clearTimeout(secondTerm);
    clearTimeout(killer);
    return status;
}

/* A process that died at startup because its port was taken meanwhile (freePort() cannot
 * reserve a port: any client socket may grab it before the server binds). */
const PORT_TAKEN = /Address already in use|EADDRINUSE|ERROR on binding|cannot listen on port/i;
function diedOfPortCollision(entry) {
    return entry.exited && PORT_TAKEN.test(logTail(entry.logFile, 20));
}

/** Forgets an attempt that lost a port race: its log is renamed and not scanned. */
function discardAttempt(entry) {
    entry.discarded = true;
    try {
        fs.renameSync(entry.logFile, entry.logFile.replace(/\.log$/, '.port-taken.log'));
    } catch {
        /* keep going */
    }
}

function diedWhileWaiting(entry) {
    const s = entry.status || {};
    return new Error(
        `${entry.kind} ${entry.name} exited while starting ` +
            `(code=${s.code} signal=${s.signal}${s.error ? ` error=${s.error.message}` : ''}); ` +
            `log ${entry.logFile}:\n----- log tail -----\n${logTail(entry.logFile)}\n--------------------`,
    );
}

/* ---------- redis ---------- */

/**
 * Starts redis-server on 127.0.0.1 (a free port unless given), no persistence, and waits until
 * it answers PING. Returns {port, url, pid, stop(), restart(), kill(sig)}; restart() stops it and
 * starts a fresh, empty one on the same port. `args` are extra redis-server arguments, appended
 * (so they override the defaults, e.g. ['--appendonly', 'yes', '--dir', dir] keeps data across a
 * restart or a kill -9). `configFile` is passed first, where redis-server wants a config file (a
 * Sentinel needs one it can rewrite: {configFile, args: ['--sentinel']}); `label` names the log
 * file (`<label>-<port>.log`, 'redis' by default).
 */
export async function startRedis({ port: fixedPort, args: extraArgs = [], configFile, label = 'redis' } = {}) {
    let port = fixedPort ?? (await freePort());
    let logFile = path.join(outputDir(), `${label}-${port}.log`);
    let entry = null;
    const launch = async () => {
        entry = spawnLogged({
            kind: 'redis-server',
            name: `:${port}`,
            cmd: REDIS_BIN,
            args: [
                ...(configFile ? [configFile] : []),
                '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no',
                ...extraArgs.map(String),
            ],
            env: {},
            logFile,
        });
        const deadline = Date.now() + 5000;
        while (Date.now() < deadline) {
            if (entry.exited) throw diedWhileWaiting(entry);
            if (await redisPingOnce(port)) {
                entry.starting = false;
                return;
            }
            await delay(POLL_MS);
        }
        await stopEntry(entry);
        throw new Error(`redis-server on port ${port} did not answer PING within 5 s; log ${logFile}:\n${logTail(logFile)}`);
    };
    for (let attempt = 1; ; attempt++) {
        try {
            await launch();
            break;
        } catch (err) {
            if (fixedPort !== undefined || attempt >= 3 || !diedOfPortCollision(entry)) throw err;
            discardAttempt(entry);
            port = await freePort();
            logFile = path.join(outputDir(), `${label}-${port}.log`);
        }
    }
    return {
        port,
        url: `redis://127.0.0.1:${port}`,
        get pid() {
            return entry.child.pid;
        },
        get exitPromise() {
            return entry.exitPromise;
        },
        stop: () => stopEntry(entry),
        kill: (sig = 'SIGKILL') => {
            entry.stopping = true;
            entry.child.kill(sig);
            return entry.exitPromise;
        },
        restart: async () => {
            await stopEntry(entry);
            await launch();
        },
        ping: () => redisPingOnce(port),
    };
}

/**
 * Sends one command to redis on 127.0.0.1:port in RESP and resolves with the first line of the
 * reply (e.g. '+OK', ':1'); bounded to 3 s. For tests that look at or change Redis directly.
 */
export function redisCommand(port, ...args) {
    return new Promise((resolve, reject) => {
        const sock = net.connect(port, '127.0.0.1');
        const timer = setTimeout(() => {
            sock.destroy();
            reject(new Error(`redis ${args[0]} on port ${port} timed out`));
        }, 3000);
        let buf = '';
        sock.on('data', (d) => {
            buf += d.toString();
            if (buf.includes('\r\n')) {
                clearTimeout(timer);
                sock.end();
                resolve(buf.split('\r\n')[0]);
            }
        });
        sock.on('error', (err) => {
            clearTimeout(timer);
            reject(err);
        });
        sock.write(`*${args.length}\r\n` + args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join(''));
    });
}

/* ---------- gateway ---------- */

/**
 * Spawns the gateway (GATEWAY_BIN) on 127.0.0.1 and waits (bounded) until GET `waitFor`
 * ('/readyz' by default, '/healthz' for a node whose Redis is unreachable, null for no wait)
 * answers 200. `redis` may be a port number or a full redis:// URL. `secret: null` omits
 * --jwt-secret.
 */
export async function startGateway({
    port,
    redisPort,
    redisUrl,
    nodeId,
    args = [],
    env = {},
    secret = JWT_SECRET,
    heartbeat = HEARTBEAT_S,
    waitFor = '/readyz',
    readyTimeoutMs = READY_TIMEOUT_MS,
} = {}) {
    if (!fs.existsSync(GATEWAY_BIN)) {
        throw new Error(`gateway binary not found at ${GATEWAY_BIN} (set GATEWAY_BIN)`);
    }
    const fixedPort = port;
    for (let attempt = 1; ; attempt++) {
        const gw = await launchGateway({
            port: fixedPort ?? (await freePort()),
            redisPort,
            redisUrl,
            nodeId,
            args,
            env,
            secret,
            heartbeat,
            waitFor,
            readyTimeoutMs,
        }).catch((err) => err);
        if (!(gw instanceof Error)) return gw;
        if (fixedPort !== undefined || attempt >= 3 || !gw.entry || !diedOfPortCollision(gw.entry)) throw gw;
        discardAttempt(gw.entry);
    }
}

async function launchGateway({ port, redisPort, redisUrl, nodeId, args, env, secret, heartbeat, waitFor, readyTimeoutMs }) {
    nodeId = nodeId ?? `node-${port}`;
    const redis = redisUrl ?? `redis://127.0.0.1:${redisPort}`;
    const fullArgs = ['--port', String(port), '--bind', '127.0.0.1', '--redis', redis, '--node-id', nodeId];
    if (secret !== null) fullArgs.push('--jwt-secret', secret);
    fullArgs.push('--heartbeat', String(heartbeat), ...args.map(String));
    const logFile = path.join(outputDir(), `gateway-${nodeId}-${port}.log`);
    const entry = spawnLogged({ kind: 'gateway', name: nodeId, cmd: GATEWAY_BIN, args: fullArgs, env, logFile });

    if (waitFor) {
        const deadline = Date.now() + readyTimeoutMs;
        let last = 'no answer';
        for (;;) {
            if (entry.exited) throw Object.assign(diedWhileWaiting(entry), { entry });
            try {
                const res = await httpGet(port, waitFor, { timeoutMs: 1000 });
                if (res.status === 200) break;
                last = `HTTP ${res.status} ${res.body.slice(0, 200)}`;
            } catch (err) {
                last = err.message;
            }
            if (Date.now() > deadline) {
                await stopEntry(entry);
                throw new Error(
                    `gateway ${nodeId} on port ${port}: GET ${waitFor} not 200 within ${readyTimeoutMs} ms ` +
                        `(last: ${last}); log ${logFile}:\n${logTail(logFile)}`,
                );
            }
            await delay(POLL_MS);
        }
    }
    entry.starting = false;

    return {
        port,
        nodeId,
        url: `ws://127.0.0.1:${port}/ws`,
        httpUrl: `http://127.0.0.1:${port}`,
        pid: entry.child.pid,
        logFile,
        exitPromise: entry.exitPromise,
        get exited() {
            return entry.exited;
        },
        get: (urlPath, opts) => httpGet(port, urlPath, opts),
        stop: () => stopEntry(entry),
        kill: (sig = 'SIGKILL') => {
            entry.stopping = true;
            entry.child.kill(sig);
            return entry.exitPromise;
        },
        logTail: (lines) => logTail(logFile, lines),
    };
}

/** One redis-server and `nodes` gateways on it (node ids n1, n2, ...). */
export async function startCluster({ nodes = 2, args = [], env = {}, nodeArgs = [] } = {}) {
    const redis = await startRedis();
    const gateways = await Promise.all(
        Array.from({ length: nodes }, (_, i) =>
            startGateway({ redisPort: redis.port, nodeId: `n${i + 1}`, args: [...args, ...(nodeArgs[i] || [])], env }),
        ),
    );
    return {
        redis,
        nodes: gateways,
        stop: async () => {
            await Promise.all(gateways.map((g) => g.stop()));
            await redis.stop();
        },
    };
}

/* ---------- teardown ---------- */

const SANITIZER_MARKERS = [
    /ERROR: AddressSanitizer/,
    /ERROR: LeakSanitizer/,
    /runtime error:/,
    /ERROR: ThreadSanitizer|WARNING: ThreadSanitizer/,
];

function sanitizerFindings() {
    const out = [];
    for (const entry of allEntries) {
        if (entry.kind !== 'gateway' || entry.discarded) continue;
        let text;
        try {
            text = fs.readFileSync(entry.logFile, 'utf8');
        } catch {
            continue;
        }
        const lines = text.split('\n');
        const idx = lines.findIndex((l) => SANITIZER_MARKERS.some((re) => re.test(l)));
        if (idx >= 0) {
            out.push(
                `gateway ${entry.name} wrote a sanitizer report (${entry.logFile}):\n` +
                    lines.slice(Math.max(0, idx - 2), idx + 30).join('\n'),
            );
        }
    }
    return [...new Set(out)];
}

/**
 * Runs the cleanup hooks (closing clients), stops every gateway, then every redis, all bounded;
 * then throws if any gateway died unexpectedly or wrote a sanitizer report
 * (SANITIZER_FATAL=0 only prints the reports).
 */
export async function stopAll() {
    for (const hook of cleanupHooks) {
        try {
            await hook();
        } catch (err) {
            console.error(`cleanup hook failed: ${err.message}`);
        }
    }
    const live = [...registry];
    await Promise.all(live.filter((e) => e.kind === 'gateway').map((e) => stopEntry(e)));
    await Promise.all(live.filter((e) => e.kind !== 'gateway').map((e) => stopEntry(e)));
    const findings = sanitizerFindings();
    const failures = [...problems];
    if (findings.length) {
        if (process.env.SANITIZER_FATAL === '0') console.error(findings.join('\n'));
        else failures.push(...findings);
    }
    problems.length = 0;
    if (failures.length) {
        throw new Error(`process problems during this test file:\n${failures.join('\n')}`);
    }
}
