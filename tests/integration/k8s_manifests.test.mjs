// deploy/k8s/ (issue 16), checked without a Kubernetes cluster: the base and each overlay are
// rendered as kustomize renders them (a small renderer below, for exactly the kustomization
// fields we use; it refuses any other, and is compared with `kubectl kustomize` where kubectl
// exists), every object is validated against the Kubernetes API schemas (kubernetes-models,
// which ships them compiled; no network) and, as `kubectl apply` does with strict field
// validation, unknown fields are refused. Then the invariants that matter in production: the
// grace period outlasts preStop + the drain window, probes hit /readyz and /healthz on the
// container's port, labels and selectors agree across Deployment, Service, PDB, HPA and
// Ingress, every setting is one `chat-gateway --help` knows, the pod runs as the image's user
// with a read-only root filesystem, and the overlays change REDIS_URL and nothing else.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { GATEWAY_BIN } from './lib/harness.mjs';
import { REPO } from './support/cluster.mjs';

const K8S = path.join(REPO, 'deploy', 'k8s');
const TARGETS = { base: 'base', 'redis-cluster': 'overlays/redis-cluster', 'redis-sentinel': 'overlays/redis-sentinel' };

const run = (file, args) =>
    new Promise((resolve) => {
        execFile(file, args, { timeout: 20000, maxBuffer: 4 << 20 }, (err, stdout, stderr) => resolve({ code: err ? (err.code ?? 1) : 0, stdout, stderr }));
    });

/* ---------- a kustomize subset ---------- */

const KUSTOMIZATION_FIELDS = new Set(['apiVersion', 'kind', 'resources', 'patches', 'images']);

/** Merges patch into target as a strategic-merge patch does for maps; lists are not supported. */
function mergeInto(target, patch, where) {
    for (const [key, value] of Object.entries(patch)) {
        if (Array.isArray(value)) throw new Error(`${where}.${key}: list patches are not supported by this renderer`);
        if (value && typeof value === 'object' && target[key] && typeof target[key] === 'object') mergeInto(target[key], value, `${where}.${key}`);
        else target[key] = value;
    }
}

function podContainers(obj) {
    const spec = obj.spec?.template?.spec;
    return spec ? [...(spec.initContainers ?? []), ...spec.containers] : [];
}

/** Renders a kustomization directory into its list of objects. */
function render(dir) {
    const k = YAML.parse(fs.readFileSync(path.join(dir, 'kustomization.yaml'), 'utf8'));
    for (const key of Object.keys(k)) {
        if (!KUSTOMIZATION_FIELDS.has(key)) throw new Error(`${dir}: kustomization field ${key} is not supported by this renderer`);
    }
    const objects = [];
    for (const res of k.resources ?? []) {
        const p = path.join(dir, res);
        if (fs.statSync(p).isDirectory()) objects.push(...render(p));
        else objects.push(...YAML.parseAllDocuments(fs.readFileSync(p, 'utf8')).map((d) => d.toJS()).filter(Boolean));
    }
    for (const patch of k.patches ?? []) {
        if (Object.keys(patch).join() !== 'path') throw new Error(`${dir}: only {path} patches are supported`);
        const doc = YAML.parse(fs.readFileSync(path.join(dir, patch.path), 'utf8'));
        const target = objects.find((o) => o.kind === doc.kind && o.metadata.name === doc.metadata.name);
        if (!target) throw new Error(`${dir}/${patch.path}: no ${doc.kind} ${doc.metadata.name} to patch`);
        const { apiVersion, kind, metadata, ...rest } = doc;
        mergeInto(target, rest, `${kind}/${metadata.name}`);
    }
    for (const img of k.images ?? []) {
        for (const c of objects.flatMap(podContainers)) {
            if (c.image.split(/[:@]/)[0] === img.name) c.image = `${img.newName ?? img.name}:${img.newTag}`;
        }
    }
    return objects;
}

