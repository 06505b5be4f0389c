/*
 * client — a WebSocket client for wire protocol v1 (shared/PROTOCOL.md) built on npm `ws`,
 * plus JWT minting with npm `jsonwebtoken`.
 *
 * Every received frame is parsed and appended to `frames` (all of them, for later inspection)
 * and to an inbox; next(predicate) consumes the first inbox frame that matches, waiting
 * (bounded) when none does yet, so a frame that arrives before anyone waits for it is never
 * missed. Frames that are not JSON are kept as {__raw: text}.
 *
 * Every client opened here is closed by the harness' stopAll() (via onCleanup).
 */
import WebSocket from 'ws';
import jwt from 'jsonwebtoken';
import { JWT_SECRET, onCleanup, problemsReport } from './harness.mjs';

const openClients = new Set();
onCleanup(async () => {
    await Promise.all([...openClients].map((c) => c.close()));
});

/**
 * A signed JWT. Defaults: sub "alice", exp one hour from now, HS256 with 'test-secret'.
 * Pass sub: null to omit sub, exp: null to omit exp; alg 'none' makes an unsigned token.
 * `extra` adds claims; `header` adds header fields.
 */
export function token({
    sub = 'alice',
    name,
    rooms,
    exp,
    nbf,
    iss,
    aud,
    alg = 'HS256',
    key = JWT_SECRET,
    extra = {},
    header,
} = {}) {
    const now = Math.floor(Date.now() / 1000);
    const payload = { ...extra };
    if (sub !== null) payload.sub = sub;
    if (name !== undefined) payload.name = name;
    if (rooms !== undefined) payload.rooms = rooms;
    if (exp !== null) payload.exp = exp ?? now + 3600;
    if (nbf !== undefined) payload.nbf = nbf;
    if (iss !== undefined) payload.iss = iss;
    if (aud !== undefined) payload.aud = aud;
    const options = { algorithm: alg };
    if (header) options.header = header;
    return jwt.sign(payload, alg === 'none' ? null : key, options);
}

/** Seconds since the epoch, as JWT claims use. */
export const nowSeconds = () => Math.floor(Date.now() / 1000);

/**
 * Builds the URL and headers of a handshake. Options: token + tokenIn ('header' default,
 * 'query', 'cookie'), headers, query (object of extra query parameters), origin.
 */
function handshakeRequest(url, { token: tok, tokenIn = 'header', headers = {}, query = {}, origin, wsOptions: extraWs } = {}) {
    const u = new URL(url);
    const hdrs = { ...headers };
    const q = { ...query };
    if (tok !== undefined && tok !== null) {
        if (tokenIn === 'header') hdrs.Authorization = `Bearer ${tok}`;
        else if (tokenIn === 'query') q.token = tok;
        else if (tokenIn === 'cookie') hdrs.Cookie = `token=${tok}`;
        else throw new Error(`unknown tokenIn ${tokenIn}`);
    }
    for (const [k, v] of Object.entries(q)) u.searchParams.set(k, v);
    const wsOptions = { headers: hdrs, handshakeTimeout: 5000, perMessageDeflate: false };
    if (origin !== undefined) wsOptions.origin = origin;
    // opts.wsOptions: extra options for the npm `ws` constructor (e.g. {autoPong: false}).
    if (extraWs) Object.assign(wsOptions, extraWs);
    return { href: u.href, wsOptions };
}

function describePredicate(pred) {
    if (typeof pred === 'function') return pred.description || pred.toString().slice(0, 120);
    return JSON.stringify(pred);
}

function toPredicate(pred) {
    if (typeof pred === 'function') return pred;
    if (pred && typeof pred === 'object') {
        const fn = (f) => Object.entries(pred).every(([k, v]) => f[k] === v);
        fn.description = JSON.stringify(pred);
        return fn;
    }
    throw new TypeError('predicate must be a function or an object pattern');
}

const briefFrames = (frames, n = 12) =>
    frames
        .slice(-n)
        .map((f) => JSON.stringify(f).slice(0, 300))
        .join('\n    ');

let requestSeq = 0;

export class Client {
    constructor(ws, label) {
        this.ws = ws;
        this.label = label;
        this.frames = [];
        this.inbox = [];
        this.waiters = [];
        this.welcome = null;
        this.closeInfo = null;
        this.closed = new Promise((resolve) => {
            ws.on('close', (code, reasonBuf) => {
                this.closeInfo = { code, reason: reasonBuf.toString('utf8'), at: Date.now() };
                openClients.delete(this);
                for (const w of this.waiters.splice(0)) {
                    clearTimeout(w.timer);
                    w.reject(
                        new Error(
                            `${this.label}: connection closed (code ${code} reason "${this.closeInfo.reason}") ` +
                                `while waiting for ${w.desc}; last frames:\n    ${briefFrames(this.frames)}${problemsReport()}`,
                        ),
                    );
                }
                resolve(this.closeInfo);
            });
        });
        ws.on('message', (data, isBinary) => this._receive(data, isBinary));
        ws.on('error', (err) => {
            this.lastError = err;
        });
        openClients.add(this);
    }

