// deploy/monitoring/ (issue 16): the alert rules pass `promtool check rules` and their unit
// tests (`promtool test rules alerts.test.yml`); the Grafana dashboard is well-formed, its
// PromQL parses (promtool checks each query as a recording rule), and every metric that a
// dashboard query or an alert names is one a real gateway exports on /metrics — read from a
// live node, so a renamed or missing metric fails here rather than as an empty panel.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { outputDir, startGateway, startRedis, stopAll } from './lib/harness.mjs';
import { parsePrometheus } from './lib/prom.mjs';
import { REPO } from './support/cluster.mjs';

const MONITORING = path.join(REPO, 'deploy', 'monitoring');
const dashboard = JSON.parse(fs.readFileSync(path.join(MONITORING, 'grafana-dashboard.json'), 'utf8'));
const alerts = YAML.parse(fs.readFileSync(path.join(MONITORING, 'alerts.yml'), 'utf8'));
// Series Prometheus makes itself, not the gateway.
const PROMETHEUS_SERIES = new Set(['up']);

const promtool = (args) =>
    new Promise((resolve) => {
        execFile('promtool', args, { timeout: 30000, cwd: MONITORING }, (err, stdout, stderr) =>
            resolve({ code: err ? (typeof err.code === 'number' ? err.code : 127) : 0, out: `${stdout}${stderr}` }),
        );
    });

/* ---------- PromQL: which metrics does an expression name? ---------- */

const KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'offset', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'inf', 'nan']);

/** Metric names in a PromQL expression: identifiers that are not functions, keywords, labels or durations. */
function metricNames(expr) {
    const s = expr
        .replace(/"(?:[^"\\]|\\.)*"/g, '""')
        .replace(/\{[^}]*\}/g, '')
        .replace(/\[[^\]]*\]/g, '')
        .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '');
    const names = new Set();
    for (const m of s.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
        const prev = s[m.index - 1];
        if (prev && /[0-9.$]/.test(prev)) continue; // 5m, 1e3, $variable
        if (s.slice(m.index + m[0].length).trimStart().startsWith('(')) continue; // a function
        if (KEYWORDS.has(m[0].toLowerCase())) continue;
        names.add(m[0]);
    }
    return [...names];
}

/** Every PromQL query of the dashboard: panel targets and template variable queries. */
function dashboardQueries() {
    const out = [];
    const walk = (panels) => {
        for (const p of panels ?? []) {
            for (const t of p.targets ?? []) out.push({ where: `panel "${p.title}" ${t.refId}`, expr: t.expr });
            walk(p.panels);
        }
    };
    walk(dashboard.panels);
    for (const v of dashboard.templating.list.filter((t) => t.type === 'query')) {
        const m = /^label_values\((.+),\s*[a-zA-Z_]+\)$/.exec(v.definition);
        assert.ok(m, `variable ${v.name}: label_values(expr, label)`);
        out.push({ where: `variable ${v.name}`, expr: m[1] });
    }
    return out;
}

/** Grafana's $variables replaced by what they stand for, so promtool can parse the query. */
const concrete = (expr) =>
    expr.replace(/\$__rate_interval|\$__interval|\$__range/g, (v) => (v === '$__range' ? '1h' : '5m')).replace(/\$instance/g, '.*');

/* ---------- the live gateway ---------- */

let exported; // Map family name → type, from a live /metrics

before(async () => {
    const redis = await startRedis();
    const node = await startGateway({ redisPort: redis.port, nodeId: 'mon' });
    const res = await node.get('/metrics');
    assert.equal(res.status, 200);
    exported = new Map([...parsePrometheus(res.body).families.values()].map((f) => [f.name, f.type]));
});

after(stopAll);

