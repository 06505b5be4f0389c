/*
 * ha_stream — the publish stream and the delivery audit of the Redis failover / resharding
 * tests (issue 13): publishers send paced, uniquely texted messages over many rooms while
 * something happens to Redis; afterwards every member's view of every room is checked against
 * the acks and against the room's stored history, as PROTOCOL.md §2 defines it.
 *
 * What a member may see in a room: `joined` (epoch E0, offset N0), then messages whose offsets
 * go N0+1, N0+2, ... without a gap, duplicate or reorder; a `reset` {epoch E, offset B} starts
 * a new epoch whose messages go B+1, B+2, ... . A publisher does not receive its own messages:
 * in its view an offset it was acked for may be skipped.
 *
 * What must hold (audit()):
 *  - every publish request was answered: `ack`, or an `unavailable` error (never silence);
 *  - each member's view is well-formed as above, holds no text twice, and agrees with every
 *    other member on the text at each (epoch, offset);
 *  - each room's final epoch (the last one every member is in) equals its stored history, and
 *    every member holds all of it (from the reset or the join on);
 *  - an acked message is in the final history at its acked offset and held by every member
 *    but its sender, unless the room was reset (every member saw a `reset`) and the ack came
 *    from the master that failed: then it may be missing (an acknowledged write lost at
 *    failover), never reissued with other content.
 * Nothing here knows Redis; the tests say what they did to it.
 */
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { connect, token } from './client.mjs';
import { keySlot } from './redis_topology.mjs';

/** Nodes of a cluster fixture that own slots (a fresh CLUSTER NODES view may still call a
 * replica a master). */
export const slotMasters = (cluster) => cluster.nodes.filter((n) => n.role === 'master' && n.slots.length > 0);

/** The master (of `masters`) owning the slot of {name}. */
export function ownerOf(masters, name) {
    const slot = keySlot(`{${name}}`);
    return masters.find((m) => m.slots.some(([a, b]) => slot >= a && slot <= b));
}

/** `count` names `${prefix}<i>`, spread evenly over `masters` by the slot of {name}. */
export function namesOnMasters(masters, prefix, count) {
    const per = new Map(masters.map((m) => [m.port, []]));
    const want = Math.ceil(count / masters.length);
    for (let i = 0; [...per.values()].some((l) => l.length < want); i++) {
        assert.ok(i < 100000, 'names cover every master');
        const name = `${prefix}${i}`;
        const list = per.get(ownerOf(masters, name).port);
        if (list.length < want) list.push(name);
    }
    // Interleave so that any prefix of the list covers every master.
    const lists = [...per.values()];
    const out = [];
    for (let k = 0; out.length < count; k++) for (const l of lists) if (out.length < count && l[k]) out.push(l[k]);
    return out;
}

/** The members of every HA test: publishers p0@n1 and p1@n2, then m2@n1 and m3@n2, each joined
 * to every room (asserted). nodes: the two gateways. */
export async function joinMembers(nodes, rooms) {
    const members = await Promise.all(
        ['p0', 'p1', 'm2', 'm3'].map((sub, i) => connect(nodes[i % 2].url, { token: token({ sub }), label: `${sub}@n${(i % 2) + 1}` })),
    );
    for (const c of members) {
        const joins = await Promise.all(rooms.map((room) => c.request({ type: 'join', room })));
        for (const j of joins) assert.equal(j.type, 'joined', JSON.stringify(j));
    }
    return members;
}

/** Records when each reply (by request id) reached client c. */
export function trackReplies(c) {
    const replies = new Map(); // id → {frame, at}
    c.ws.on('message', (data) => {
        let f;
        try {
            f = JSON.parse(data.toString('utf8'));
        } catch {
            return;
        }
        if (f.id !== undefined && f.type !== 'message') replies.set(f.id, { frame: f, at: Date.now() });
    });
    return replies;
}

/**
 * Publishes `perPublisher` messages from each publisher, round-robin over `rooms`, paced at
 * `ratePerPublisher` per second (requests are not awaited one by one: the stream keeps its
 * pace while Redis fails). onSent(count) is awaited after every tick (a test kills or moves
 * something at some point). Resolves with every request {id, room, text, by, sentAt}.
 */
export async function runStream({ publishers, rooms, perPublisher, ratePerPublisher, onSent = async () => {}, tag = 's' }) {
    const requests = [];
    const t0 = Date.now();
    let sent = 0;
    while (sent < perPublisher) {
        const due = Math.min(perPublisher, Math.floor(((Date.now() - t0) * ratePerPublisher) / 1000) + 1);
        for (; sent < due; sent++) {
            for (const [p, c] of publishers.entries()) {
                const room = rooms[(sent + p) % rooms.length];
                const id = `${tag}${p}-${sent}`;
                const text = `${tag}/${p}/${sent}`;
                requests.push({ id, room, text, by: p, sentAt: Date.now() });
                c.send({ type: 'publish', room, text, id });
            }
        }
        await onSent(sent * publishers.length);
        await delay(10);
    }
    return requests;
}

