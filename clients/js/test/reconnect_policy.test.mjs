// reconnect-policy: what the client decides after each way a connection can end (pure).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { backoffDelay, planAfterClose, planAfterRefusal } from '../src/reconnect-policy.js';
import { DEFAULTS } from '../src/client.js';

const o = DEFAULTS;
const mid = () => 0.5;
const ctx = { attempt: 0, canGetToken: true, tokenWasFresh: false };

describe('backoff', () => {
    it('grows exponentially, is capped, and is jittered between half and all of the step', () => {
        assert.equal(backoffDelay(0, o, () => 0), 250);
        assert.equal(backoffDelay(0, o, () => 1), 500);
        assert.equal(backoffDelay(3, o, () => 1), 4000);
        assert.equal(backoffDelay(20, o, () => 1), o.maxDelayMs);
        assert.equal(backoffDelay(20, o, () => 0), o.maxDelayMs / 2);
        assert.equal(backoffDelay(5000, o, mid), 0.75 * o.maxDelayMs, 'no overflow with huge attempt counts');
    });
});

describe('planAfterClose', () => {
    it('1001 (node draining): reconnect at once with a little jitter, no backoff growth', () => {
        const p = planAfterClose({ code: 1001 }, { ...ctx, attempt: 0 }, o, () => 1);
        assert.equal(p.kind, 'drain');
        assert.ok(p.delayMs <= o.drainDelayMs);
        assert.equal(p.nextAttempt, 0);
        assert.equal(p.final, false);
    });

    it('1008 "token expired": a fresh token and reconnect at once; final without getToken', () => {
        const p = planAfterClose({ code: 1008, reason: 'token expired' }, ctx, o, mid);
        assert.equal(p.kind, 'token_expired');
        assert.equal(p.freshToken, true);
        assert.ok(p.delayMs <= o.drainDelayMs);
        const q = planAfterClose({ code: 1008, reason: 'token expired' }, { ...ctx, canGetToken: false }, o, mid);
        assert.equal(q.final, true);
        assert.equal(q.code, 'invalid_token');
    });

    it('other 1008 (abuse): a long wait', () => {
        const p = planAfterClose({ code: 1008, reason: 'too many rate_limited requests' }, ctx, o, () => 0);
        assert.equal(p.kind, 'abuse');
        assert.ok(p.delayMs >= o.abuseDelayMs / 2);
        assert.equal(p.freshToken, false);
    });

    it('4000 (slow consumer): never before the first backoff step, growing', () => {
        const p = planAfterClose({ code: 4000 }, ctx, o, () => 0);
        assert.equal(p.kind, 'slow_consumer');
        assert.ok(p.delayMs >= o.initialDelayMs);
        assert.equal(p.nextAttempt, 1);
    });

    it('4001 (heartbeat timeout): at once the first time, backoff when repeated', () => {
        const first = planAfterClose({ code: 4001 }, ctx, o, () => 1);
        assert.equal(first.kind, 'heartbeat');
        assert.ok(first.delayMs <= o.drainDelayMs);
        const again = planAfterClose({ code: 4001 }, { ...ctx, attempt: 3 }, o, () => 1);
        assert.equal(again.delayMs, backoffDelay(3, o, () => 1));
    });

    it('1006 and anything else: exponential backoff', () => {
        for (const code of [1006, 1011, 1000, 1009, 4100]) {
            const p = planAfterClose({ code }, { ...ctx, attempt: 2 }, o, mid);
            assert.equal(p.kind, 'lost', String(code));
            assert.equal(p.delayMs, backoffDelay(2, o, mid));
            assert.equal(p.nextAttempt, 3);
        }
    });
});

describe('planAfterRefusal', () => {
    it('401 is final with the server reason; once retried with a fresh token when the token was cached', () => {
        const probe = { status: 401, error: 'invalid_token', message: 'bad signature' };
        const again = planAfterRefusal(probe, ctx, o, mid);
        assert.equal(again.final, false);
        assert.equal(again.freshToken, true);
        assert.equal(again.delayMs, 0);
        const final = planAfterRefusal(probe, { ...ctx, tokenWasFresh: true }, o, mid);
        assert.deepEqual([final.final, final.code, final.message, final.status], [true, 'invalid_token', 'bad signature', 401]);
        const noCallback = planAfterRefusal(probe, { ...ctx, canGetToken: false }, o, mid);
        assert.equal(noCallback.final, true);
    });

    it('403 is final', () => {
        const p = planAfterRefusal({ status: 403, error: 'forbidden_origin', message: 'origin not allowed' }, ctx, o, mid);
        assert.deepEqual([p.final, p.code, p.message], [true, 'forbidden_origin', 'origin not allowed']);
    });

    it('503, 426 and no answer retry with backoff', () => {
        for (const [status, kind] of [[503, 'unavailable'], [426, 'failed'], [0, 'unreachable'], [502, 'failed']]) {
            const p = planAfterRefusal({ status, error: '', message: '' }, { ...ctx, attempt: 1 }, o, mid);
            assert.deepEqual([p.final, p.kind, p.delayMs, p.nextAttempt], [false, kind, backoffDelay(1, o, mid), 2], String(status));
        }
    });
});
