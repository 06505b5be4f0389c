// Issue 11: presence used to run one script per room per second on every node (an idle
// connection in 100 rooms cost ~120 script calls a second). Now each node refreshes one
// liveness deadline a second, whatever its rooms: Redis work follows changes, not rooms × time.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startGateway, startRedis, stopAll } from './lib/harness.mjs';
import { connect, token } from './lib/client.mjs';

let redis;
let node;

before(async () => {
    redis = await startRedis();
    node = await startGateway({ redisPort: redis.port, heartbeat: 2, args: ['--join-burst', '200'] });
});

after(stopAll);

/* Total calls of scripts (EVAL + EVALSHA) so far, from INFO commandstats. */
function scriptCalls() {
    return new Promise((resolve, reject) => {
        const s = net.connect(redis.port, '127.0.0.1');
        let buf = '';
        const t = setTimeout(() => {
            s.destroy();
            reject(new Error('INFO timed out'));
        }, 3000);
        s.on('data', (d) => {
            buf += d;
            const m = /^\$(\d+)\r\n/.exec(buf);
            if (m && buf.length >= m[0].length + Number(m[1])) {
                clearTimeout(t);
                s.end();
                let n = 0;
                for (const c of buf.matchAll(/cmdstat_(?:eval|evalsha):calls=(\d+)/g)) n += Number(c[1]);
                resolve(n);
            }
        });
        s.write('*2\r\n$4\r\nINFO\r\n$12\r\ncommandstats\r\n');
    });
}

describe('presence cost', () => {
    it('an idle connection in 100 rooms costs Redis about one script a second', async () => {
        const c = await connect(node.url, { token: token({ sub: 'idler' }) });
        const joins = await Promise.all(
            Array.from({ length: 100 }, (_, i) => c.request({ type: 'join', room: `idle-${i}` }, 10000)),
        );
        assert.ok(joins.every((j) => j.type === 'joined'));
        await new Promise((resolve) => setTimeout(resolve, 500)); // the joins' own scripts settle
        const a = await scriptCalls();
        await new Promise((resolve) => setTimeout(resolve, 4000));
        const calls = (await scriptCalls()) - a;
        assert.ok(calls <= 10, `${calls} script calls in 4 s of idleness`);
        await c.close();
    });
});