    _receive(data, isBinary) {
        const text = Buffer.isBuffer(data) ? data.toString('utf8') : Buffer.concat(data).toString('utf8');
        let frame;
        try {
            frame = JSON.parse(text);
        } catch {
            frame = { __raw: text };
        }
        if (isBinary) frame = { __binary: text };
        this.frames.push(frame);
        for (let i = 0; i < this.waiters.length; i++) {
            const w = this.waiters[i];
            let ok = false;
            try {
                ok = w.pred(frame);
            } catch {
                ok = false;
            }
            if (ok) {
                this.waiters.splice(i, 1);
                clearTimeout(w.timer);
                w.resolve(frame);
                return;
            }
        }
        this.inbox.push(frame);
    }

    get isOpen() {
        return this.ws.readyState === WebSocket.OPEN;
    }

    /** Sends obj as one JSON text frame. */
    send(obj) {
        this.ws.send(JSON.stringify(obj));
    }

    /** Sends a text frame verbatim (for malformed-input tests). */
    sendRaw(text) {
        this.ws.send(text);
    }

    /**
     * Resolves with the first frame (already received or yet to come) matching pred (a function
     * or an object pattern of top-level fields), consuming it; rejects after timeoutMs, or when
     * the connection closes, with the recent frames in the message.
     */
    next(pred, timeoutMs = 5000) {
        const fn = toPredicate(pred);
        const desc = describePredicate(pred);
        for (let i = 0; i < this.inbox.length; i++) {
            let ok = false;
            try {
                ok = fn(this.inbox[i]);
            } catch {
                ok = false;
            }
            if (ok) return Promise.resolve(this.inbox.splice(i, 1)[0]);
        }
        if (this.closeInfo) {
            return Promise.reject(
                new Error(`${this.label}: connection already closed (${JSON.stringify(this.closeInfo)}) waiting for ${desc}`),
            );
        }
        return new Promise((resolve, reject) => {
            const w = { pred: fn, desc, resolve, reject };
            w.timer = setTimeout(() => {
                const i = this.waiters.indexOf(w);
                if (i >= 0) this.waiters.splice(i, 1);
                reject(
                    new Error(
                        `${this.label}: timed out after ${timeoutMs} ms waiting for ${desc}; ` +
                            `${this.frames.length} frames received, last:\n    ${briefFrames(this.frames)}${problemsReport()}`,
                    ),
                );
            }, timeoutMs);
            this.waiters.push(w);
        });
    }

    /** Consumes `count` frames matching pred, in arrival order, within timeoutMs overall. */
    async collect(pred, count, timeoutMs = 10000) {
        const deadline = Date.now() + timeoutMs;
        const out = [];
        while (out.length < count) {
            const left = deadline - Date.now();
            if (left <= 0) {
                throw new Error(`${this.label}: collected only ${out.length}/${count} frames within ${timeoutMs} ms`);
            }
            try {
                out.push(await this.next(pred, left));
            } catch (err) {
                err.message = `collected ${out.length}/${count}: ${err.message}`;
                throw err;
            }
        }
        return out;
    }

    /**
     * Sends obj with a fresh unique id (unless obj has one) and resolves with the reply frame
     * carrying that id (joined/left/ack/pong/error/...), compared with its JSON type.
     */
    request(obj, timeoutMs = 5000) {
        const id = 'id' in obj ? obj.id : `q${++requestSeq}`;
        const fn = (f) => f.id === id && f.type !== 'message';
        fn.description = `reply to ${JSON.stringify({ ...obj, id }).slice(0, 200)}`;
        const reply = this.next(fn, timeoutMs);
        this.send({ ...obj, id });
        return reply;
    }

    /** Messages (type "message") received so far, all of them, in order. */
    messages(room) {
        return this.frames.filter((f) => f.type === 'message' && (room === undefined || f.room === room));
    }

    /**
     * {code, reason, at}: the connection's close (at: Date.now() when it arrived), also when it
     * already happened; rejects naming `what` and the last frames when it has not within ms.
     */
    closedWithin(ms, what = 'close') {
        let timer;
        return Promise.race([
            this.closed.finally(() => clearTimeout(timer)),
            new Promise((_, reject) => {
                timer = setTimeout(
                    () =>
                        reject(
                            new Error(
                                `${this.label}: no ${what} within ${ms} ms; last frames: ` +
                                    JSON.stringify(this.frames.slice(-5)).slice(0, 600),
                            ),
                        ),
                    ms,
                );
            }),
        ]);
    }

