// The package as users get it: its entries resolve by name for import and require, the browser
// entry has no dependency, the demo's copy (web/chat-client.js) is the current build, the
// declarations type-check a usage file, and `npm pack` ships what the entries need.
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundle } from '../scripts/build.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const WEB_COPY = path.resolve(ROOT, '..', '..', 'web', 'chat-client.js');
const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));

const run = (file, args, opts = {}) =>
    new Promise((resolve) => {
        execFile(file, args, { cwd: ROOT, timeout: 120000, maxBuffer: 8 << 20, ...opts }, (err, stdout, stderr) =>
            resolve({ code: err ? (err.code ?? 1) : 0, stdout, stderr }),
        );
    });

before(async () => {
    const res = await run(process.execPath, ['scripts/build.mjs']);
    assert.equal(res.code, 0, res.stderr);
});

describe('the package', () => {
    it('import by name gives the Node entry, with a WebSocket', async () => {
        const mod = await import('@chat-gateway/client');
        assert.equal(mod.VERSION, pkg.version);
        assert.equal(mod.PROTOCOL_VERSION, '1.1');
        const c = new mod.ChatClient({ url: 'ws://127.0.0.1:1/ws', token: 't' });
        assert.equal(typeof c.options.WebSocket, 'function');
        assert.equal(c.state, 'idle');
    });

    it('require by name gives the CommonJS build of the same client', () => {
        const require = createRequire(import.meta.url);
        const mod = require('@chat-gateway/client');
        assert.equal(mod.VERSION, pkg.version);
        const c = new mod.ChatClient({ url: 'ws://127.0.0.1:1/ws', token: 't' });
        assert.equal(typeof c.options.WebSocket, 'function');
        assert.ok(new mod.ChatError('timeout') instanceof Error);
    });

    it('the browser entry depends on nothing but the platform', () => {
        for (const file of fs.readdirSync(path.join(ROOT, 'src'))) {
            if (file === 'node.js') continue;
            const text = fs.readFileSync(path.join(ROOT, 'src', file), 'utf8');
            for (const m of text.matchAll(/^import .* from '([^']+)';$/gm)) {
                assert.match(m[1], /^\.\/[\w-]+\.js$/, `${file} imports ${m[1]}`);
            }
            assert.doesNotMatch(text, /\brequire\(|\bprocess\.|\bBuffer\b/, `${file} uses a Node-only API`);
        }
        assert.deepEqual(pkg.dependencies ?? {}, {});
    });

    it("the demo's web/chat-client.js is the current build (else: npm run build in clients/js)", { skip: !fs.existsSync(WEB_COPY) }, () => {
        assert.ok(fs.readFileSync(WEB_COPY, 'utf8') === bundle().esm, 'web/chat-client.js is stale: run `npm run build` in clients/js');
    });

    it('the type declarations check a typed usage file (tsc --noEmit)', async () => {
        const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
        assert.ok(fs.existsSync(tsc), 'typescript is not installed: (cd clients/js && npm ci)');
        const res = await run(process.execPath, [tsc, '-p', 'test/tsconfig.json']);
        assert.equal(res.code, 0, `${res.stdout}${res.stderr}`);
    });

    it('npm pack ships the entries, the build and the types, and no tests', async () => {
        const res = await run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { env: { ...process.env, npm_config_loglevel: 'error' } });
        assert.equal(res.code, 0, res.stderr);
        const files = JSON.parse(res.stdout)[0].files.map((f) => f.path);
        for (const f of ['src/index.js', 'src/node.js', 'cjs/index.cjs', 'dist/chat-client.mjs', 'dist/chat-client.cjs', 'dist/index.d.cts', 'types/index.d.ts', 'README.md', 'LICENSE', 'package.json']) {
            assert.ok(files.includes(f), `${f} missing from the package: ${files.join(' ')}`);
        }
        assert.deepEqual(files.filter((f) => f.startsWith('test/') || f.startsWith('scripts/') || f.includes('node_modules')), []);
    });
});