const rendered = Object.fromEntries(Object.entries(TARGETS).map(([name, dir]) => [name, render(path.join(K8S, dir))]));
const byKind = (objs, kind) => {
    const found = objs.filter((o) => o.kind === kind);
    assert.equal(found.length, 1, `exactly one ${kind}`);
    return found[0];
};

/* ---------- schema validation ---------- */

/**
 * Validates obj against its kind's API schema, and refuses fields the schema does not know:
 * the compiled validators read exactly the properties the schema declares, so a property the
 * validator never read is unknown (as the API server's strict field validation says).
 */
async function validateStrict(obj) {
    const { [obj.kind]: Model } = await import(`kubernetes-models/${obj.apiVersion}/${obj.kind}`);
    assert.ok(Model, `kubernetes-models has ${obj.apiVersion} ${obj.kind}`);
    const model = new Model(obj);
    const read = new Set();
    const track = (value, at) =>
        value === null || typeof value !== 'object'
            ? value
            : new Proxy(value, {
                  get(target, key, receiver) {
                      const v = Reflect.get(target, key, receiver);
                      if (typeof key !== 'string' || !Object.prototype.hasOwnProperty.call(target, key)) return v;
                      read.add(`${at}/${key}`);
                      return track(v, `${at}/${key}`);
                  },
              });
    Model.prototype.validate.call(track(model, ''));
    const unknown = [];
    const walk = (value, at) => {
        if (value === null || typeof value !== 'object') return;
        for (const [key, v] of Object.entries(value)) {
            if (!read.has(`${at}/${key}`)) unknown.push(`${at}/${key}`);
            else walk(v, `${at}/${key}`);
        }
    };
    walk(obj, '');
    if (unknown.length) throw new Error(`${obj.kind} ${obj.metadata?.name}: unknown field(s) ${unknown.join(', ')}`);
}

/* ---------- facts from elsewhere in the repository ---------- */

async function gatewayEnvNames() {
    const res = await run(GATEWAY_BIN, ['--help']);
    assert.equal(res.code, 0, res.stderr);
    const lines = res.stdout.split('\n');
    const header = lines.find((l) => /^\s*FLAG\s+ENVIRONMENT/.test(l));
    assert.ok(header, 'chat-gateway --help has a FLAG ENVIRONMENT header');
    const col = header.indexOf('ENVIRONMENT');
    return new Set(lines.filter((l) => /^\s+-/.test(l)).map((l) => l.slice(col).split(' ')[0]).filter((n) => /^[A-Z][A-Z0-9_]*$/.test(n)));
}

function dockerfileUser() {
    const text = fs.readFileSync(path.join(REPO, 'deploy', 'Dockerfile'), 'utf8');
    const m = [...text.matchAll(/^USER\s+(\d+):(\d+)\s*$/gm)].pop();
    assert.ok(m, 'the Dockerfile runs as a numeric USER uid:gid');
    return { uid: Number(m[1]), gid: Number(m[2]) };
}

/* ---------- tests ---------- */

describe('rendering', () => {
    it('the base and both overlays render to the same kinds', () => {
        for (const [name, objs] of Object.entries(rendered)) {
            assert.deepEqual(objs.map((o) => o.kind).sort(), ['ConfigMap', 'Deployment', 'HorizontalPodAutoscaler', 'Ingress', 'PodDisruptionBudget', 'Service'], name);
        }
    });

    it('matches `kubectl kustomize` (skipped without kubectl)', async (t) => {
        if ((await run('sh', ['-c', 'command -v kubectl'])).code !== 0) {
            t.skip('kubectl is not installed');
            return;
        }
        for (const [name, dir] of Object.entries(TARGETS)) {
            const res = await run('kubectl', ['kustomize', path.join(K8S, dir)]);
            assert.equal(res.code, 0, res.stderr);
            const theirs = YAML.parseAllDocuments(res.stdout).map((d) => d.toJS());
            const key = (o) => `${o.kind}/${o.metadata.name}`;
            const sorted = (objs) => [...objs].sort((a, b) => key(a).localeCompare(key(b)));
            assert.deepEqual(sorted(rendered[name]), sorted(theirs), name);
        }
    });

    it('the renderer refuses what it does not implement, and the strict check catches a misspelled field', async () => {
        assert.throws(() => mergeInto({}, { a: [1] }, 'x'), /not supported/);
        const dep = structuredClone(byKind(rendered.base, 'Deployment'));
        dep.spec.template.spec.containers[0].readinessProbes = dep.spec.template.spec.containers[0].readinessProbe;
        await assert.rejects(validateStrict(dep), /unknown field\(s\) \/spec\/template\/spec\/containers\/0\/readinessProbes/);
        dep.spec.template.spec.containers[0].ports[0].containerPort = 'http';
        await assert.rejects(validateStrict(dep), /containerPort must be integer/);
    });
});

