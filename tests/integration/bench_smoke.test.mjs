// The bench works (issue 6): chat-bench runs scenario 1 ("small": rooms x subscribers spread
// over the nodes, one publisher per room, open-loop publishes) at a tiny size against two real
// nodes, and its JSON summary parses and adds up: every measured publish is expected at every
// other member of its room, everything expected was delivered exactly once and in offset
// order, and every publish was acked. The idle-connections mode opens and holds its
// connections. bench-floor (issue 14), the kernel-cost probe bench/run.sh runs next to each
// scenario, sends over its sockets and its drainer reads back every byte it sent. Speed is
// judged from bench/run.sh, never here: no timing assertions.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { JWT_SECRET, TESTS_DIR, outputDir, startCluster, stopAll } from './lib/harness.mjs';

const BUILD_DIR = process.env.BUILD_DIR || path.resolve(TESTS_DIR, '..', 'build');
const BENCH_BIN = process.env.BENCH_BIN || path.join(BUILD_DIR, 'chat-bench');
const FLOOR_BIN = process.env.FLOOR_BIN || path.join(BUILD_DIR, 'bench-floor');
const RUN_TIMEOUT_MS = 90000;

const SANITIZER_REPORT = /ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:/;

/** Runs bin with args; resolves {code, signal, stdout, stderr}; bounded; logged to the output dir. */
function runProgram(bin, args) {
    const name = path.basename(bin);
    return new Promise((resolve, reject) => {
        const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d) => (stdout += d));
        child.stderr.on('data', (d) => (stderr += d));
        const timer = setTimeout(() => {
            child.kill('SIGKILL');
            reject(new Error(`${name} did not finish within ${RUN_TIMEOUT_MS} ms\n${stdout}\n${stderr}`));
        }, RUN_TIMEOUT_MS);
        child.once('error', (err) => {
            clearTimeout(timer);
            reject(err);
        });
        child.once('exit', (code, signal) => {
            clearTimeout(timer);
            const log = path.join(outputDir(), `${name}-${Date.now()}.log`);
            fs.writeFileSync(log, `$ ${bin} ${args.join(' ')}\n${stdout}\n--- stderr ---\n${stderr}`);
            resolve({ code, signal, stdout, stderr });
        });
    });
}

function runBench(args) {
    return runProgram(BENCH_BIN, args);
}

