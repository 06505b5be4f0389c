/*
 * refusal — why did the WebSocket handshake fail?
 *
 * A browser reports a refused upgrade (401, 403, 503) exactly like a dead server: a close with
 * code 1006 and no body. So after a connection fails before `open`, the client asks the same
 * question over plain HTTP: GET /ws with the same token and no Upgrade header. The gateway
 * answers it with the checks of the upgrade (PROTOCOL.md §1): 401/403 with the JSON body
 * {"error":..,"message":..}, 503 while draining or not ready, 426 when the token would be
 * accepted (the failure was elsewhere). The answer decides between "stop and say why" and
 * "retry with backoff" (reconnect-policy.js).
 *
 * Cross-origin pages get no readable answer without CORS headers: that counts as "no answer"
 * (status 0), so such a client keeps retrying rather than giving up on a guess.
 */

/** The http(s) URL of a ws(s) URL. */
export function httpUrlOf(wsUrl) {
    return wsUrl.replace(/^ws(s?):/i, 'http$1:');
}

/**
 * Resolves {status, error, message}; never rejects. status 0: no answer (network error,
 * timeout, CORS, or no fetch in this environment).
 */
export async function probeRefusal({ fetch: fetchFn, url, headers = {}, timers, timeoutMs }) {
    if (typeof fetchFn !== 'function') return { status: 0, error: '', message: 'no fetch() to ask why' };
    const controller = typeof AbortController === 'function' ? new AbortController() : null;
    const timer = timers.setTimeout(() => controller?.abort(), timeoutMs);
    try {
        const res = await fetchFn(httpUrlOf(url), {
            method: 'GET',
            headers,
            cache: 'no-store',
            redirect: 'manual',
            signal: controller?.signal,
        });
        let body = {};
        try {
            body = JSON.parse(await res.text());
        } catch {
            body = {};
        }
        return {
            status: res.status,
            error: typeof body?.error === 'string' ? body.error : '',
            message: typeof body?.message === 'string' ? body.message : '',
        };
    } catch (err) {
        return { status: 0, error: '', message: err?.message || 'no answer' };
    } finally {
        timers.clearTimeout(timer);
    }
}
