// The container image and docker-compose.yml (issues 16 and 11), checked without Docker:
//  - every shared library the optimised chat-gateway, chat-cli and chat-token load (ldd) comes
//    from a package the Dockerfile's runtime stage installs, or one those depend on, or one
//    every Debian base image has (dpkg -S, dpkg-query);
//  - the image's user (the Dockerfile's numeric USER) can run what is copied in, laid out with
//    the modes the Dockerfile sets: the binaries, and the entrypoint starting a real gateway;
//  - `docker-compose config` accepts the file; its gateway services, ports and environment
//    match `chat-gateway --help` and the nginx template; images are pinned once, in .env;
//    Redis keeps an append-only file; the HA profiles are complete;
//  - safe by default: with no environment the load balancer is published on 127.0.0.1 only,
//    and the entrypoint, given each service's environment as compose renders it, refuses the
//    example JWT secret and dev tokens once LB_BIND is not loopback.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { freePort, httpGet, startRedis, stopAll } from './lib/harness.mjs';
import { pollUntil } from './lib/proc.mjs';
import { REPO } from './support/cluster.mjs';

const BUILD_DIR = process.env.CLUSTER_BUILD_DIR || path.join(REPO, 'build');
const BINARIES = ['chat-gateway', 'chat-cli', 'chat-token'];
const DOCKERFILE = fs.readFileSync(path.join(REPO, 'deploy', 'Dockerfile'), 'utf8');
const ENTRYPOINT = path.join(REPO, 'deploy', 'gateway-entrypoint.sh');
const PINS = Object.fromEntries(
    fs.readFileSync(path.join(REPO, '.env'), 'utf8').split('\n').filter((l) => /^[A-Z_]+=/.test(l)).map((l) => l.split('=')),
);

const run = (file, args, opts = {}) =>
    new Promise((resolve) => {
        execFile(file, args, { timeout: 30000, maxBuffer: 8 << 20, ...opts }, (err, stdout, stderr) =>
            resolve({ code: err ? (typeof err.code === 'number' ? err.code : 127) : 0, stdout, stderr }),
        );
    });

/* ---------- the Dockerfile's runtime stage ---------- */

/** The last stage of the Dockerfile, with continuation lines joined. */
function runtimeStage() {
    const joined = DOCKERFILE.replace(/\\\n/g, ' ');
    const stages = joined.split(/^FROM /m);
    return stages[stages.length - 1];
}

function runtimePackages() {
    const m = /apt-get install ([^&]+)/.exec(runtimeStage());
    assert.ok(m, 'the runtime stage runs apt-get install');
    return m[1].split(/\s+/).filter((w) => w && !w.startsWith('-'));
}

function runtimeUser() {
    const m = /^USER (\d+):(\d+)\s*$/m.exec(runtimeStage());
    assert.ok(m, 'the runtime stage sets a numeric USER uid:gid (Kubernetes runAsNonRoot needs a number)');
    return { uid: Number(m[1]), gid: Number(m[2]) };
}

/* ---------- Debian packages ---------- */

async function dpkgQuery(fields) {
    const res = await run('dpkg-query', ['-W', '-f', `\${Package}\t${fields}\n`]);
    assert.equal(res.code, 0, res.stderr);
    return new Map(res.stdout.trim().split('\n').map((l) => { const [p, ...rest] = l.split('\t'); return [p, rest]; }));
}

