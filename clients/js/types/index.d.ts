/*
 * Type declarations of @chat-gateway/client (the same for import and require). Frame shapes
 * follow PROTOCOL.md v1.1; fields a server may add later are allowed by the index signatures
 * only where the protocol says frames may grow.
 */

export declare const VERSION: string;
export declare const PROTOCOL_VERSION: string;

export declare const CLOSE: Readonly<{
    NORMAL: 1000;
    GOING_AWAY: 1001;
    ABNORMAL: 1006;
    POLICY: 1008;
    TOO_BIG: 1009;
    INTERNAL: 1011;
    SLOW_CONSUMER: 4000;
    HEARTBEAT: 4001;
    CLIENT_TIMEOUT: 4100;
}>;

/** Error codes of the server (PROTOCOL.md §3) and of the client. */
export type ServerErrorCode =
    | 'bad_request'
    | 'unknown_type'
    | 'invalid_room'
    | 'forbidden'
    | 'not_joined'
    | 'too_large'
    | 'rate_limited'
    | 'limit_exceeded'
    | 'unavailable'
    | 'internal'
    | 'invalid_token';
export type ClientErrorCode =
    | 'timeout'
    | 'disconnected'
    | 'closed'
    | 'queue_full'
    | 'token_unavailable'
    | 'forbidden_origin'
    | 'no_websocket';
export type ErrorCode = ServerErrorCode | ClientErrorCode | (string & {});

export declare class ChatError extends Error {
    constructor(code: ErrorCode, message?: string, details?: Partial<Pick<ChatError, 'frame' | 'status' | 'request' | 'room'>>);
    readonly name: 'ChatError';
    readonly code: ErrorCode;
    /** The server's error frame, when the server answered with one. */
    readonly frame?: ErrorFrame;
    /** The HTTP status of a refused handshake (401, 403). */
    readonly status?: number;
    /** The request that failed. */
    readonly request?: RequestFrame;
    readonly room?: string;
}

/* ---------- frames ---------- */

export interface Sender {
    user: string;
    name?: string;
}

export interface Since {
    offset: number;
    epoch: string;
}

export interface WelcomeFrame {
    type: 'welcome';
    conn: string;
    user: string;
    node: string;
    ts: number;
    heartbeat: number;
}

export interface MessageFrame {
    type: 'message';
    room: string;
    offset: number;
    ts: number;
    from: Sender;
    text?: string;
    /** Messages from the backend API may carry any JSON value instead of text. */
    data?: unknown;
}

export interface JoinedFrame {
    type: 'joined';
    room: string;
    id?: string | number;
    offset: number;
    epoch: string;
    /** Present on a join with since: whether every missed message was replayed. */
    recovered?: boolean;
    /** Our read marker in the room (servers with read markers, PROTOCOL.md §8). */
    read?: number;
    unread?: number;
}

export interface LeftFrame {
    type: 'left';
    room: string;
    id?: string | number;
}

export interface AckFrame {
    type: 'ack';
    id: string | number;
    ts: number;
    room?: string;
    /** The message's offset (publish only). */
    offset?: number;
}

export interface DirectFrame {
    type: 'direct';
    from: Sender;
    to: string;
    ts: number;
    text?: string;
    data?: unknown;
}

export interface UserJoinedFrame {
    type: 'user_joined';
    room: string;
    user: string;
    name?: string;
    ts: number;
}

export interface UserLeftFrame {
    type: 'user_left';
    room: string;
    user: string;
    ts: number;
}

export interface TypingFrame {
    type: 'typing';
    room: string;
    user: string;
    state: boolean;
}

export interface ReadFrame {
    type: 'read';
    room: string;
    user: string;
    offset: number;
    ts: number;
}

export interface ReadOkFrame {
    type: 'read_ok';
    id?: string | number;
    room: string;
    offset: number;
}

export interface ResetFrame {
    type: 'reset';
    room: string;
    epoch: string;
    offset: number;
}

export interface RefreshedFrame {
    type: 'refreshed';
    id?: string | number;
    exp: number;
}

export interface PongFrame {
    type: 'pong';
    id?: string | number;
    ts: number;
}

export interface ErrorFrame {
    type: 'error';
    id?: string | number;
    code: ServerErrorCode | (string & {});
    message: string;
}

export interface PresenceUser {
    user: string;
    name?: string;
}

export interface UnreadRoom {
    room: string;
    offset: number;
    read: number;
    unread: number;
}

export type ServerFrame =
    | WelcomeFrame
    | MessageFrame
    | JoinedFrame
    | LeftFrame
    | AckFrame
    | DirectFrame
    | UserJoinedFrame
    | UserLeftFrame
    | TypingFrame
    | ReadFrame
    | ReadOkFrame
    | ResetFrame
    | RefreshedFrame
    | PongFrame
    | ErrorFrame
    | { type: 'presence'; id?: string | number; room?: string; users?: PresenceUser[]; user?: string; online?: boolean }
    | { type: 'history'; id?: string | number; room: string; messages: MessageFrame[]; more?: boolean }
    | { type: 'unread'; id?: string | number; rooms: UnreadRoom[] };

/** A request frame as the app may pass it to request(); the client adds the id. */
export interface RequestFrame {
    type: string;
    [field: string]: unknown;
}

/* ---------- events ---------- */

export type ConnectionState = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed';

/** Why the client is waiting to reconnect. */
export type ReconnectKind =
    | 'drain'
    | 'token_expired'
    | 'token_refused'
    | 'token_unavailable'
    | 'abuse'
    | 'slow_consumer'
    | 'heartbeat'
    | 'lost'
    | 'unavailable'
    | 'unreachable'
    | 'failed';

