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
