/*
 * webhook_receiver — a real HTTP(S) receiver for the gateway's webhooks (PROTOCOL.md §9), as an
 * application would run it: it checks every request's X-Chat-Signature (HMAC-SHA256 of the raw
 * body with the shared secret) before looking at the body, answers with a status the test
 * chooses, and records what it saw.
 *
 *   requests   every request, in arrival order: {id, status, signatureOk, body, event, at}
 *   events()   what the application keeps: the events it answered 2xx to, each id once (the
 *              duplicates at-least-once delivery may bring are dropped), in arrival order
 *   respond    (event, attemptsOfThisId) => status, or {status, delayMs} to answer late;
 *              default 200 for everything
 *   stop()     closes the listener and every open connection (the port then refuses)
 *   start()    listens again on the same port
 *   waitFor(pred, timeoutMs)  the first kept event matching pred, waiting (bounded)
 *
 * 127.0.0.1 only. A bad signature answers 401 and is recorded with signatureOk false: tests
 * assert there is none. Every receiver is closed by the harness' stopAll() (onCleanup).
 */
import crypto from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { freePort, onCleanup } from './harness.mjs';

const open = new Set();
onCleanup(async () => {
    await Promise.all([...open].map((r) => r.stop()));
});

export function sign(secret, body) {
    return `sha256=${crypto.createHmac('sha256', secret).update(body).digest('hex')}`;
}

function signatureOk(secret, header, body) {
    const want = Buffer.from(sign(secret, body));
    const got = Buffer.from(String(header ?? ''));
    return got.length === want.length && crypto.timingSafeEqual(got, want);
}

/**
 * Starts a receiver on 127.0.0.1 (`port`, default: a free one from the harness) and resolves
 * once it listens. `tls: {key, cert}` makes it HTTPS.
 */
export async function startReceiver({ secret, port, path = '/hook', tls } = {}) {
    port = port ?? (await freePort());
    const requests = [];
    const attempts = new Map(); // id → requests seen for it
    const kept = []; // 2xx-answered events, first of each id
    const keptIds = new Set();
    const waiters = new Set();
    const sockets = new Set();

    const r = {
        requests,
        respond: () => 200,
        port,
        url: '',
        events: () => kept.slice(),
        attemptsOf: (id) => attempts.get(id) ?? 0,
        badSignatures: () => requests.filter((q) => !q.signatureOk),
        waitFor(pred, timeoutMs = 10000, what = 'a webhook event') {
            const found = kept.find(pred);
            if (found) return Promise.resolve(found);
            return new Promise((resolve, reject) => {
                const w = {
                    pred,
                    resolve: (e) => {
                        clearTimeout(w.timer);
                        waiters.delete(w);
                        resolve(e);
                    },
                };
                w.timer = setTimeout(() => {
                    waiters.delete(w);
                    const seen = kept.map((e) => `${e.type}:${e.user ?? e.to}`).join(', ');
                    reject(new Error(`no ${what} within ${timeoutMs} ms (kept: ${seen || 'none'})`));
                }, timeoutMs);
                waiters.add(w);
            });
        },
        stop,
        start,
    };

    function handle(req, res) {
        const chunks = [];
        req.on('data', (c) => chunks.push(c));
        req.on('end', () => {
            const raw = Buffer.concat(chunks);
            const q = {
                id: req.headers['x-chat-event-id'],
                signatureOk: signatureOk(secret, req.headers['x-chat-signature'], raw),
                contentType: req.headers['content-type'],
                method: req.method,
                path: req.url,
                body: raw.toString('utf8'),
                at: Date.now(),
                status: 401,
            };
            requests.push(q);
            if (q.signatureOk && req.method === 'POST' && req.url === path) {
                try {
                    q.event = JSON.parse(q.body);
                } catch {
                    q.event = null;
                }
                const n = (attempts.get(q.event?.id) ?? 0) + 1;
                attempts.set(q.event?.id, n);
                const decision = q.event ? r.respond(q.event, n) : 400;
                q.status = typeof decision === 'number' ? decision : decision.status;
                q.delayMs = typeof decision === 'number' ? 0 : decision.delayMs ?? 0;
            }
            // The application keeps an event when it decides 2xx, even if the answer is late
            // (the sender may have given up by then and will send it again: a duplicate).
            if (q.status >= 200 && q.status < 300 && !keptIds.has(q.event.id)) {
                keptIds.add(q.event.id);
                const e = { ...q.event, receivedAt: q.at };
                kept.push(e);
                for (const w of [...waiters]) if (w.pred(e)) w.resolve(e);
            }
            const answer = () => {
                res.writeHead(q.status, { 'content-type': 'text/plain' });
                res.end(String(q.status));
            };
            if (q.delayMs) setTimeout(answer, q.delayMs);
            else answer();
        });
    }

    const server = tls ? https.createServer({ key: tls.key, cert: tls.cert }, handle) : http.createServer(handle);
    server.on('connection', (s) => {
        sockets.add(s);
        s.on('close', () => sockets.delete(s));
    });

    function start() {
        return new Promise((resolve, reject) => {
            server.once('error', reject);
            server.listen(r.port, '127.0.0.1', () => {
                server.off('error', reject);
                r.port = server.address().port;
                r.url = `${tls ? 'https' : 'http'}://127.0.0.1:${r.port}${path}`;
                open.add(r);
                resolve(r);
            });
        });
    }

    function stop() {
        open.delete(r);
        if (!server.listening) return Promise.resolve();
        return new Promise((resolve) => {
            server.close(() => resolve());
            for (const s of sockets) s.destroy();
        });
    }

    return start();
}
