/*
 * reconnect-policy — what to do after a connection ends, as pure functions of what happened
 * (close code and reason, or the answer to the refusal probe), the retry count and the
 * options. No timers, no sockets: connection.js carries the plans out, and the unit tests
 * drive every case directly.
 *
 * A plan is {kind, final, delayMs, nextAttempt, freshToken, code?, message?}:
 *   final       stop for good (the server refused this client; retrying cannot help)
 *   delayMs     wait this long before the next attempt
 *   nextAttempt the retry counter after this plan (backoff grows with it; `welcome` resets it)
 *   freshToken  call getToken() before the next attempt
 *
 * Backoff is exponential with "equal jitter" (half fixed, half random): a thousand browsers
 * that lose a node together do not come back in lockstep, and none retries at once in a loop.
 */

export const CLOSE = Object.freeze({
    NORMAL: 1000,
    GOING_AWAY: 1001, // node draining: reconnect now, the load balancer picks another node
    ABNORMAL: 1006, // no close frame: node killed, network gone
    POLICY: 1008, // "token expired", or repeated abuse
    TOO_BIG: 1009,
    INTERNAL: 1011,
    SLOW_CONSUMER: 4000,
    HEARTBEAT: 4001,
    CLIENT_TIMEOUT: 4100, // ours: no welcome in time, or the connection went silent
});

/** The delay of retry number `attempt` (0-based): up to initialDelayMs·2^attempt, capped. */
export function backoffDelay(attempt, o, random) {
    const ceiling = Math.min(o.maxDelayMs, o.initialDelayMs * 2 ** Math.min(attempt, 30));
    return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

const retry = (kind, delayMs, nextAttempt, extra = {}) => ({ kind, final: false, delayMs, nextAttempt, freshToken: false, ...extra });
const stop = (kind, code, message, extra = {}) => ({ kind, final: true, delayMs: 0, code, message, ...extra });

/**
 * After a connection that had opened is closed by the server or the network.
 * ctx: {attempt, canGetToken}.
 */
export function planAfterClose({ code, reason = '' }, { attempt, canGetToken }, o, random) {
    const soon = () => Math.round(random() * o.drainDelayMs);
    switch (code) {
        case CLOSE.GOING_AWAY:
            // Draining is not a failure: no backoff growth, only a little jitter so the
            // node's clients (already spread over its drain window) do not collide.
            return retry('drain', soon(), attempt);
        case CLOSE.POLICY:
            if (/expired/i.test(reason)) {
                if (!canGetToken) return stop('token_expired', 'invalid_token', 'token expired');
                return retry('token_expired', soon(), attempt, { freshToken: true });
            }
            // Abuse (too many rate_limited answers): coming straight back would be refused
            // again; wait long.
            return retry('abuse', Math.round(o.abuseDelayMs / 2 + (random() * o.abuseDelayMs) / 2), attempt + 1);
        case CLOSE.SLOW_CONSUMER:
            // We fell behind; the rejoin replays what we missed, which needs us to keep up:
            // never before the first backoff step.
            return retry('slow_consumer', Math.max(o.initialDelayMs, backoffDelay(attempt, o, random)), attempt + 1);
        case CLOSE.HEARTBEAT:
            // The server heard nothing from us for two periods (a frozen tab, a network
            // change): the first time, come back at once; repeated, back off.
            return retry('heartbeat', attempt === 0 ? soon() : backoffDelay(attempt, o, random), attempt + 1);
        default:
            return retry('lost', backoffDelay(attempt, o, random), attempt + 1);
    }
}

/**
 * After a connection failed before it opened, given what the plain GET /ws probe answered
 * (refusal.js): {status, error, message} with status 0 when the probe itself failed.
 * ctx: {attempt, canGetToken, tokenWasFresh}.
 */
export function planAfterRefusal(probe, { attempt, canGetToken, tokenWasFresh }, o, random) {
    if (probe.status === 401) {
        // A cached token may have expired (a laptop waking up): one fresh token, then judge.
        if (canGetToken && !tokenWasFresh) return retry('token_refused', 0, attempt, { freshToken: true });
        return stop('refused', probe.error || 'invalid_token', probe.message || 'the server refused the token', { status: 401 });
    }
    if (probe.status === 403) {
        return stop('refused', probe.error || 'forbidden_origin', probe.message || 'the server refused this origin', { status: 403 });
    }
    // 426 (the token would be accepted), 503 (draining, not ready), anything else, or no
    // answer at all: the failure was not about us; try again later.
    const kind = probe.status === 503 ? 'unavailable' : probe.status === 0 ? 'unreachable' : 'failed';
    return retry(kind, backoffDelay(attempt, o, random), attempt + 1);
}
