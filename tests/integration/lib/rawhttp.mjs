/*
 * rawhttp — HTTP over a plain node:net socket, for tests that need control below what `ws` and
 * `http` allow: byte-at-a-time (slowloris) senders, oversized headers, and floods that should
 * not leave TIME_WAIT sockets behind (reset: true ends the connection with an RST).
 * 127.0.0.1 only; every operation is bounded.
 */
import net from 'node:net';

/** A WebSocket upgrade request for /ws (a fixed, valid Sec-WebSocket-Key). */
export function upgradeRequest(port, { path = '/ws', headers = {} } = {}) {
    const lines = [
        `GET ${path} HTTP/1.1`,
        `Host: 127.0.0.1:${port}`,
        'Upgrade: websocket',
        'Connection: Upgrade',
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
        'Sec-WebSocket-Version: 13',
        ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
    ];
    return `${lines.join('\r\n')}\r\n\r\n`;
}

/** Parses the status line of an HTTP response head; 0 when there is none yet. */
export function statusOf(text) {
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(text);
    return m ? Number(m[1]) : 0;
}

/**
 * Sends `request` (string or Buffer) on a fresh connection and collects the answer until the
 * server closes, a complete response (head + Content-Length body, or a 101 head) has arrived,
 * or timeoutMs passes. Resolves {status, text, closedByServer, timedOut, error, ms}.
 * reset: end our side with an RST instead of a FIN (no TIME_WAIT left on this host).
 */
export function rawRequest(port, request, { timeoutMs = 3000, reset = false } = {}) {
    return new Promise((resolve) => {
        const t0 = Date.now();
        const sock = net.connect({ host: '127.0.0.1', port });
        let buf = Buffer.alloc(0);
        let done = false;
        const finish = (how) => {
            if (done) return;
            done = true;
            clearTimeout(timer);
            const text = buf.toString('latin1');
            if (reset && !sock.destroyed) sock.resetAndDestroy();
            else sock.destroy();
            resolve({ status: statusOf(text), text, ms: Date.now() - t0, ...how });
        };
        const timer = setTimeout(() => finish({ timedOut: true, closedByServer: false }), timeoutMs);
        sock.on('connect', () => sock.write(request));
        sock.on('data', (d) => {
            buf = Buffer.concat([buf, d]);
            const text = buf.toString('latin1');
            const end = text.indexOf('\r\n\r\n');
            if (end < 0) return;
            if (statusOf(text) === 101) return finish({ closedByServer: false, timedOut: false });
            const cl = /\r\ncontent-length:\s*(\d+)/i.exec(text.slice(0, end));
            if (cl && buf.length >= end + 4 + Number(cl[1])) finish({ closedByServer: false, timedOut: false });
        });
        sock.on('end', () => finish({ closedByServer: true, timedOut: false }));
        sock.on('close', () => finish({ closedByServer: true, timedOut: false }));
        sock.on('error', (error) => finish({ closedByServer: true, timedOut: false, error: error.code || error.message }));
    });
}

/**
 * Opens a connection and writes `text` one byte every intervalMs until the server closes it,
 * the text is exhausted, or timeoutMs passes. Resolves {closedByServer, ms, bytesSent, received,
 * status, error}; `ms` is from connect to the close.
 */
export function dribble(port, text, { intervalMs = 1000, timeoutMs = 10000 } = {}) {
    return new Promise((resolve) => {
        const sock = net.connect({ host: '127.0.0.1', port });
        let t0 = Date.now();
        let sent = 0;
        let received = Buffer.alloc(0);
        let done = false;
        let ticker = null;
        const finish = (how) => {
            if (done) return;
            done = true;
            clearInterval(ticker);
            clearTimeout(timer);
            sock.destroy();
            const r = received.toString('latin1');
            resolve({ ms: Date.now() - t0, bytesSent: sent, received: r, status: statusOf(r), ...how });
        };
        const timer = setTimeout(() => finish({ closedByServer: false }), timeoutMs);
        sock.on('connect', () => {
            t0 = Date.now();
            const step = () => {
                if (sent >= text.length) return;
                if (!sock.destroyed && sock.writable) sock.write(text[sent++]);
            };
            step();
            ticker = setInterval(step, intervalMs);
        });
        sock.on('data', (d) => {
            received = Buffer.concat([received, d]);
        });
        sock.on('end', () => finish({ closedByServer: true }));
        sock.on('close', () => finish({ closedByServer: true }));
        sock.on('error', (error) => finish({ closedByServer: true, error: error.code || error.message }));
    });
}

/** Splits a byte stream of HTTP/1.1 responses (each with a Content-Length) into
 * [{status, headers (lower-case names), body}]; an incomplete tail is left out. */
export function parseResponses(text) {
    const out = [];
    let rest = text;
    for (;;) {
        const end = rest.indexOf('\r\n\r\n');
        if (end < 0) break;
        const head = rest.slice(0, end).split('\r\n');
        const status = statusOf(head[0]);
        if (!status) break;
        const headers = {};
        for (const line of head.slice(1)) {
            const i = line.indexOf(':');
            if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
        }
        const len = Number(headers['content-length'] || 0);
        if (rest.length < end + 4 + len) break;
        out.push({ status, headers, body: rest.slice(end + 4, end + 4 + len) });
        rest = rest.slice(end + 4 + len);
    }
    return out;
}

/**
 * Writes `parts` on one connection — the first in a single write() (so several requests travel
 * in one TCP segment), each further one after gapMs — and reads until the server closes or
 * timeoutMs passes. Resolves {responses (parseResponses), text, closedByServer, timedOut,
 * firstByteMs}.
 */
export function rawExchange(port, parts, { timeoutMs = 4000, gapMs = 200 } = {}) {
    const chunks = Array.isArray(parts) ? parts : [parts];
    return new Promise((resolve) => {
        const sock = net.connect({ host: '127.0.0.1', port });
        let buf = Buffer.alloc(0);
        let done = false;
        let t0 = 0;
        let firstByteMs = null;
        const timers = [];
        const finish = (how) => {
            if (done) return;
            done = true;
            timers.forEach(clearTimeout);
            sock.destroy();
            const text = buf.toString('latin1');
            resolve({ responses: parseResponses(text), text, firstByteMs, ...how });
        };
        timers.push(setTimeout(() => finish({ timedOut: true, closedByServer: false }), timeoutMs));
        sock.on('connect', () => {
            t0 = Date.now();
            chunks.forEach((c, i) =>
                timers.push(setTimeout(() => !sock.destroyed && sock.write(c), i * gapMs)),
            );
        });
        sock.on('data', (d) => {
            if (firstByteMs === null) firstByteMs = Date.now() - t0;
            buf = Buffer.concat([buf, d]);
        });
        sock.on('end', () => finish({ timedOut: false, closedByServer: true }));
        sock.on('close', () => finish({ timedOut: false, closedByServer: true }));
        sock.on('error', () => finish({ timedOut: false, closedByServer: true }));
    });
}