/** Installed packages reachable from `roots` through Depends/Pre-Depends (alternatives: those installed). */
async function dependencyClosure(roots) {
    const deps = await dpkgQuery('${Depends}, ${Pre-Depends}\t${Provides}');
    const providers = new Map();
    for (const [pkg, [, provides]] of deps) for (const v of (provides || '').split(',').map((s) => s.trim().split(' ')[0]).filter(Boolean)) providers.set(v, pkg);
    const seen = new Set();
    const todo = [...roots];
    while (todo.length) {
        const p = todo.pop();
        if (seen.has(p) || !deps.has(p)) continue;
        seen.add(p);
        for (const group of deps.get(p)[0].split(',')) {
            for (const alt of group.split('|')) {
                const name = alt.trim().split(/[\s(]/)[0].replace(/:any$/, '');
                if (!name) continue;
                if (deps.has(name)) todo.push(name);
                else if (providers.has(name)) todo.push(providers.get(name));
            }
        }
    }
    return seen;
}

/**
 * file → the package that ships it, for many files in one dpkg -S (which reads the whole
 * database each time); a file is looked up as itself, its real path and their /lib ↔ /usr/lib
 * twins, as merged-/usr systems register either.
 */
async function packagesOf(files) {
    const candidates = new Map(); // file → its candidate paths
    for (const file of files) {
        const real = fs.realpathSync(file);
        const set = new Set([file, real]);
        for (const f of [file, real]) set.add(f.startsWith('/usr/') ? f.slice(4) : `/usr${f}`);
        candidates.set(file, [...set]);
    }
    const res = await run('dpkg', ['-S', ...new Set([...candidates.values()].flat())]);
    const owner = new Map();
    for (const line of res.stdout.split('\n')) {
        const m = /^([^:,\s]+)(?::[a-z0-9]+)?: (\/\S+)$/.exec(line);
        if (m) owner.set(m[2], m[1]);
    }
    return new Map(files.map((f) => [f, candidates.get(f).map((c) => owner.get(c)).find(Boolean) ?? null]));
}

async function loadedLibraries(binary) {
    const res = await run('ldd', [binary]);
    assert.equal(res.code, 0, `ldd ${binary}: ${res.stderr}`);
    assert.doesNotMatch(res.stdout, /not found/, `${binary} has unresolved libraries:\n${res.stdout}`);
    return res.stdout
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l && !l.startsWith('linux-vdso'))
        .map((l) => (l.includes('=>') ? l.split('=>')[1] : l).trim().split(' ')[0]);
}

/* ---------- compose ---------- */

let composeCmd = null;
/** `docker-compose config` (Debian's) or `docker compose config` with exactly `env` set; parsed. */
async function composeConfig(env = {}, extra = []) {
    const res = await run(composeCmd[0], [...composeCmd.slice(1), ...extra, '-f', path.join(REPO, 'docker-compose.yml'), 'config'], {
        cwd: REPO,
        env: { PATH: process.env.PATH, HOME: os.tmpdir(), ...env },
    });
    assert.equal(res.code, 0, `${composeCmd.join(' ')} config:\n${res.stderr}`);
    return YAML.parse(res.stdout);
}

/** [{hostIp, published, target}] of a service, from compose v1 strings or v2 objects. */
function ports(service) {
    return (service.ports ?? []).map((p) => {
        if (typeof p === 'object') return { hostIp: p.host_ip ?? '', published: Number(p.published), target: Number(p.target) };
        const parts = p.replace(/\/tcp$/, '').split(':');
        return { hostIp: parts.length === 3 ? parts[0] : '', published: Number(parts.at(-2)), target: Number(parts.at(-1)) };
    });
}

const gatewayServices = (cfg) => Object.entries(cfg.services).filter(([, s]) => s.image === 'chat-gateway:dev' && !s.entrypoint);

async function gatewayEnvNames() {
    const res = await run(path.join(BUILD_DIR, 'chat-gateway'), ['--help']);
    const lines = res.stdout.split('\n');
    const col = lines.find((l) => /^\s*FLAG\s+ENVIRONMENT/.test(l)).indexOf('ENVIRONMENT');
    return new Set(lines.filter((l) => /^\s+-/.test(l)).map((l) => l.slice(col).split(' ')[0]).filter((n) => /^[A-Z][A-Z0-9_]*$/.test(n)));
}

