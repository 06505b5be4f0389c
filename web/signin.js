/*
 * signin — how a person gets a token: by name through the cluster's dev-only /dev/token, or by
 * pasting one. A refused token ends up here too: the form comes back with the server's
 * reason (the client learns it from GET /ws, see clients/js/src/refusal.js), so the person can
 * sign in again instead of watching a retry loop.
 */
import { $ } from './dom.js';

/** A user id from a display name: "Zoë Smith" → "zoe-smith". */
export function userIdFor(name) {
    const id = name
        .normalize('NFKD')
        .replace(/[\u0300-\u036f]/g, '')
        .toLowerCase()
        .replace(/[^a-z0-9_.-]+/g, '-')
        .replace(/^-+|-+$/g, '')
        .slice(0, 48);
    return id || `user-${Math.random().toString(36).slice(2, 8)}`;
}

/** The claims of a JWT (unverified: only to show who it names), or null. */
export function jwtClaims(token) {
    try {
        const b64 = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
        const bytes = Uint8Array.from(atob(b64.padEnd(b64.length + ((4 - (b64.length % 4)) % 4), '=')), (c) => c.charCodeAt(0));
        return JSON.parse(new TextDecoder().decode(bytes));
    } catch {
        return null;
    }
}

/** A dev token from the cluster (the demo's getToken callback, also for refreshes). */
export async function fetchDevToken(user, name) {
    const url = `/dev/token?sub=${encodeURIComponent(user)}&name=${encodeURIComponent(name)}&ttl=3600`;
    const res = await fetch(url, { cache: 'no-store' });
    if (res.status === 404) {
        const err = new Error('This cluster does not hand out dev tokens (DEV_TOKENS=0). Paste a token instead.');
        err.noDevTokens = true;
        throw err;
    }
    const body = await res.json().catch(() => ({}));
    if (!res.ok || !body.token) throw new Error(body.message || `token request failed (HTTP ${res.status})`);
    return body.token;
}

/** Wires the form; onSession({token, user, name, viaDevToken}) starts a session. */
export function initSignIn(onSession) {
    $('signin').addEventListener('submit', async (event) => {
        event.preventDefault();
        const name = $('name').value.trim();
        if (!name) return;
        $('signin-problem').textContent = '';
        $('signin-button').disabled = true;
        try {
            const user = userIdFor(name);
            onSession({ token: await fetchDevToken(user, name), user, name, viaDevToken: true });
        } catch (err) {
            $('signin-problem').textContent = err.message;
            if (err.noDevTokens) $('token-box').open = true;
        } finally {
            $('signin-button').disabled = false;
        }
    });
    $('token-button').addEventListener('click', () => {
        const token = $('token').value.trim();
        const claims = jwtClaims(token);
        if (!claims || typeof claims.sub !== 'string') {
            $('signin-problem').textContent = 'That does not look like a JWT with a "sub" claim.';
            return;
        }
        $('signin-problem').textContent = '';
        onSession({ token, user: claims.sub, name: claims.name || claims.sub, viaDevToken: false });
    });
}

/** Shows the form, with a problem to explain (e.g. the server's reason for refusing a token). */
export function showSignIn({ problem = '', name = '', pasted = false } = {}) {
    $('chat').hidden = true;
    $('signin').hidden = false;
    $('signin-problem').textContent = problem;
    if (name) $('name').value = name;
    if (pasted) {
        $('token-box').open = true;
        $('token').value = '';
    }
}

export function hideSignIn() {
    $('signin').hidden = true;
    $('chat').hidden = false;
}