/** True when `name` is a series of an exported family (histograms: _bucket, _sum, _count). */
function isExported(name) {
    if (exported.has(name)) return exported.get(name) !== 'histogram';
    const m = /^(.*)_(bucket|sum|count)$/.exec(name);
    return Boolean(m && ['histogram', 'summary'].includes(exported.get(m[1])) && !(m[2] === 'bucket' && exported.get(m[1]) === 'summary'));
}

describe('alert rules', () => {
    it('pass `promtool check rules`', async () => {
        const res = await promtool(['check', 'rules', 'alerts.yml']);
        assert.equal(res.code, 0, `promtool (Debian package prometheus, installed by deploy/install-deps.sh --test):\n${res.out}`);
    });

    it('pass their unit tests (`promtool test rules alerts.test.yml`)', async () => {
        const res = await promtool(['test', 'rules', 'alerts.test.yml']);
        assert.equal(res.code, 0, res.out);
        const tested = new Set(YAML.parse(fs.readFileSync(path.join(MONITORING, 'alerts.test.yml'), 'utf8')).tests.flatMap((t) => t.alert_rule_test.map((a) => a.alertname)));
        for (const rule of alerts.groups.flatMap((g) => g.rules)) assert.ok(tested.has(rule.alert), `alerts.test.yml tests ${rule.alert}`);
    });

    it('name only metrics the gateway exports', () => {
        const missing = [];
        for (const rule of alerts.groups.flatMap((g) => g.rules)) {
            for (const name of metricNames(rule.expr)) if (!isExported(name) && !PROMETHEUS_SERIES.has(name)) missing.push(`${rule.alert}: ${name}`);
        }
        assert.deepEqual(missing, [], `metrics not on a live /metrics: ${missing.join(', ')}`);
    });
});

describe('Grafana dashboard', () => {
    it('finds metric names in PromQL as Prometheus would', () => {
        assert.deepEqual(metricNames('histogram_quantile(0.99, sum by (instance, le) (rate(chat_x_bucket{instance=~"$instance",a="b{c}"}[$__rate_interval])))'), ['chat_x_bucket']);
        assert.deepEqual(metricNames('chat_a == 0 and chat_b offset 5m > bool 1e3'), ['chat_a', 'chat_b']);
        assert.deepEqual(metricNames('sum without (node) (up) / on (instance) group_left (role) chat_c'), ['up', 'chat_c']);
    });

    it('is a well-formed dashboard: unique panel ids, every panel on the datasource variable', () => {
        assert.equal(dashboard.uid, 'chat-gateway');
        const ids = dashboard.panels.map((p) => p.id);
        assert.equal(new Set(ids).size, ids.length, 'unique panel ids');
        for (const p of dashboard.panels.filter((p) => p.type !== 'row')) {
            assert.equal(p.datasource.uid, '${datasource}', p.title);
            assert.ok(p.targets.length > 0, `${p.title} has queries`);
            assert.ok(p.gridPos.x + p.gridPos.w <= 24, `${p.title} fits the grid`);
        }
        assert.ok(dashboard.templating.list.some((t) => t.type === 'datasource' && t.query === 'prometheus'));
    });

    it('every query parses (promtool, as recording rules)', async () => {
        const rules = dashboardQueries().map((q, i) => ({ record: `dashboard:query_${i}`, expr: concrete(q.expr) }));
        const file = path.join(outputDir(), 'dashboard-queries.yml');
        fs.writeFileSync(file, YAML.stringify({ groups: [{ name: 'dashboard', rules }] }));
        const res = await promtool(['check', 'rules', file]);
        assert.equal(res.code, 0, res.out);
    });

    it('every query names a metric the gateway exports', () => {
        const missing = new Set();
        for (const q of dashboardQueries()) {
            const names = metricNames(q.expr);
            assert.ok(names.length > 0, `${q.where} names a metric: ${q.expr}`);
            for (const name of names) if (!isExported(name)) missing.add(name);
        }
        assert.deepEqual([...missing].sort(), [], `metrics the dashboard uses but a live gateway does not export: ${[...missing].sort().join(', ')}`);
    });
});