/** Upper-case variables the entrypoint reads and does not define itself. */
function entrypointVars() {
    const text = fs.readFileSync(ENTRYPOINT, 'utf8').split('\n').filter((l) => !l.trim().startsWith('#')).join('\n');
    const defined = new Set([...text.matchAll(/^([A-Z][A-Z0-9_]*)=/gm)].map((m) => m[1]));
    return new Set([...text.matchAll(/\$\{?([A-Z][A-Z0-9_]*)/g)].map((m) => m[1]).filter((n) => !defined.has(n)));
}

/** Runs the entrypoint with a service's environment as compose renders it (chat-gateway on PATH). */
function runEntrypoint(environment, args) {
    const env = { PATH: `${BUILD_DIR}:${process.env.PATH}` };
    for (const [k, v] of Object.entries(environment)) env[k] = v === null ? '' : String(v);
    return run('sh', [ENTRYPOINT, ...args], { env });
}

before(async () => {
    for (const cmd of [['docker-compose'], ['docker', 'compose']]) {
        if ((await run(cmd[0], [...cmd.slice(1), 'version'])).code === 0) {
            composeCmd = cmd;
            break;
        }
    }
    for (const b of BINARIES) assert.ok(fs.existsSync(path.join(BUILD_DIR, b)), `${b} in ${BUILD_DIR} (the optimised build; set CLUSTER_BUILD_DIR)`);
});

after(stopAll);

describe('the runtime stage has every library the binaries load', () => {
    it('each library comes from a runtime package, a dependency of one, or the base image', async () => {
        const wanted = runtimePackages();
        const installed = await dpkgQuery('${Status}\t${Priority}\t${Essential}');
        for (const p of wanted) assert.match(installed.get(p)?.[0] ?? '', /install ok installed/, `${p} (runtime stage) is a real Debian package, installed here`);
        const closure = await dependencyClosure(wanted);
        const base = new Set([...installed].filter(([, [, prio, ess]]) => prio === 'required' || ess === 'yes').map(([p]) => p));
        const loads = new Map(); // library → binaries that load it
        for (const bin of BINARIES) {
            for (const lib of await loadedLibraries(path.join(BUILD_DIR, bin))) loads.set(lib, [...(loads.get(lib) ?? []), bin]);
        }
        const owners = await packagesOf([...loads.keys()]);
        const problems = [];
        for (const [lib, bins] of loads) {
            const pkg = owners.get(lib);
            const how = !pkg ? null : wanted.includes(pkg) ? 'installed' : closure.has(pkg) ? 'dependency' : base.has(pkg) ? 'base image' : null;
            console.log(`# ${lib} ← ${pkg ?? '?'} (${how ?? 'MISSING'}), loaded by ${bins.join(', ')}`);
            if (!how) problems.push(`${bins.join(', ')} load ${lib} from ${pkg ?? 'no package'}, which the runtime stage does not install`);
        }
        assert.deepEqual(problems, []);
    });
});

describe("the image's user", () => {
    let root;
    before(() => {
        root = fs.mkdtempSync(path.join(os.tmpdir(), 'chat-image-'));
        fs.chmodSync(root, 0o755);
    });
    after(() => fs.rmSync(root, { recursive: true, force: true }));

    /** Lays out /usr/local/bin as the runtime stage does: COPYs, then its chmod. */
    function layOut() {
        const stage = runtimeStage();
        const bin = path.join(root, 'usr', 'local', 'bin');
        fs.mkdirSync(bin, { recursive: true, mode: 0o755 });
        for (const d of ['usr', 'usr/local', 'usr/local/bin']) fs.chmodSync(path.join(root, d), 0o755);
        for (const m of stage.matchAll(/^COPY (--from=build )?(.+) (\/usr\/local\/bin\/)\s*$/gm)) {
            for (const src of m[2].trim().split(/\s+/)) {
                const from = m[1] ? path.join(BUILD_DIR, path.basename(src)) : path.join(REPO, src);
                fs.copyFileSync(from, path.join(bin, path.basename(src)));
                fs.chmodSync(path.join(bin, path.basename(src)), 0o600); // whatever the context had: the chmod must fix it
            }
        }
        const chmod = /RUN chmod (0?[0-7]{3}) ([^\n]+)/.exec(stage);
        assert.ok(chmod, 'the runtime stage sets the modes of what it copies');
        for (const f of chmod[2].trim().split(/\s+/)) fs.chmodSync(path.join(root, f), parseInt(chmod[1], 8));
        return bin;
    }

    it('is not root and can run every program the image holds, with the modes the Dockerfile sets', async (t) => {
        const { uid, gid } = runtimeUser();
        assert.ok(uid > 0 && gid > 0, 'USER is not root');
        const bin = layOut();
        assert.deepEqual(fs.readdirSync(bin).sort(), [...BINARIES, 'gateway-entrypoint.sh', 'gen-cert.sh'].sort());
        assert.match(DOCKERFILE, /^ENTRYPOINT \["\/usr\/local\/bin\/gateway-entrypoint\.sh"\]$/m);
        if (process.getuid() !== 0) {
            t.skip('needs root to switch to the image uid');
            return;
        }
        const asUser = ['--reuid', String(uid), '--regid', String(gid), '--clear-groups'];
        for (const b of BINARIES) {
            const res = await run('setpriv', [...asUser, path.join(bin, b), '--help']);
            assert.equal(res.code, 0, `${b} --help as uid ${uid}: ${res.stderr}`);
        }
    });

    it('starts a gateway through the entrypoint as that user, which answers /healthz and drains on SIGTERM', async (t) => {
        if (process.getuid() !== 0) {
            t.skip('needs root to switch to the image uid');
            return;
        }
        const { uid, gid } = runtimeUser();
        const bin = path.join(root, 'usr', 'local', 'bin');
        const redis = await startRedis();
        const port = await freePort();
        const child = spawn('setpriv', ['--reuid', String(uid), '--regid', String(gid), '--clear-groups', 'sh', path.join(bin, 'gateway-entrypoint.sh'), '--bind', '127.0.0.1'], {
            env: { PATH: `${bin}:/usr/bin:/bin`, GATEWAY_PORT: String(port), REDIS_URL: redis.url, JWT_SECRET: 'image-test-secret', DRAIN_SECONDS: '0', LB_BIND: '127.0.0.1' },
            stdio: ['ignore', 'pipe', 'pipe'],
        });
        let log = '';
        child.stdout.on('data', (d) => (log += d));
        child.stderr.on('data', (d) => (log += d));
        const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
        try {
            await pollUntil(async () => (await httpGet(port, '/healthz', { timeoutMs: 500 })).status === 200, { timeoutMs: 10000, what: `/healthz of the gateway run as uid ${uid}` });
            assert.equal(Number(fs.readFileSync(`/proc/${child.pid}/status`, 'utf8').match(/^Uid:\s+(\d+)/m)[1]), uid, 'setpriv exec()s the gateway as the image user');
        } finally {
            child.kill('SIGTERM');
            const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
            const status = await exited;
            clearTimeout(timer);
            assert.deepEqual(status, { code: 0, signal: null }, log);
        }
    });
});

describe('docker-compose.yml', () => {
    let cfg;
    before(async () => {
        if (composeCmd) cfg = await composeConfig();
    });
    const need = (t) => {
        if (!composeCmd) t.skip('no compose client (deploy/install-deps.sh --test installs docker-compose)');
        return Boolean(composeCmd);
    };

    it('pins every image once, in .env, by version', (t) => {
        if (!need(t)) return;
        for (const [name, image] of Object.entries(PINS)) assert.match(image, /^[a-z0-9./-]+:\d+\.\d+(\.\d+)?-[a-z]+$/, `${name}=${image} names an exact version`);
        assert.doesNotMatch(DOCKERFILE, /^FROM (?!\$\{DEBIAN_IMAGE\})/m, 'the Dockerfile takes its base image from DEBIAN_IMAGE');
        const source = fs.readFileSync(path.join(REPO, 'docker-compose.yml'), 'utf8');
        for (const line of source.split('\n').filter((l) => /^\s*image:/.test(l))) assert.match(line, /image: (\$\{[A-Z_]+_IMAGE:\?[^}]+\}|chat-gateway:dev)$/, line);
        const images = new Set(Object.values(cfg.services).map((s) => s.image));
        images.delete('chat-gateway:dev');
        assert.deepEqual([...images].sort(), [PINS.NGINX_IMAGE, PINS.REDIS_IMAGE].sort());
        for (const [, s] of gatewayServices(cfg)) assert.equal(s.build.args.DEBIAN_IMAGE, PINS.DEBIAN_IMAGE);
    });

    it('gateway services: settings from `chat-gateway --help`, one NODE_ID each, drained within the stop grace period', async (t) => {
        if (!need(t)) return;
        const known = await gatewayEnvNames();
        const ownVars = entrypointVars();
        const gateways = gatewayServices(cfg);
        assert.deepEqual(gateways.map(([n]) => n), ['gateway1', 'gateway2', 'gateway3']);
        for (const [name, s] of gateways) {
            for (const k of Object.keys(s.environment)) assert.ok(known.has(k) || ownVars.has(k), `${name}: ${k} is a gateway setting or read by the entrypoint`);
            assert.equal(s.environment.NODE_ID, name);
            assert.equal(s.environment.REDIS_URL, 'redis://redis:6379');
            assert.equal(s.depends_on.redis.condition, 'service_healthy');
            const grace = Number(/^(\d+)s$/.exec(s.stop_grace_period)[1]);
            assert.ok(grace > Number(s.environment.DRAIN_SECONDS), `${name}: stop_grace_period ${grace} s > DRAIN_SECONDS`);
        }
        assert.deepEqual([...ownVars].sort(), ['DEV_TOKENS', 'JWT_SECRET', 'LB_BIND']);
    });

    it('nginx: every template placeholder set, one upstream per gateway on its port, waits for them, publishes the LB ports', (t) => {
        if (!need(t)) return;
        const nginx = cfg.services.nginx;
        const template = fs.readFileSync(path.join(REPO, 'deploy', 'nginx', 'nginx.conf'), 'utf8').split('\n').filter((l) => !l.trim().startsWith('#')).join('\n');
        const placeholders = new Set([...template.matchAll(/\$\{([A-Z_]+)\}/g)].map((m) => m[1]));
        for (const p of placeholders) assert.ok(p in nginx.environment, `nginx sets ${p}`);
        const upstreams = [...nginx.environment.GATEWAY_UPSTREAMS.matchAll(/server (\S+):(\d+)/g)].map((m) => [m[1], m[2]]);
        const gateways = gatewayServices(cfg);
        assert.deepEqual(upstreams, gateways.map(([n, s]) => [n, s.environment.GATEWAY_PORT]));
        for (const [n] of gateways) assert.equal(nginx.depends_on[n].condition, 'service_healthy');
        assert.deepEqual(ports(nginx).map((p) => p.target).sort(), [Number(nginx.environment.LB_PORT), Number(nginx.environment.LB_TLS_PORT)].sort());
        assert.ok(nginx.volumes.some((v) => (typeof v === 'string' ? v : `${v.source}:${v.target}`).includes('deploy/nginx/nginx.conf:/etc/nginx/templates/nginx.conf.template')));
    });

    it('Redis keeps an append-only file; the redis-cluster and redis-sentinel profiles are complete', (t) => {
        if (!need(t)) return;
        const aof = (s) => s.command.join(' ').includes('--appendonly yes --appendfsync everysec');
        assert.ok(aof(cfg.services.redis) && cfg.services.redis.volumes.length === 1);
        const cluster = Object.entries(cfg.services).filter(([n]) => /^redis-cluster-\d$/.test(n));
        assert.equal(cluster.length, 6);
        for (const [n, s] of cluster) {
            assert.deepEqual(s.profiles, ['redis-cluster'], n);
            assert.ok(aof(s) && s.command.join(' ').includes('--cluster-enabled yes') && s.command.join(' ').includes('--cluster-node-timeout 2000'), n);
        }
        const init = cfg.services['redis-cluster-init'];
        assert.deepEqual(Object.keys(init.depends_on).sort(), cluster.map(([n]) => n).sort());
        assert.match(init.entrypoint.join(' '), /redis-cli --cluster create .* --cluster-replicas 1 --cluster-yes/);
        assert.ok(aof(cfg.services['redis-primary']) && aof(cfg.services['redis-replica']));
        assert.match(cfg.services['redis-replica'].command.join(' '), /--replicaof redis-primary 6379/);
        for (const n of ['sentinel-1', 'sentinel-2', 'sentinel-3']) {
            assert.deepEqual(cfg.services[n].profiles, ['redis-sentinel']);
            assert.match(cfg.services[n].entrypoint.join(' '), /sentinel monitor mymaster redis-primary 6379 2/);
        }
    });
});

