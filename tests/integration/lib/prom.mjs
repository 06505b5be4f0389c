/*
 * prom — a strict parser for the Prometheus text exposition format (version 0.0.4), for tests
 * that read a gateway's /metrics.
 *
 * parsePrometheus(text) throws (with the line number and line) on anything a careful scraper
 * would reject or that hides a bug:
 *  - a line that is neither `# HELP`, `# TYPE`, another comment, blank, nor a valid sample
 *    (`name{label="value",...} value [timestamp]`, label values with \\ \" \n escapes only);
 *  - a sample whose family has no `# TYPE` line before it (every sample must be typed), a
 *    family typed or described twice, a `# TYPE` after the family's samples, a family's samples
 *    not contiguous, the same series (name + labels) twice;
 *  - a sample name that does not belong to its family's type (counter/gauge/untyped: the family
 *    name itself; histogram: _bucket/_sum/_count; summary: name/_sum/_count);
 *  - a counter or histogram count/bucket that is negative or not finite;
 *  - histograms: a bucket without `le`, `le` not increasing, counts not cumulative, no
 *    le="+Inf" bucket, +Inf bucket != _count, _sum or _count missing;
 *  - text that does not end with a newline.
 * Returns {families, value(name, labels?), sum(name)}: families is a Map of family name →
 * {name, type, help, samples: [{name, labels, value}]}.
 */

const NAME_RE = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME_RE = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

function parseValue(s) {
    if (s === '+Inf' || s === 'Inf') return Infinity;
    if (s === '-Inf') return -Infinity;
    if (s === 'NaN') return NaN;
    if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(s)) return undefined;
    return Number(s);
}

/** Parses `{a="x",b="y"}` starting at line[i] === '{'; returns {labels, end} (end after '}'). */
function parseLabels(line, i, fail) {
    const labels = {};
    i++; // '{'
    for (;;) {
        while (line[i] === ' ') i++;
        if (line[i] === '}') return { labels, end: i + 1 };
        const m = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(line.slice(i));
        if (!m) fail('bad label name');
        const lname = m[0];
        i += lname.length;
        while (line[i] === ' ') i++;
        if (line[i] !== '=') fail(`expected = after label ${lname}`);
        i++;
        while (line[i] === ' ') i++;
        if (line[i] !== '"') fail(`expected " to open the value of label ${lname}`);
        i++;
        let v = '';
        for (;;) {
            if (i >= line.length) fail(`unterminated value of label ${lname}`);
            const c = line[i];
            if (c === '\\') {
                const e = line[i + 1];
                if (e === '\\') v += '\\';
                else if (e === '"') v += '"';
                else if (e === 'n') v += '\n';
                else fail(`bad escape \\${e} in label ${lname}`);
                i += 2;
            } else if (c === '"') {
                i++;
                break;
            } else {
                v += c;
                i++;
            }
        }
        if (!LABEL_NAME_RE.test(lname)) fail(`bad label name ${lname}`);
        if (lname in labels) fail(`label ${lname} twice`);
        labels[lname] = v;
        while (line[i] === ' ') i++;
        if (line[i] === ',') {
            i++;
            continue;
        }
        if (line[i] === '}') return { labels, end: i + 1 };
        fail(`expected , or } after label ${lname}`);
    }
}

/** The family a sample name belongs to, given the declared families; null if none. */
function familyOf(sampleName, families) {
    const f = families.get(sampleName);
    if (f && f.type !== 'histogram') return f;
    for (const suffix of ['_bucket', '_sum', '_count']) {
        if (!sampleName.endsWith(suffix)) continue;
        const base = families.get(sampleName.slice(0, -suffix.length));
        if (!base) continue;
        if (base.type === 'histogram') return base;
        if (base.type === 'summary' && suffix !== '_bucket') return base;
    }
    if (f) return f; // a histogram named exactly like the sample: reported by the caller
    return null;
}

const seriesKey = (name, labels) =>
    `${name}{${Object.keys(labels)
        .sort()
        .map((k) => `${k}=${JSON.stringify(labels[k])}`)
        .join(',')}}`;

function checkHistogram(fam) {
    const fail = (msg) => {
        throw new Error(`/metrics histogram ${fam.name}: ${msg}`);
    };
    // Group by labels other than le.
    const groups = new Map();
    for (const s of fam.samples) {
        const { le, ...rest } = s.labels;
        const key = seriesKey('', rest);
        if (!groups.has(key)) groups.set(key, { buckets: [], sum: undefined, count: undefined });
        const g = groups.get(key);
        if (s.name === `${fam.name}_bucket`) {
            if (le === undefined) fail('bucket without le');
            const bound = parseValue(le);
            if (bound === undefined || Number.isNaN(bound)) fail(`bad le "${le}"`);
            g.buckets.push({ le: bound, value: s.value });
        } else if (s.name === `${fam.name}_sum`) {
            g.sum = s.value;
        } else if (s.name === `${fam.name}_count`) {
            g.count = s.value;
        } else {
            fail(`sample ${s.name} is not _bucket/_sum/_count`);
        }
    }
    if (groups.size === 0) fail('no samples');
    for (const [key, g] of groups) {
        if (g.count === undefined) fail(`${key}: no _count`);
        if (g.sum === undefined) fail(`${key}: no _sum`);
        if (g.buckets.length === 0) fail(`${key}: no buckets`);
        for (let i = 1; i < g.buckets.length; i++) {
            if (!(g.buckets[i].le > g.buckets[i - 1].le)) fail(`${key}: le not increasing at ${g.buckets[i].le}`);
            if (g.buckets[i].value < g.buckets[i - 1].value) {
                fail(`${key}: buckets not cumulative (le=${g.buckets[i].le}: ${g.buckets[i].value} < ${g.buckets[i - 1].value})`);
            }
        }
        const last = g.buckets[g.buckets.length - 1];
        if (last.le !== Infinity) fail(`${key}: no le="+Inf" bucket`);
        if (last.value !== g.count) fail(`${key}: +Inf bucket ${last.value} != _count ${g.count}`);
        if (g.count > 0 && !(g.sum >= 0)) fail(`${key}: _sum ${g.sum} with _count ${g.count}`);
    }
}

