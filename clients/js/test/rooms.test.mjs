// rooms: offsets, epochs, `since`, duplicate filtering and resets, without I/O.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { RoomTracker } from '../src/rooms.js';

const msg = (room, offset) => ({ type: 'message', room, offset });

describe('RoomTracker', () => {
    it('joins without since first, then with the last offset and epoch', () => {
        const t = new RoomTracker();
        assert.deepEqual(t.joinFrame('a'), { type: 'join', room: 'a' });
        t.joined({ type: 'join', room: 'a' }, { room: 'a', offset: 4, epoch: 'e1' });
        assert.equal(t.accept(msg('a', 5)), true);
        assert.deepEqual(t.joinFrame('a'), { type: 'join', room: 'a', since: { offset: 5, epoch: 'e1' } });
    });

    it('drops replayed duplicates and our own acked messages during a replay', () => {
        const t = new RoomTracker();
        t.joined({ type: 'join', room: 'a' }, { room: 'a', offset: 0, epoch: 'e1' });
        t.accept(msg('a', 1));
        t.acked('a', 3); // our publish, acked before 2 arrived
        assert.equal(t.info('a').offset, 1);
        t.accept(msg('a', 2));
        assert.equal(t.info('a').offset, 3, 'contiguous with the ack');
        const join = t.joinFrame('a');
        assert.deepEqual(join.since, { offset: 3, epoch: 'e1' });
        assert.equal(t.accept(msg('a', 2)), false, 'a replayed duplicate');
        assert.equal(t.accept(msg('a', 4)), true);
        t.joined(join, { room: 'a', offset: 4, epoch: 'e1', recovered: true });
        assert.equal(t.info('a').offset, 4);
    });

    it('a replayed message that we published and had acked is not handed over again', () => {
        const t = new RoomTracker();
        t.joined({ type: 'join', room: 'a' }, { room: 'a', offset: 0, epoch: 'e1' });
        t.accept(msg('a', 1));
        t.acked('a', 3); // 2 never arrived: the connection dropped
        const join = t.joinFrame('a');
        assert.equal(join.since.offset, 1);
        assert.equal(t.accept(msg('a', 2)), true);
        assert.equal(t.accept(msg('a', 3)), false);
        assert.equal(t.accept(msg('a', 4)), true);
        assert.equal(t.info('a').offset, 4);
    });

    it('reports a gap when recovery fails, and restarts from the join', () => {
        const t = new RoomTracker();
        t.joined({ type: 'join', room: 'a' }, { room: 'a', offset: 10, epoch: 'e1' });
        const join = t.joinFrame('a');
        assert.deepEqual(t.joined(join, { room: 'a', offset: 900, epoch: 'e1', recovered: false }), {
            room: 'a',
            epochChanged: false,
            from: 10,
            to: 900,
        });
        assert.equal(t.info('a').offset, 900);
        const again = t.joinFrame('a');
        const gap = t.joined(again, { room: 'a', offset: 2, epoch: 'e2', recovered: false });
        assert.equal(gap.epochChanged, true);
        assert.deepEqual(t.info('a'), { offset: 2, epoch: 'e2', read: undefined, unread: undefined });
    });

    it('outside a replay a lower offset is delivered (an old server restarting offsets)', () => {
        const t = new RoomTracker();
        t.joined({ type: 'join', room: 'a' }, { room: 'a', offset: 50, epoch: 'e1' });
        assert.equal(t.accept(msg('a', 1)), true);
    });

    it('reset replaces the since state with the new epoch', () => {
        const t = new RoomTracker();
        t.joined({ type: 'join', room: 'a' }, { room: 'a', offset: 50, epoch: 'e1', read: 40 });
        t.reset({ type: 'reset', room: 'a', epoch: 'e2', offset: 0 });
        assert.deepEqual(t.info('a'), { offset: 0, epoch: 'e2', read: undefined, unread: undefined });
        assert.equal(t.accept(msg('a', 1)), true);
        assert.deepEqual(t.joinFrame('a').since, { offset: 1, epoch: 'e2' });
    });

    it('read markers only move forward and give unread counts that are never negative', () => {
        const t = new RoomTracker();
        t.joined({ type: 'join', room: 'a' }, { room: 'a', offset: 10, epoch: 'e1', read: 7, unread: 3 });
        assert.deepEqual(t.info('a'), { offset: 10, epoch: 'e1', read: 7, unread: 3 });
        t.readMarker('a', 5);
        assert.equal(t.info('a').read, 7);
        t.readMarker('a', 12);
        assert.equal(t.info('a').unread, 0);
    });
});
