// A typed usage of the package, checked with `tsc --noEmit -p test/tsconfig.json` (never run):
// the declarations must accept what the README shows and refuse what is wrong.
import { ChatClient, ChatError, CLOSE, type HistoryPage, type MessageFrame, type StateEvent } from '@chat-gateway/client';

async function main(): Promise<void> {
    const chat = new ChatClient({
        url: 'wss://chat.example/ws',
        getToken: async ({ reason }) => {
            const res = await fetch(`/token?why=${reason}`);
            return ((await res.json()) as { token: string }).token;
        },
        queueLimit: 50,
    });
    const off = chat.on('message', (m) => {
        const text: string | undefined = m.text;
        const offset: number = m.offset;
        console.log(m.room, m.from.user, m.from.name ?? '', text, offset);
    });
    chat.on('state', (s: StateEvent) => {
        if (s.state === 'reconnecting') console.log(s.kind, s.delayMs, s.retryAt);
        if (s.state === 'closed' && s.final) console.log('refused:', s.reason);
    });
    chat.on('error', (err) => console.log(err.code, err.message, err.status));
    chat.on('reset', (r) => console.log(r.room, r.epoch));
    chat.on('gap', (g) => console.log(g.room, g.from, g.to, g.epochChanged));
    chat.on('read', (r) => console.log(r.user, r.offset));
    chat.on('joined', (j) => console.log(j.rejoin, j.recovered, j.read, j.unread));
    chat.connect();

    const joined = await chat.join('general');
    const epoch: string = joined.epoch;
    const ack = await chat.publish('general', 'hi');
    const offset: number = ack.offset;
    const page: HistoryPage = await chat.history('general', { limit: 50, before: offset });
    const first: MessageFrame | undefined = page.messages[0];
    const more: boolean = page.more;
    const users = await chat.presence('general');
    const names: string[] = users.map((u) => u.name ?? u.user);
    const ok = await chat.read('general', offset);
    const counts = await chat.unread();
    const total: number = counts.reduce((n, r) => n + r.unread, 0);
    const rtt: number = await chat.ping();
    const typed: boolean = chat.typing('general', true);
    const node: string | null = chat.node;
    console.log(epoch, first, more, names, ok.offset, total, rtt, typed, node, CLOSE.GOING_AWAY, chat.roomInfo('general')?.unread);
    try {
        await chat.direct('bob', 'psst');
    } catch (err) {
        if (err instanceof ChatError && err.code === 'queue_full') console.log('offline queue full');
    }
    off();
    chat.close();

    // @ts-expect-error: url is required
    new ChatClient({ token: 'x' });
    // @ts-expect-error: no such event
    chat.on('mesage', () => {});
    // @ts-expect-error: a message's offset is a number
    chat.on('message', (m) => m.offset.toUpperCase());
    // @ts-expect-error: publish takes text
    await chat.publish('general', { text: 'hi' });
    // @ts-expect-error: tokenIn is query or header
    new ChatClient({ url: 'ws://x/ws', token: 't', tokenIn: 'cookie' });
}

void main;
