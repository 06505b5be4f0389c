/*
 * chat_cli_terminal — the real chat-cli in a real terminal, for the chat-cli tests.
 *
 * The terminal is a pseudo-terminal made by util-linux `script` (Debian's bsdutils, an
 * essential package, so it is on every Debian machine): to chat-cli it is what a user's terminal
 * is — stdout and stderr interleave on one tty, typed lines go through the tty's line
 * discipline (and are echoed), closing the input is Ctrl-D at the prompt. The test reads the
 * screen as text (carriage returns dropped) and waits on it.
 *
 * Invariants:
 *  - every screen is written to tests/output/<test>/terminal-<n>-<label>.txt when it ends;
 *  - every terminal runs in its own process group (script + chat-cli) and stays in `open`
 *    until script has exited; closeTerminals() ends them (Ctrl-D, then SIGKILL of the group
 *    after a bound), and any group still running when the test process exits is SIGKILLed;
 *  - every wait is bounded and, when it fails, reports the end of the screen and how the
 *    program exited, if it did.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { outputDir } from '../lib/harness.mjs';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const BUILD_DIR = process.env.BUILD_DIR || path.join(REPO, 'build');
/** The binaries under test: BUILD_DIR's (ctest sets it), CHAT_CLI_BIN to override. */
export const CHAT_CLI = process.env.CHAT_CLI_BIN || path.join(BUILD_DIR, 'chat-cli');
export const CHAT_TOKEN = process.env.CHAT_TOKEN_BIN || path.join(BUILD_DIR, 'chat-token');

const open = new Set();
let started = 0;
process.on('exit', () => {
    for (const t of open) t.killGroup('SIGKILL');
});

const shellQuote = (s) => `'${String(s).replace(/'/g, `'\\''`)}'`;

export class Terminal {
    /** Starts `chat-cli args...` in a new terminal; env is added to the test's environment. */
    constructor(args, { env = {}, label = 'chat-cli' } = {}) {
        this.label = label;
        this.screen = '';
        this.waiters = [];
        this.exitInfo = null;
        const command = [CHAT_CLI, ...args].map(shellQuote).join(' ');
        // -q: no banner; -f: flush at once; -e: exit with chat-cli's status.
        this.child = spawn('script', ['-q', '-f', '-e', '-c', command, '/dev/null'], {
            stdio: ['pipe', 'pipe', 'pipe'],
            detached: true,
            env: { ...process.env, ...env },
        });
        open.add(this);
        const onData = (d) => {
            this.screen += d.toString('utf8').replace(/\r/g, '');
            this._wake();
        };
        this.child.stdout.on('data', onData);
        this.child.stderr.on('data', onData);
        this.child.stdin.on('error', () => {}); // the program may be gone before we type
        // The whole screen is kept in tests/output/<test>/ once the program has exited.
        this.logFile = path.join(outputDir(), `terminal-${++started}-${label}.txt`);
        this.exited = new Promise((resolve) => {
            const done = (code, signal) => {
                open.delete(this);
                this.exitInfo = { code, signal };
                fs.writeFileSync(this.logFile, `$ ${command}\n${this.screen}\n[exit ${JSON.stringify(this.exitInfo)}]\n`);
                this._wake();
                resolve(this.exitInfo);
            };
            this.child.once('exit', done);
            this.child.once('error', (err) => done(null, `spawn error: ${err.message}`));
        });
    }

    _tail(from = 0) {
        const text = this.screen.slice(from);
        return text.length > 3000 ? `...${text.slice(-3000)}` : text;
    }

    _wake() {
        for (const w of [...this.waiters]) {
            const m = w.re.exec(this.screen.slice(w.from));
            if (m || this.exitInfo) {
                this.waiters.splice(this.waiters.indexOf(w), 1);
                clearTimeout(w.timer);
                if (m) w.resolve(m);
                else w.reject(new Error(`${this.label} exited (${JSON.stringify(this.exitInfo)}) before ${w.re} appeared; screen:\n${this._tail(w.from)}`));
            }
        }
    }

    /** The current end of the screen, to wait for what appears after it. */
    mark() {
        return this.screen.length;
    }

    /** Resolves with the first match of re on the screen after position `from`; bounded. */
    waitFor(re, { timeoutMs = 10000, from = 0 } = {}) {
        const m = re.exec(this.screen.slice(from));
        if (m) return Promise.resolve(m);
        if (this.exitInfo) {
            return Promise.reject(new Error(`${this.label} has exited (${JSON.stringify(this.exitInfo)}); ${re} not on screen:\n${this._tail(from)}`));
        }
        return new Promise((resolve, reject) => {
            const w = { re, from, resolve, reject };
            w.timer = setTimeout(() => {
                this.waiters.splice(this.waiters.indexOf(w), 1);
                reject(new Error(`${this.label}: ${re} not on screen within ${timeoutMs} ms; screen:\n${this._tail(from)}`));
            }, timeoutMs);
            this.waiters.push(w);
        });
    }

    /** Types a line and Enter. */
    type(line) {
        this.child.stdin.write(`${line}\n`);
    }

    /** Ctrl-D: ends the input. */
    endInput() {
        this.child.stdin.end();
    }

    /** Every match of re, line by line, on the whole screen. */
    lines(re) {
        return this.screen
            .split('\n')
            .map((l) => re.exec(l))
            .filter(Boolean);
    }

    /** Resolves with {code, signal} once the program exits; kills it after timeoutMs. */
    async exit({ timeoutMs = 10000 } = {}) {
        const timer = setTimeout(() => this.killGroup('SIGKILL'), timeoutMs);
        const info = await this.exited;
        clearTimeout(timer);
        return info;
    }

    /** Types /quit and waits (bounded) for the exit. */
    quit(opts) {
        this.type('/quit');
        return this.exit(opts);
    }

    killGroup(sig) {
        try {
            process.kill(-this.child.pid, sig);
        } catch {
            /* already gone */
        }
    }
}

/** Ends every terminal still open: Ctrl-D, then SIGKILL after 5 s. */
export async function closeTerminals() {
    const all = [...open];
    for (const t of all) t.endInput();
    await Promise.all(all.map((t) => t.exit({ timeoutMs: 5000 })));
}

/** Runs chat-cli in a terminal with no input to give and resolves with {code, screen}. */
export async function runToEnd(args, { env, timeoutMs = 20000, label } = {}) {
    const t = new Terminal(args, { env, label });
    const { code } = await t.exit({ timeoutMs });
    return { code, screen: t.screen };
}
