/*
 * proc — resource figures of a running process from Linux /proc, for tests that check a
 * gateway's memory and descriptors stay bounded (slow consumers, Redis outages), plus a bounded
 * polling helper.
 */
import fs from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';

/** Resident set size of pid in KiB (VmRSS from /proc/<pid>/status). Throws if pid is gone. */
export function rssKiB(pid) {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
    if (!m) throw new Error(`no VmRSS in /proc/${pid}/status`);
    return Number(m[1]);
}

/** Number of open file descriptors of pid (entries of /proc/<pid>/fd). */
export function fdCount(pid) {
    return fs.readdirSync(`/proc/${pid}/fd`).length;
}

/** What the open descriptors of pid point at ("socket:[123]", "/dev/null", ...), sorted. */
export function fdTargets(pid) {
    const out = [];
    for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
        try {
            out.push(`${fd} -> ${fs.readlinkSync(`/proc/${pid}/fd/${fd}`)}`);
        } catch {
            /* closed meanwhile */
        }
    }
    return out.sort();
}

/**
 * Calls fn() every intervalMs until it returns a truthy value (resolved with it) or timeoutMs
 * passes; then rejects with `what` and the last value/exception seen. fn may be async.
 */
export async function pollUntil(fn, { timeoutMs = 5000, intervalMs = 50, what = 'condition' } = {}) {
    const deadline = Date.now() + timeoutMs;
    let last;
    for (;;) {
        try {
            last = await fn();
            if (last) return last;
        } catch (err) {
            last = err;
        }
        if (Date.now() >= deadline) {
            const detail = last instanceof Error ? last.message : JSON.stringify(last);
            throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${detail})`);
        }
        await delay(intervalMs);
    }
}

/** Decodes a /proc/net/tcp{,6} hex address ("0100007F" or 32 hex digits) to text. */
function decodeProcAddr(hex) {
    const words = hex.match(/.{8}/g).map((w) => w.match(/../g).reverse().join(''));
    if (words.length === 1) return words[0].match(/../g).map((b) => parseInt(b, 16)).join('.');
    const full = words.join('');
    if (/^0{20}ffff/i.test(full)) return `::ffff:${full.slice(24).match(/../g).map((b) => parseInt(b, 16)).join('.')}`;
    if (/^0{32}$/.test(full)) return '::';
    return full.match(/.{4}/g).join(':').toLowerCase();
}

/**
 * The local addresses of the TCP sockets in LISTEN state on `port` in this network namespace
 * (from /proc/net/tcp and /proc/net/tcp6), e.g. ['127.0.0.1'] or ['::'] for a wildcard.
 */
export function listenAddresses(port) {
    const out = [];
    for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
        let text;
        try {
            text = fs.readFileSync(file, 'utf8');
        } catch {
            continue;
        }
        for (const line of text.split('\n').slice(1)) {
            const f = line.trim().split(/\s+/);
            if (f.length < 4 || f[3] !== '0A') continue;
            const [addr, portHex] = f[1].split(':');
            if (parseInt(portHex, 16) === port) out.push(decodeProcAddr(addr));
        }
    }
    return out;
}
