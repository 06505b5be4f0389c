// Several Redis instances (--redis a,b): rooms and users are placed on an instance by a stable
// hash of their name (FNV-1a 64 mod N, common/shard.c), so every node agrees without talking.
// One instance down affects only its rooms (`unavailable` there); the others keep working.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { httpGet, redisCommand, startGateway, startRedis, stopAll } from './lib/harness.mjs';
import { connect, token } from './lib/client.mjs';

/* The same placement as common/shard.c. */
function shardIndex(name, count) {
    let h = 14695981039346656037n;
    for (const byte of Buffer.from(name, 'utf8')) {
        h ^= BigInt(byte);
        h = (h * 1099511628211n) & 0xffffffffffffffffn;
    }
    return Number(h % BigInt(count));
}


let r0;
let r1;
let A;
let B;
// One room on each instance.
const rooms = ['', ''];
for (let i = 0; rooms.includes(''); i++) {
    const name = `shard-room-${i}`;
    const s = shardIndex(name, 2);
    if (!rooms[s]) rooms[s] = name;
}

before(async () => {
    [r0, r1] = await Promise.all([startRedis(), startRedis()]);
    const url = `redis://127.0.0.1:${r0.port},redis://127.0.0.1:${r1.port}`;
    A = await startGateway({ redisUrl: url, nodeId: 'sa' });
    B = await startGateway({ redisUrl: url, nodeId: 'sb' });
});

after(stopAll);

const open = (node, sub) => connect(node.url, { token: token({ sub }), label: `${sub}@${node.port}` });

describe('several Redis instances', () => {
    it('places each room on its instance and delivers across nodes', async () => {
        const pub = await open(A, 'p');
        const sub = await open(B, 's');
        for (const room of rooms) {
            assert.equal((await pub.request({ type: 'join', room })).type, 'joined');
            assert.equal((await sub.request({ type: 'join', room })).type, 'joined');
            const ack = await pub.request({ type: 'publish', room, text: `hello ${room}` });
            assert.equal(ack.type, 'ack');
            const m = await sub.next((f) => f.type === 'message' && f.room === room);
            assert.equal(m.text, `hello ${room}`);
        }
        // Each room's keys are on the instance the hash names, and only there.
        for (const [i, room] of rooms.entries()) {
            const on = [r0, r1][i];
            const off = [r0, r1][1 - i];
            assert.equal(await redisCommand(on.port, 'EXISTS', `chat:{${room}}:seq`), ':1', `${room} not on instance ${i}`);
            assert.equal(await redisCommand(off.port, 'EXISTS', `chat:{${room}}:seq`), ':0', `${room} also elsewhere`);
        }
    });

    it('one instance down: its rooms answer unavailable, the other rooms keep working', async () => {
        const pub = await open(A, 'p2');
        const sub = await open(B, 's2');
        for (const room of rooms) {
            assert.equal((await pub.request({ type: 'join', room })).type, 'joined');
            assert.equal((await sub.request({ type: 'join', room })).type, 'joined');
        }
        await r1.kill('SIGKILL');
        const [up, down] = [rooms[0], rooms[1]];

        // The down instance's room: unavailable (bounded retry: the loss is noticed async).
        const deadline = Date.now() + 10000;
        let answer;
        do {
            answer = await pub.request({ type: 'publish', room: down, text: 'x' });
        } while (answer.type === 'ack' && Date.now() < deadline);
        assert.equal(answer.type, 'error');
        assert.equal(answer.code, 'unavailable');

        // The other instance's room is unaffected, across nodes.
        const ack = await pub.request({ type: 'publish', room: up, text: 'still here' });
        assert.equal(ack.type, 'ack');
        const m = await sub.next((f) => f.type === 'message' && f.room === up && f.text === 'still here');
        assert.equal(m.offset, ack.offset);
        // A new connection can still join a room on the live instance.
        const late = await open(A, 'late');
        assert.equal((await late.request({ type: 'join', room: up })).type, 'joined');
        // /readyz tells the truth: not every configured instance is reachable.
        assert.equal((await httpGet(A.port, '/readyz')).status, 503);
    });
});