/** Waits (bounded) until every request has its reply in `replies` (one map per publisher). */
export async function awaitReplies(requests, replies, timeoutMs = 15000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
        const missing = requests.filter((r) => !replies[r.by].has(r.id));
        if (missing.length === 0) return;
        if (Date.now() > deadline) {
            assert.fail(`${missing.length} publish request(s) never answered, e.g. ${JSON.stringify(missing.slice(0, 3))}`);
        }
        await delay(50);
    }
}

/**
 * Publishes one message per room from `c` until it is acked (retrying `unavailable`), bounded;
 * resolves with the acks ({room, offset, text, by, at}; `by`: c's publisher index). This is
 * "publishing works again".
 */
export async function publishEverywhere(c, rooms, { by = 0, timeoutMs = 20000, tag = 'final' } = {}) {
    const deadline = Date.now() + timeoutMs;
    return Promise.all(
        rooms.map(async (room) => {
            for (let k = 0; ; k++) {
                const text = `${tag}/${room}/${k}`;
                const a = await c.request({ type: 'publish', room, text }, Math.max(100, deadline - Date.now()));
                if (a.type === 'ack') return { room, offset: a.offset, text, by, at: Date.now() };
                assert.equal(a.code, 'unavailable', `publish answered ${JSON.stringify(a)}`);
                assert.ok(Date.now() < deadline, `publishing to ${room} did not work again within ${timeoutMs} ms`);
                await delay(100);
            }
        }),
    );
}

/** Waits (bounded) until each member but the sender holds each of `marks` ({room, text}). */
export async function awaitMarks(members, marks, senderIndex, timeoutMs = 20000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
        const missing = [];
        for (const [i, c] of members.entries()) {
            if (i === senderIndex) continue;
            for (const m of marks) if (!c.frames.some((f) => f.type === 'message' && f.room === m.room && f.text === m.text)) missing.push(`${c.label}:${m.room}`);
        }
        if (missing.length === 0) return;
        if (Date.now() > deadline) assert.fail(`not delivered within ${timeoutMs} ms: ${missing.slice(0, 10).join(', ')}`);
        await delay(50);
    }
}

/** One member's view of a room as epoch segments [{epoch, base, msgs: [{offset, text}]}]. */
function segments(c, room) {
    const segs = [];
    for (const f of c.frames) {
        if (f.room !== room) continue;
        if (f.type === 'joined' && segs.length === 0) segs.push({ epoch: f.epoch, base: f.offset, msgs: [], reset: false });
        else if (f.type === 'reset') segs.push({ epoch: f.epoch, base: f.offset, msgs: [], reset: true });
        else if (f.type === 'message') {
            assert.ok(segs.length > 0, `${c.label}: message in ${room} before joined`);
            segs.at(-1).msgs.push({ offset: f.offset, text: f.text });
        }
    }
    return segs;
}

/** Checks one member's view of a room: offsets consecutive per epoch (skipping only what
 * `mayOwnSkip(epoch, offset)` says is its own message), no text twice, one text per
 * (epoch, offset) across members (`seen`). */
function checkView(who, segs, mayOwnSkip, seen) {
    const texts = new Set();
    for (const seg of segs) {
        let expect = seg.base + 1;
        for (const m of seg.msgs) {
            while (m.offset > expect && mayOwnSkip(seg.epoch, expect)) expect++;
            assert.equal(m.offset, expect, `${who}: epoch ${seg.epoch} offset ${m.offset} after ${expect - 1} (gap, duplicate or reorder)`);
            expect++;
            assert.ok(!texts.has(m.text), `${who}: ${m.text} held twice`);
            texts.add(m.text);
            const key = `${seg.epoch}#${m.offset}`;
            if (seen.has(key)) assert.equal(m.text, seen.get(key), `${who}: two texts at ${key}`);
        }
    }
}

/**
 * The audit (see the file comment). members[i] for i < the number of publishers are the
 * publishers (the `by` of requests); probes: acked publishes made after the stream
 * ({room, text, by, offset}); history: room → the messages of its final epoch
 * ([{offset, text}], from a `history` request made after the stream); failedAt: when the
 * master was killed (an ack received later comes from its successor). Returns figures.
 */