describe('Kubernetes API schemas', () => {
    for (const [name, objs] of Object.entries(rendered)) {
        it(`every object of ${name} is valid, with no unknown field`, async () => {
            for (const obj of objs) await validateStrict(obj);
        });
    }
});

describe('invariants', () => {
    const objs = rendered.base;
    const dep = byKind(objs, 'Deployment');
    const config = byKind(objs, 'ConfigMap').data;
    const [container] = dep.spec.template.spec.containers;
    const httpPort = container.ports.find((p) => p.name === 'http');

    it('the grace period outlasts the preStop pause plus the drain window', () => {
        const drain = Number(config.DRAIN_SECONDS ?? 10);
        const [cmd, seconds] = container.lifecycle.preStop.exec.command;
        assert.equal(cmd, 'sleep');
        const grace = dep.spec.template.spec.terminationGracePeriodSeconds;
        assert.ok(grace > Number(seconds) + drain, `terminationGracePeriodSeconds ${grace} > preStop ${seconds} + DRAIN_SECONDS ${drain}`);
    });

    it('probes: readiness on /readyz, liveness on /healthz, both on the port the gateway listens on', () => {
        assert.equal(container.readinessProbe.httpGet.path, '/readyz');
        assert.equal(container.livenessProbe.httpGet.path, '/healthz');
        for (const probe of [container.readinessProbe, container.livenessProbe]) {
            const port = probe.httpGet.port;
            assert.equal(typeof port === 'string' ? container.ports.find((p) => p.name === port)?.containerPort : port, httpPort.containerPort);
        }
        assert.equal(String(httpPort.containerPort), config.GATEWAY_PORT);
        assert.equal(dep.spec.template.metadata.annotations['prometheus.io/port'], config.GATEWAY_PORT);
    });

    it('labels and selectors agree across Deployment, Service, PDB, HPA, spread constraints and Ingress', () => {
        const selector = dep.spec.selector.matchLabels;
        const podLabels = dep.spec.template.metadata.labels;
        for (const [k, v] of Object.entries(selector)) assert.equal(podLabels[k], v, `pod label ${k}`);
        const svc = byKind(objs, 'Service');
        assert.deepEqual(svc.spec.selector, selector);
        assert.deepEqual(byKind(objs, 'PodDisruptionBudget').spec.selector.matchLabels, selector);
        assert.deepEqual(dep.spec.template.spec.topologySpreadConstraints[0].labelSelector.matchLabels, selector);
        const hpa = byKind(objs, 'HorizontalPodAutoscaler');
        assert.deepEqual(hpa.spec.scaleTargetRef, { apiVersion: dep.apiVersion, kind: 'Deployment', name: dep.metadata.name });
        assert.ok(hpa.spec.minReplicas >= dep.spec.replicas && dep.spec.replicas === 3);
        assert.ok(byKind(objs, 'PodDisruptionBudget').spec.maxUnavailable < hpa.spec.minReplicas);
        const [svcPort] = svc.spec.ports;
        assert.equal(svcPort.targetPort, httpPort.name);
        const ingress = byKind(objs, 'Ingress');
        const backends = ingress.spec.rules.flatMap((r) => r.http.paths.map((p) => p.backend.service));
        for (const b of backends) {
            assert.equal(b.name, svc.metadata.name);
            assert.ok(svc.spec.ports.some((p) => p.name === b.port.name || p.port === b.port.number), JSON.stringify(b));
        }
        assert.deepEqual(ingress.spec.rules.flatMap((r) => r.http.paths.map((p) => p.path)).sort(), ['/api/', '/ws']);
    });

    it('the Ingress keeps WebSockets open longer than the heartbeat', () => {
        const ingress = byKind(objs, 'Ingress');
        assert.equal(ingress.spec.ingressClassName, 'nginx');
        const heartbeat = Number(config.HEARTBEAT ?? 25);
        for (const a of ['proxy-read-timeout', 'proxy-send-timeout']) {
            const v = Number(ingress.metadata.annotations[`nginx.ingress.kubernetes.io/${a}`]);
            assert.ok(v > 2 * heartbeat, `${a} ${v} s > two heartbeats (${heartbeat} s)`);
        }
    });

    it('every setting is an env name of `chat-gateway --help`; secrets come from a Secret, not the manifests', async () => {
        const known = await gatewayEnvNames();
        for (const name of Object.keys(config)) assert.ok(known.has(name), `ConfigMap key ${name} is a gateway setting`);
        for (const e of container.env) assert.ok(known.has(e.name), `env ${e.name} is a gateway setting`);
        assert.deepEqual(container.envFrom, [{ configMapRef: { name: byKind(objs, 'ConfigMap').metadata.name } }]);
        const secretRefs = container.env.filter((e) => e.valueFrom?.secretKeyRef).map((e) => e.name);
        assert.deepEqual(secretRefs.sort(), ['API_KEY', 'JWT_SECRET']);
        assert.ok(!('JWT_SECRET' in config) && !('API_KEY' in config), 'no secret in the ConfigMap');
        assert.ok(!/^(true|1|yes|on)$/i.test(config.DEV_TOKENS ?? 'false'), 'dev tokens off');
        const docs = fs.readFileSync(path.join(REPO, 'docs', 'kubernetes.md'), 'utf8');
        assert.match(docs, /kubectl create secret generic chat-gateway-secrets/);
    });

    it('the pod runs as the image user, non-root, read-only, without privileges, with resource requests', () => {
        const { uid, gid } = dockerfileUser();
        const pod = dep.spec.template.spec.securityContext;
        assert.equal(pod.runAsNonRoot, true);
        assert.equal(pod.runAsUser, uid);
        assert.equal(pod.runAsGroup, gid);
        assert.equal(container.securityContext.readOnlyRootFilesystem, true);
        assert.equal(container.securityContext.allowPrivilegeEscalation, false);
        assert.deepEqual(container.securityContext.capabilities.drop, ['ALL']);
        assert.ok(container.resources.requests.cpu && container.resources.requests.memory);
        assert.match(container.image, /^[^:]+:\d+\.\d+\.\d+$/, 'the image is pinned to a version');
    });

    it('the overlays change REDIS_URL to a Cluster / Sentinel URL and nothing else', () => {
        const shapes = {
            'redis-cluster': /^redis\+cluster:\/\/[a-z0-9.-]+:\d+(,[a-z0-9.-]+:\d+)+$/,
            'redis-sentinel': /^redis\+sentinel:\/\/[a-z0-9.-]+:26379(,[a-z0-9.-]+:26379)+\/mymaster$/,
        };
        for (const [name, shape] of Object.entries(shapes)) {
            const overlay = structuredClone(rendered[name]);
            const url = byKind(overlay, 'ConfigMap').data.REDIS_URL;
            assert.match(url, shape, name);
            byKind(overlay, 'ConfigMap').data.REDIS_URL = config.REDIS_URL;
            assert.deepEqual(overlay, objs, `${name} differs from the base only in REDIS_URL`);
        }
    });
});
