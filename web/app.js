/*
 * app — the browser demo's entry: signing in and out, restoring a session after a reload (per
 * tab: sessionStorage, so two tabs can be two people), and the page's controls, which it hands
 * to the current session (session.js). The protocol lives in chat-client.js (a build of
 * clients/js, the @chat-gateway/client package); the views in the other files of web/.
 */
import { $ } from './dom.js';
import { Conversations } from './conversations.js';
import { showMe } from './header.js';
import { ChatSession } from './session.js';
import { hideSignIn, initSignIn, showSignIn } from './signin.js';

const SESSION_KEY = 'chat-demo-session';
let session = null; // the ChatSession of the person signed in

function start(s) {
    sessionStorage.setItem(SESSION_KEY, JSON.stringify(s));
    hideSignIn();
    showMe(s);
    session = new ChatSession(s, { onRefused: (reason) => refused(s, reason) });
    window.chatDemo = { client: session.client }; // for the curious, in the devtools console
    session.start(Conversations.saved());
}

function end() {
    session?.stop();
    session = null;
    window.chatDemo = null;
    sessionStorage.removeItem(SESSION_KEY);
    showMe(null);
}

function signOut() {
    end();
    Conversations.forget();
    showSignIn();
}

/** The server refused the token for good: say why and offer to sign in again. */
function refused(s, reason) {
    end();
    showSignIn({
        problem: `The server refused your token: ${reason || 'no reason given'}. Sign in again.`,
        name: s.name,
        pasted: !s.viaDevToken,
    });
}

initSignIn(start);
$('signout').addEventListener('click', signOut);
$('retry').addEventListener('click', () => session?.client.retryNow());
$('join-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const room = $('room-input').value.trim();
    if (room && session) session.join(room);
    $('room-input').value = '';
});
$('composer').addEventListener('submit', (e) => {
    e.preventDefault();
    const text = $('text').value;
    $('text').value = '';
    session?.send(text);
});
$('text').addEventListener('input', () => session?.input($('text').value));
$('text').addEventListener('blur', () => session?.typingOut.stop());
$('messages').addEventListener('scroll', () => session?.scrolled(), { passive: true });
document.addEventListener('visibilitychange', () => {
    const key = session?.conversations.current;
    if (key && document.visibilityState === 'visible') session.markRead(key);
});

const saved = JSON.parse(sessionStorage.getItem(SESSION_KEY) || 'null');
if (saved?.token) start(saved);
