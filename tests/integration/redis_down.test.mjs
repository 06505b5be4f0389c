// PROTOCOL.md §3/§5: with Redis down, a publish answers error `unavailable` (never silence) and
// the connection stays open; /readyz answers 503 and new handshakes get 503.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { stopAll, startCluster } from './lib/harness.mjs';
import { connect, handshake, token } from './lib/client.mjs';

const ROOM = 'rd';
let cluster;
let A;
let B;

// One top-level suite holds the hooks: root-level before/after are unreliable on Node 18.
describe('Redis down (§3, §5)', () => {
    before(async () => {
        cluster = await startCluster({ nodes: 2, args: ['--rate', '100000', '--rate-burst', '100000'] });
        [A, B] = cluster.nodes;
    });

    after(stopAll);

    /**
     * Publishes until the answer is `unavailable`: before the gateway has noticed the disconnect an
     * `ack` is acceptable; any other answer, or no answer within 3 s, fails. Bounded to 10 s.
     */
    async function publishUntilUnavailable(c) {
        const deadline = Date.now() + 10000;
        const answers = [];
        for (let i = 0; Date.now() < deadline; i++) {
            const reply = await c.request({ type: 'publish', room: ROOM, text: `while down ${i}`, id: `down-${i}` }, 3000);
            answers.push(reply);
            assert.equal(reply.id, `down-${i}`);
            if (reply.type === 'error') {
                assert.equal(reply.code, 'unavailable', `unexpected error while Redis is down: ${JSON.stringify(reply)}`);
                assert.equal(typeof reply.message, 'string');
                return answers;
            }
            assert.equal(reply.type, 'ack', `unexpected reply while Redis is down: ${JSON.stringify(reply)}`);
            await delay(100); // pacing between attempts, not synchronisation
        }
        assert.fail(`no 'unavailable' within 10 s of stopping Redis; answers: ${JSON.stringify(answers.slice(-5))}`);
    }

    describe('Redis goes down under a joined member', () => {
        let onA;
        let onB;

        before(async () => {
            onA = await connect(A.url, { token: token({ sub: 'ua' }), label: 'ua@A' });
            onB = await connect(B.url, { token: token({ sub: 'ub' }), label: 'ub@B' });
            for (const c of [onA, onB]) {
                const j = await c.request({ type: 'join', room: ROOM });
                assert.equal(j.type, 'joined', JSON.stringify(j));
            }
            const ack = await onA.request({ type: 'publish', room: ROOM, text: 'while up' });
            assert.equal(ack.type, 'ack', JSON.stringify(ack));
            await onB.next((f) => f.type === 'message' && f.offset === ack.offset);
            await cluster.redis.stop();
        });

        it('a publish answers error unavailable (never silence), on both nodes', async () => {
            const [answersA, answersB] = await Promise.all([publishUntilUnavailable(onA), publishUntilUnavailable(onB)]);
            // once unavailable, it stays unavailable while Redis is down
            for (const c of [onA, onB]) {
                const again = await c.request({ type: 'publish', room: ROOM, text: 'still down?' }, 3000);
                assert.equal(again.type, 'error', JSON.stringify(again));
                assert.equal(again.code, 'unavailable');
            }
            assert.ok(answersA.length >= 1 && answersB.length >= 1);
        });

        it('the connections stay open: ping → pong', async () => {
            for (const c of [onA, onB]) {
                assert.ok(c.isOpen, `${c.label} closed: ${JSON.stringify(c.closeInfo)}`);
                const pong = await c.request({ type: 'ping' }, 3000);
                assert.equal(pong.type, 'pong', JSON.stringify(pong));
            }
        });

        it('/readyz answers 503 and /healthz 200 while Redis is down', async () => {
            for (const n of [A, B]) {
                let ready;
                const deadline = Date.now() + 10000;
                while (Date.now() < deadline) {
                    ready = await n.get('/readyz');
                    if (ready.status === 503) break;
                    await delay(100);
                }
                assert.equal(ready.status, 503, `${n.nodeId} /readyz: ${ready.status} ${ready.body}`);
                assert.equal((await n.get('/healthz')).status, 200);
            }
        });

        it('a new handshake answers 503 while Redis is down', async () => {
            const res = await handshake(A.url, { token: token({ sub: 'late' }) });
            assert.equal(res.upgraded, false, 'upgraded while Redis is down');
            assert.equal(res.status, 503, `${res.status} ${res.text}`);
            assert.equal(typeof res.body?.error, 'string', res.text);
        });
    });
});