    /** Closes with `code` and waits (bounded) for the close; terminates the socket otherwise. */
    async close(code = 1000) {
        if (this.closeInfo) return this.closeInfo;
        try {
            if (this.ws.readyState === WebSocket.CONNECTING) this.ws.terminate();
            else this.ws.close(code);
        } catch {
            this.ws.terminate();
        }
        const timer = setTimeout(() => this.ws.terminate(), 2000);
        const info = await this.closed;
        clearTimeout(timer);
        return info;
    }
}

/** The response body as text; bounded (2 s), so a response without an end cannot hang us. */
function readBody(res, timeoutMs = 2000) {
    return new Promise((resolve) => {
        const chunks = [];
        const done = () => {
            clearTimeout(timer);
            resolve(Buffer.concat(chunks).toString('utf8'));
        };
        const timer = setTimeout(done, timeoutMs);
        res.on('data', (c) => chunks.push(c));
        res.on('end', done);
        res.on('error', done);
        res.on('aborted', done);
        res.on('close', done);
    });
}

function parseJson(text) {
    try {
        return JSON.parse(text);
    } catch {
        return null;
    }
}

/**
 * Opens a WebSocket and resolves with a Client once the first frame, `welcome`, has arrived
 * (client.welcome holds it). Rejects with err.status/err.body/err.text on a non-101 answer.
 * opts: token, tokenIn, headers, query, origin, label, timeoutMs (default 5000), wsOptions
 * (extra npm `ws` options, e.g. {autoPong: false}).
 */
export function connect(url, opts = {}) {
    const { href, wsOptions } = handshakeRequest(url, opts);
    const timeoutMs = opts.timeoutMs ?? 5000;
    const label = opts.label ?? 'client';
    return new Promise((resolve, reject) => {
        const ws = new WebSocket(href, wsOptions);
        const client = new Client(ws, label);
        let settled = false;
        const fail = (err) => {
            if (settled) return;
            settled = true;
            clearTimeout(timer);
            ws.terminate();
            reject(err);
        };
        const timer = setTimeout(
            () => fail(new Error(`${label}: no welcome within ${timeoutMs} ms from ${href}${problemsReport()}`)),
            timeoutMs,
        );
        ws.on('unexpected-response', async (req, res) => {
            const text = await readBody(res);
            req.destroy();
            const err = new Error(`${label}: handshake answered HTTP ${res.statusCode}: ${text.slice(0, 300)}`);
            err.status = res.statusCode;
            err.text = text;
            err.body = parseJson(text);
            fail(err);
        });
        ws.on('error', (err) => fail(new Error(`${label}: ${err.message}${problemsReport()}`)));
        ws.on('open', () => {
            client
                .next(() => true, Math.max(1, timeoutMs - 100))
                .then((first) => {
                    if (settled) return;
                    if (first.type !== 'welcome') {
                        fail(new Error(`${label}: first frame is not welcome: ${JSON.stringify(first)}`));
                        return;
                    }
                    settled = true;
                    clearTimeout(timer);
                    client.welcome = first;
                    resolve(client);
                })
                .catch(fail);
        });
    });
}

/**
 * Attempts a handshake and reports what happened, for rejection tests:
 * {status, body (parsed JSON or null), text, headers, upgraded, welcome}. `upgraded` is true
 * when a 101 was seen (the socket is then closed after the first frame or 2 s).
 */
export function handshake(url, opts = {}) {
    const { href, wsOptions } = handshakeRequest(url, opts);
    return new Promise((resolve, reject) => {
        const ws = new WebSocket(href, wsOptions);
        let upgraded = false;
        let settled = false;
        const finish = (result) => {
            if (settled) return;
            settled = true;
            clearTimeout(timer);
            resolve(result);
        };
        const timer = setTimeout(() => {
            ws.terminate();
            if (!settled) {
                settled = true;
                reject(new Error(`handshake to ${href} did not settle within 6000 ms${problemsReport()}`));
            }
        }, 6000);
        ws.on('upgrade', () => {
            upgraded = true;
        });
        ws.on('unexpected-response', async (req, res) => {
            const text = await readBody(res);
            req.destroy();
            finish({ status: res.statusCode, headers: res.headers, text, body: parseJson(text), upgraded });
        });
        ws.on('error', (err) => {
            if (!upgraded) finish({ status: 0, error: err.message, text: '', body: null, upgraded });
        });
        ws.on('open', () => {
            let welcome = null;
            const done = () => {
                ws.terminate();
                finish({ status: 101, headers: {}, text: '', body: null, upgraded: true, welcome });
            };
            const t = setTimeout(done, 2000);
            ws.once('message', (data) => {
                clearTimeout(t);
                welcome = parseJson(data.toString('utf8'));
                done();
            });
        });
    });
}

/** Convenience: connect n clients; each `opts` entry may be an object or a function of i. */
export function connectMany(url, n, opts) {
    return Promise.all(
        Array.from({ length: n }, (_, i) => connect(url, typeof opts === 'function' ? opts(i) : opts)),
    );
}
