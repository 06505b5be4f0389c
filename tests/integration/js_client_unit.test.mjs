// Issue 16: the JavaScript client package's own tests (clients/js/test/*.test.mjs: the
// reconnect/recovery state machine on a fake socket and clock, the package's entries, the
// demo's copy being current, tsc on the typed usage file), run here so ctest runs them. They
// need clients/js/node_modules (typescript, ws): tests/run.sh installs it with npm ci.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const dir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'clients', 'js', 'test');
for (const file of fs.readdirSync(dir).filter((f) => f.endsWith('.test.mjs')).sort()) {
    await import(pathToFileURL(path.join(dir, file)).href);
}
