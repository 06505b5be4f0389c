/*
 * header — the connection as the person sees it: a state pill (with a countdown while
 * waiting to reconnect and a "Retry now" button), the node serving the page — shown only while
 * connected, never a node we are no longer on — and who is signed in.
 */
import { $ } from './dom.js';

let countdown = null;

export function showState({ state, attempt = 0, retryAt, reason, final }) {
    const pill = $('state');
    pill.dataset.state = state;
    clearInterval(countdown);
    $('retry').hidden = state !== 'reconnecting';
    $('node-info').hidden = state !== 'open';
    if (state !== 'open') $('state').title = '';
    if (state === 'reconnecting') {
        const tick = () => {
            const left = Math.max(0, (retryAt - Date.now()) / 1000);
            pill.textContent = `reconnecting in ${left.toFixed(1)} s (try ${attempt + 1})`;
        };
        tick();
        countdown = setInterval(tick, 200);
        return;
    }
    const texts = { idle: 'not connected', connecting: 'connecting…', open: 'connected', closed: 'disconnected' };
    pill.textContent = state === 'closed' && final && reason ? `refused: ${reason}` : (texts[state] ?? state);
}

export function showNode(node) {
    $('node').textContent = node;
    $('state').title = `connected to ${node}`; // where phones, without room for #node-info, can see it
}

export function showMe(session) {
    const signedIn = Boolean(session);
    $('me').textContent = !session ? '' : session.name === session.user ? session.user : `${session.name} (${session.user})`;
    $('me-info').hidden = !signedIn;
    $('signout').hidden = !signedIn;
    if (!signedIn) {
        $('node-info').hidden = true;
        showState({ state: 'idle' });
    }
}