export interface StateEvent {
    state: ConnectionState;
    previous: ConnectionState;
    /** Consecutive failed attempts so far. */
    attempt: number;
    /** open: the node now serving us. */
    node?: string;
    /** reconnecting: why, and when the next attempt starts. */
    kind?: ReconnectKind;
    delayMs?: number;
    retryAt?: number;
    /** The close code (reconnecting), or the error code (a final `closed`). */
    code?: number | ErrorCode;
    reason?: string;
    /** HTTP status the refusal probe got (reconnecting after a failed handshake, or final). */
    status?: number;
    /** closed: true when the server refused us for good (the reason says why). */
    final?: boolean;
}

export interface CloseEvent {
    code: number;
    reason: string;
    wasClean: boolean;
    /** Whether the connection had been welcomed. */
    welcomed: boolean;
}

export interface GapEvent {
    room: string;
    /** The room's history was lost on the server (new epoch). */
    epochChanged: boolean;
    /** Our last offset, and the room's offset at the re-join: (from, to] was not replayed. */
    from: number;
    to: number;
}

export interface ChatEvents {
    state: StateEvent;
    welcome: WelcomeFrame;
    /** After a welcome, once every remembered room is re-joined and queued requests are sent. */
    ready: { rooms: string[] };
    joined: JoinedFrame & { rejoin: boolean };
    left: LeftFrame & { byServer: boolean };
    message: MessageFrame;
    direct: DirectFrame;
    user_joined: UserJoinedFrame;
    user_left: UserLeftFrame;
    typing: TypingFrame;
    read: ReadFrame;
    reset: ResetFrame;
    gap: GapEvent;
    refreshed: RefreshedFrame;
    error: ChatError;
    close: CloseEvent;
    /** Every frame received after welcome, before it is handled. */
    frame: ServerFrame;
}

/* ---------- the client ---------- */

export interface TokenRequest {
    reason: 'connect' | 'expiring' | 'expired' | 'refresh';
}

export interface Timers {
    setTimeout(fn: () => void, ms: number): unknown;
    clearTimeout(handle: unknown): void;
}

export interface ChatClientOptions {
    /** ws:// or wss:// URL of the gateway's /ws endpoint (through the load balancer). */
    url: string;
    /** A JWT. Without getToken it is the only one: when it expires the client stops. */
    token?: string;
    /** Returns a fresh JWT; called to connect without a token, before exp (refresh), and after the server said it expired. */
    getToken?: (request: TokenRequest) => string | Promise<string>;
    /** 'query' (default; what browsers can do) or 'header' (Authorization, Node with `ws`). */
    tokenIn?: 'query' | 'header';
    requestTimeoutMs?: number;
    queueTimeoutMs?: number;
    queueLimit?: number;
    connectTimeoutMs?: number;
    probeTimeoutMs?: number;
    initialDelayMs?: number;
    maxDelayMs?: number;
    drainDelayMs?: number;
    abuseDelayMs?: number;
    refreshBeforeMs?: number;
    typingIntervalMs?: number;
    liveness?: boolean;
    /** A WebSocket constructor (default: the global one; in Node, `ws` when installed). */
    WebSocket?: unknown;
    /** fetch() for the refusal probe (default: the global one). */
    fetch?: (input: string, init?: object) => Promise<{ status: number; text(): Promise<string> }>;
    /** For tests: timers, clock and randomness. */
    timers?: Timers;
    now?: () => number;
    random?: () => number;
}

export declare const DEFAULTS: Readonly<Required<Omit<ChatClientOptions, 'url' | 'token' | 'getToken' | 'WebSocket' | 'fetch' | 'timers' | 'now' | 'random'>>>;

export interface RoomInfo {
    offset: number | undefined;
    epoch: string | undefined;
    read: number | undefined;
    unread: number | undefined;
}

export interface HistoryPage {
    messages: MessageFrame[];
    /** The server stopped early (page size cap): page on with before = messages[0].offset. */
    more: boolean;
}

export declare class ChatClient {
    constructor(options: ChatClientOptions);
    readonly options: Readonly<ChatClientOptions>;
    readonly state: ConnectionState;
    readonly ready: boolean;
    /** The node serving this connection; null unless open. */
    readonly node: string | null;
    readonly welcome: WelcomeFrame | null;
    readonly rooms: string[];
    readonly token: string | null;
    roomInfo(room: string): RoomInfo | null;

    on<K extends keyof ChatEvents>(type: K, listener: (event: ChatEvents[K]) => void): () => void;
    once<K extends keyof ChatEvents>(type: K, listener: (event: ChatEvents[K]) => void): () => void;
    off<K extends keyof ChatEvents>(type: K, listener: (event: ChatEvents[K]) => void): void;

    connect(): this;
    retryNow(): void;
    close(code?: number, reason?: string): void;

    request(frame: RequestFrame, options?: { timeoutMs?: number }): Promise<ServerFrame>;
    join(room: string): Promise<JoinedFrame>;
    leave(room: string): Promise<LeftFrame>;
    publish(room: string, text: string): Promise<AckFrame & { offset: number }>;
    direct(to: string, text: string): Promise<AckFrame>;
    presence(room: string): Promise<PresenceUser[]>;
    online(user: string): Promise<boolean>;
    history(room: string, options?: { limit?: number; before?: number }): Promise<HistoryPage>;
    ping(): Promise<number>;
    typing(room: string, state?: boolean): boolean;
    read(room: string, offset: number): Promise<ReadOkFrame>;
    unread(): Promise<UnreadRoom[]>;
    refreshToken(): Promise<RefreshedFrame>;
}
