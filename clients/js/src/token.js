/*
 * token — what the client needs to know about its JWT without verifying it: when it expires.
 * The server is the only judge of a token; the client reads `exp` only to refresh in time and
 * to avoid a handshake that is sure to fail.
 */

/** The token's `exp` in milliseconds since the epoch, or null (no exp, or not a JWT). */
export function tokenExpiry(token) {
    if (typeof token !== 'string') return null;
    try {
        const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
        const binary = atob(part.padEnd(part.length + ((4 - (part.length % 4)) % 4), '='));
        const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
        const exp = JSON.parse(new TextDecoder().decode(bytes)).exp;
        return typeof exp === 'number' && Number.isFinite(exp) ? exp * 1000 : null;
    } catch {
        return null;
    }
}

/**
 * Milliseconds from nowMs until a token expiring at expMs should be refreshed: refreshBeforeMs
 * ahead of expiry, but never later than half-way through what is left, so a short-lived token
 * (tests, strict deployments) still gets its refresh well before the server closes at exp.
 */
export function refreshDelay(expMs, nowMs, refreshBeforeMs) {
    const left = expMs - nowMs;
    if (left <= 0) return 0;
    return Math.max(left / 2, left - refreshBeforeMs);
}
