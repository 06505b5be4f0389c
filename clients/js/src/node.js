/*
 * The entry for Node (ESM): the same client, with a WebSocket for Node versions that have none
 * (before 22). The `ws` package is preferred when installed, also on Node >= 22, because only
 * it can send the token in an Authorization header (tokenIn: 'header'); without it the global
 * WebSocket is used. Browsers never load this file (package.json "exports" conditions).
 */
import { ChatClient as CoreClient, ChatError, CLOSE, DEFAULTS, PROTOCOL_VERSION, VERSION } from './index.js';

let NodeWebSocket;
try {
    NodeWebSocket = (await import('ws')).default;
} catch {
    NodeWebSocket = globalThis.WebSocket;
}

export class ChatClient extends CoreClient {
    constructor(options) {
        super({ ...options, WebSocket: options?.WebSocket ?? NodeWebSocket });
    }
}

export { ChatError, CLOSE, DEFAULTS, PROTOCOL_VERSION, VERSION };