export function audit({ members, requests, replies, rooms, history, probes = [], failedAt = 0 }) {
    // retiredAcks: acked in an epoch a reset ended; lostAcks: of those, held by no member at all.
    const out = { acked: 0, unavailable: 0, retiredAcks: 0, lostAcks: 0, resetRooms: [], unackedStored: 0 };
    const acks = new Map(rooms.map((r) => [r, []]));
    for (const p of probes) acks.get(p.room).push(p);
    const author = new Map([...requests, ...probes].map((r) => [r.text, r])); // text → request
    for (const r of requests) {
        const { frame } = replies[r.by].get(r.id);
        if (frame.type === 'ack') {
            out.acked++;
            assert.equal(frame.room, r.room);
            r.offset = frame.offset;
            acks.get(r.room).push(r);
        } else {
            assert.equal(frame.type, 'error', `reply ${JSON.stringify(frame)}`);
            assert.equal(frame.code, 'unavailable', `publish ${r.id} answered ${JSON.stringify(frame)}`);
            out.unavailable++;
        }
    }
    for (const room of rooms) {
        const views = members.map((c) => segments(c, room));
        const finalEpoch = views[0].at(-1).epoch;
        const hist = history.get(room);
        const histText = new Map(hist.map((m) => [m.text, m.offset]));
        const histAt = new Map(hist.map((m) => [m.offset, m.text]));
        const seen = new Map(); // `${epoch}#${offset}` → text, over every member
        for (const segs of views) for (const seg of segs) for (const m of seg.msgs) if (!seen.has(`${seg.epoch}#${m.offset}`)) seen.set(`${seg.epoch}#${m.offset}`, m.text);
        views.forEach((segs, i) => {
            const who = `${members[i].label} in ${room}`;
            assert.equal(segs.at(-1).epoch, finalEpoch, `${who}: ends in the room's final epoch`);
            const ownLost = new Set(acks.get(room).filter((a) => a.by === i && !histText.has(a.text)).map((a) => a.offset));
            const isOwn = (text) => text !== undefined && author.get(text)?.by === i;
            const mayOwnSkip = (epoch, k) =>
                epoch === finalEpoch ? isOwn(histAt.get(k)) : isOwn(seen.get(`${epoch}#${k}`)) || (!seen.has(`${epoch}#${k}`) && ownLost.has(k));
            checkView(who, segs, mayOwnSkip, seen);
            // The final epoch: everything stored after its base, but the member's own.
            const last = segs.at(-1);
            const held = last.msgs.map((m) => [m.offset, m.text]);
            const wanted = hist.filter((m) => m.offset > last.base && !isOwn(m.text)).map((m) => [m.offset, m.text]);
            assert.deepEqual(held, wanted, `${who}: final epoch ${finalEpoch} differs from the stored history`);
        });
        const everyReset = views.every((segs) => segs.some((s) => s.reset));
        if (views.some((segs) => segs.some((s) => s.reset))) out.resetRooms.push(room);
        for (const a of acks.get(room)) {
            if (histText.has(a.text)) {
                assert.equal(histText.get(a.text), a.offset, `${room}: ${a.text} acked at ${a.offset}, stored at ${histText.get(a.text)}`);
                continue;
            }
            assert.ok(everyReset, `${room}: acked ${a.text} (offset ${a.offset}) is not stored and not every member was reset`);
            out.retiredAcks++;
            if (![...seen.values()].includes(a.text)) out.lostAcks++;
            // Only the failed master's acks can be lost: one its successor gave must survive.
            assert.ok(
                !(failedAt && (a.at ?? replies[a.by].get(a.id).at) > failedAt),
                `${room}: ${a.text} acked at offset ${a.offset} after the failure, then lost (an offset reissued in the old epoch)`,
            );
        }
        out.unackedStored += hist.filter((m) => author.has(m.text) && author.get(m.text).offset === undefined).length;
    }
    return out;
}

/** room → its stored messages [{offset, text}] (newest `limit`), read through client c. */
export async function readHistory(c, rooms, limit = 1000) {
    const out = new Map();
    for (const room of rooms) {
        const h = await c.request({ type: 'history', room, limit });
        assert.equal(h.type, 'history', JSON.stringify(h));
        assert.ok(!h.more, `${room}: history fits one page`);
        out.set(room, h.messages.map((m) => ({ offset: m.offset, text: m.text })));
    }
    return out;
}

/** Sum of a counter over nodes' /metrics (parsePrometheus from prom.mjs passed in). */
export async function metricSum(nodes, name, parsePrometheus) {
    let total = 0;
    for (const n of nodes) {
        if (n.exited) continue;
        const res = await n.get('/metrics');
        const fam = parsePrometheus(res.body).families.get(name);
        if (fam) total += fam.samples.reduce((s, x) => s + x.value, 0);
    }
    return total;
}