export function parsePrometheus(text) {
    if (typeof text !== 'string' || text.length === 0) throw new Error('/metrics: empty body');
    if (!text.endsWith('\n')) throw new Error('/metrics: text does not end with a newline');
    const lines = text.slice(0, -1).split('\n');
    const families = new Map();
    const series = new Set();
    const finished = new Set(); // families whose sample block has ended
    let current = null; // family of the previous sample line
    lines.forEach((line, idx) => {
        const fail = (msg) => {
            throw new Error(`/metrics line ${idx + 1}: ${msg}: ${JSON.stringify(line)}`);
        };
        if (line.includes('\r')) fail('carriage return');
        if (line.trim() === '') return;
        if (line.startsWith('#')) {
            const m = /^#\s+(HELP|TYPE)\s+(\S+)(?:\s(.*))?$/.exec(line);
            if (!m) return; // a plain comment
            const [, kind, name, rest = ''] = m;
            if (!NAME_RE.test(name)) fail(`bad metric name ${name}`);
            let fam = families.get(name);
            if (!fam) {
                fam = { name, type: undefined, help: undefined, samples: [] };
                families.set(name, fam);
            }
            if (kind === 'TYPE') {
                const type = rest.trim();
                if (!TYPES.has(type)) fail(`unknown type ${type}`);
                if (fam.type !== undefined) fail(`second TYPE for ${name}`);
                if (fam.samples.length) fail(`TYPE for ${name} after its samples`);
                fam.type = type;
            } else {
                if (fam.help !== undefined) fail(`second HELP for ${name}`);
                fam.help = rest;
            }
            return;
        }
        const nm = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line);
        if (!nm) fail('not a sample line');
        const name = nm[0];
        let i = name.length;
        let labels = {};
        if (line[i] === '{') {
            const r = parseLabels(line, i, fail);
            labels = r.labels;
            i = r.end;
        }
        const rest = line.slice(i);
        const vm = /^ +(\S+)(?: +(-?\d+))? *$/.exec(rest);
        if (!vm) fail('expected " value [timestamp]" after the name and labels');
        const value = parseValue(vm[1]);
        if (value === undefined) fail(`bad value ${vm[1]}`);
        const fam = familyOf(name, families);
        if (!fam || fam.type === undefined) fail(`sample ${name} has no # TYPE'd family before it`);
        if (fam.type === 'histogram' && name === fam.name) fail(`histogram ${name} sample without suffix`);
        if (fam.type === 'counter' || fam.type === 'gauge' || fam.type === 'untyped') {
            if (name !== fam.name) fail(`sample ${name} does not match ${fam.type} ${fam.name}`);
        }
        if (current !== fam) {
            if (current) finished.add(current.name);
            if (finished.has(fam.name)) fail(`samples of ${fam.name} are not contiguous`);
            current = fam;
        }
        if (fam.type === 'counter' || (fam.type === 'histogram' && !name.endsWith('_sum'))) {
            if (!(value >= 0) || !Number.isFinite(value)) fail(`counter value ${vm[1]} must be finite and >= 0`);
        }
        if (fam.type === 'histogram' && name.endsWith('_bucket') && !('le' in labels)) fail('bucket without le');
        const key = seriesKey(name, labels);
        if (series.has(key)) fail(`series ${key} twice`);
        series.add(key);
        fam.samples.push({ name, labels, value });
    });
    for (const fam of families.values()) {
        if (fam.type === undefined) throw new Error(`/metrics: HELP for ${fam.name} without TYPE`);
        if (fam.type === 'histogram') checkHistogram(fam);
    }

    /** The value of the series name{labels} (labels must match exactly); undefined if absent. */
    const value = (name, labels = {}) => {
        const key = seriesKey(name, labels);
        for (const fam of families.values()) {
            for (const s of fam.samples) if (seriesKey(s.name, s.labels) === key) return s.value;
        }
        return undefined;
    };
    /** Sum over every series named `name`, whatever its labels (0 when none). */
    const sum = (name) => {
        let total = 0;
        for (const fam of families.values()) for (const s of fam.samples) if (s.name === name) total += s.value;
        return total;
    };
    return { families, value, sum };
}