describe('safe by default (issue 11)', () => {
    const need = (t) => {
        if (!composeCmd) t.skip('no compose client (deploy/install-deps.sh --test installs docker-compose)');
        return Boolean(composeCmd);
    };

    it('with no environment: the LB is on 127.0.0.1 only, and the demo (example secret, dev tokens) starts', async (t) => {
        if (!need(t)) return;
        const cfg = await composeConfig();
        for (const p of ports(cfg.services.nginx)) assert.equal(p.hostIp, '127.0.0.1', JSON.stringify(p));
        for (const [name, s] of gatewayServices(cfg)) {
            assert.equal(s.environment.JWT_SECRET, 'dev-secret-change-me');
            const res = await runEntrypoint(s.environment, ['--help']);
            assert.equal(res.code, 0, `${name}: ${res.stderr}`);
            assert.match(res.stdout, /^Usage: chat-gateway/);
        }
    });

    it('published beyond loopback with the example secret or dev tokens: every gateway refuses to start', async (t) => {
        if (!need(t)) return;
        const cases = [
            [{ LB_BIND: '0.0.0.0' }, /example secret.*DEV_TOKENS is on/],
            [{ LB_BIND: '0.0.0.0', JWT_SECRET: 'a-real-secret-0123456789' }, /published on 0\.0\.0\.0 and DEV_TOKENS is on/],
            [{ LB_BIND: '192.0.2.10', DEV_TOKENS: '0' }, /JWT_SECRET is the example secret/],
        ];
        for (const [env, why] of cases) {
            const cfg = await composeConfig(env);
            for (const p of ports(cfg.services.nginx)) assert.equal(p.hostIp, env.LB_BIND);
            for (const [name, s] of gatewayServices(cfg)) {
                const res = await runEntrypoint(s.environment, ['--help']);
                assert.equal(res.code, 78, `${name} with ${JSON.stringify(env)} must refuse: ${res.stdout}${res.stderr}`);
                assert.match(res.stderr, why);
                assert.doesNotMatch(res.stdout, /Usage/);
            }
        }
    });

    it('published beyond loopback with a real secret and dev tokens off: the gateways start', async (t) => {
        if (!need(t)) return;
        const cfg = await composeConfig({ LB_BIND: '0.0.0.0', JWT_SECRET: 'a-real-secret-0123456789', DEV_TOKENS: '0' });
        for (const [name, s] of gatewayServices(cfg)) {
            const res = await runEntrypoint(s.environment, ['--help']);
            assert.equal(res.code, 0, `${name}: ${res.stderr}`);
        }
        // A flag wins over the environment, as in chat-gateway: --dev-tokens turns them on again.
        const [, s] = gatewayServices(cfg)[0];
        assert.equal((await runEntrypoint(s.environment, ['--dev-tokens', '--help'])).code, 78);
    });
});