function describeRun(r) {
    return `exit ${r.code} signal ${r.signal}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;
}

let cluster;

before(async () => {
    assert.ok(fs.existsSync(BENCH_BIN), `chat-bench not found at ${BENCH_BIN} (set BUILD_DIR)`);
    // The bench publishes faster than the default per-connection limit allows.
    cluster = await startCluster({ nodes: 2, args: ['--rate', '1000', '--rate-burst', '1000'] });
});

after(stopAll);

describe('chat-bench scenario 1 at a tiny size against two nodes', () => {
    const ROOMS = 3;
    const SUBS = 4;
    const PUBLISHERS = 1;
    const RATE = 30;
    const DURATION = 2;
    let run;
    let report;

    before(async () => {
        const json = path.join(outputDir(), 'small.json');
        run = await runBench([
            '--url', cluster.nodes.map((n) => n.url).join(','),
            '--jwt-secret', JWT_SECRET,
            '--rooms', String(ROOMS),
            '--subs-per-room', String(SUBS),
            '--publishers', String(PUBLISHERS),
            '--rate', String(RATE),
            '--duration', String(DURATION),
            '--warmup', '0.5',
            '--drain-timeout', '10',
            '--server-pid', cluster.nodes.map((n) => n.pid).join(','),
            '--seed', '6',
            '--label', 'smoke',
            '--json', json,
        ]);
        assert.equal(run.code, 0, `chat-bench failed: ${describeRun(run)}`);
        assert.doesNotMatch(run.stderr, SANITIZER_REPORT, describeRun(run));
        report = JSON.parse(fs.readFileSync(json, 'utf8'));
    });

    it('opened every planned connection on both nodes and kept them', () => {
        const members = SUBS + PUBLISHERS;
        assert.equal(report.mode, 'workload');
        assert.equal(report.config.members_per_room, members);
        assert.equal(report.connections.planned, ROOMS * members);
        assert.equal(report.connections.ready, ROOMS * members);
        assert.equal(report.connections.failed, 0);
        assert.equal(report.connections.dropped, 0);
        assert.deepEqual(report.config.urls, cluster.nodes.map((n) => n.url));
    });

    it('sent the scheduled publishes and got an ack for each', () => {
        // rate x duration sends fall in the measured window (one either way at its edges)
        assert.ok(Math.abs(report.publishes.sent - RATE * DURATION) <= 1, `sent ${report.publishes.sent}`);
        assert.equal(report.publishes.acked, report.publishes.sent);
        assert.equal(report.publishes.errors, 0);
        assert.deepEqual(report.errors, {});
    });

    it('counts add up: expected = sent x other members = delivered + lost', () => {
        const others = SUBS + PUBLISHERS - 1;
        const d = report.deliveries;
        assert.equal(d.expected, report.publishes.sent * others);
        assert.equal(d.delivered + d.lost, d.expected);
        assert.equal(report.latency.count, d.delivered, 'one latency sample per delivery');
        assert.ok(d.message_bytes > 0, 'the size bench-floor is sized from');
    });

    it('lost nothing, duplicated nothing, kept offset order', () => {
        const d = report.deliveries;
        assert.equal(d.lost, 0);
        assert.equal(d.duplicated, 0);
        assert.equal(d.out_of_order, 0);
        assert.equal(d.unexpected, 0);
        assert.equal(d.drained, true);
        assert.equal(report.clean, true);
    });

    it('reports latency percentiles in order and server figures from /proc', () => {
        const l = report.latency;
        assert.ok(l.min_ms <= l.p50_ms && l.p50_ms <= l.p90_ms && l.p90_ms <= l.p99_ms, JSON.stringify(l));
        assert.ok(l.p99_ms <= l.p999_ms && l.p999_ms <= l.max_ms, JSON.stringify(l));
        assert.equal(report.server.pids.length, 2);
        for (const p of report.server.pids) assert.ok(p.rss_kib > 0, JSON.stringify(p));
        assert.match(run.stdout, /verdict +OK: nothing lost/);
    });
});

describe('chat-bench --connections-only', () => {
    it('opens the idle connections, holds them and reports memory per connection', async () => {
        const json = path.join(outputDir(), 'idle.json');
        const node = cluster.nodes[0];
        const r = await runBench([
            '--url', node.url,
            '--jwt-secret', JWT_SECRET,
            '--connections-only', '40',
            '--duration', '1',
            '--server-pid', String(node.pid),
            '--json', json,
            '--quiet',
        ]);
        assert.equal(r.code, 0, `chat-bench failed: ${describeRun(r)}`);
        assert.doesNotMatch(r.stderr, SANITIZER_REPORT, describeRun(r));
        const report = JSON.parse(fs.readFileSync(json, 'utf8'));
        assert.equal(report.mode, 'connections-only');
        assert.equal(report.connections.ready, 40);
        assert.equal(report.connections.failed, 0);
        assert.equal(report.connections.dropped, 0);
        assert.equal(typeof report.server.rss_per_conn_kib, 'number');
    });
});

describe('bench-floor at a tiny size', () => {
    it('sends every case over its sockets and the drainer reads back every byte', async () => {
        assert.ok(fs.existsSync(FLOOR_BIN), `bench-floor not found at ${FLOOR_BIN} (set BUILD_DIR)`);
        const json = path.join(outputDir(), 'floor.json');
        const SOCKETS = 20;
        const SENDS = 2000;
        const r = await runProgram(FLOOR_BIN, [
            '--sockets', String(SOCKETS),
            '--message-bytes', '150',
            '--coalesce', '1,4',
            '--sends', String(SENDS),
            '--label', 'smoke',
            '--json', json,
        ]);
        assert.equal(r.code, 0, `bench-floor failed: ${describeRun(r)}`);
        assert.doesNotMatch(r.stderr, SANITIZER_REPORT, describeRun(r));
        const f = JSON.parse(fs.readFileSync(json, 'utf8'));
        assert.equal(f.sockets, SOCKETS);
        assert.equal(f.frame_bytes, 150 + 4, 'a 150-byte message takes a 4-byte WebSocket header');
        assert.deepEqual(f.cases.map((c) => c.frames_per_send), [1, 4]);
        for (const c of f.cases) {
            assert.equal(c.sends, SENDS);
            assert.ok(c.cpu_us_per_send >= 0 && c.user_s >= 0 && c.sys_s >= 0, JSON.stringify(c));
        }
        // each case: one warm-up send per socket, then the measured sends, of k frames each
        assert.equal(f.bytes_sent, (SENDS + SOCKETS) * f.frame_bytes * (1 + 4));
        assert.equal(f.bytes_drained, f.bytes_sent);
        assert.equal(f.ok, true);
        assert.match(r.stdout, /check .* OK/);
    });
});
