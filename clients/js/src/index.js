/*
 * @chat-gateway/client — the JavaScript client of the chat gateway's wire protocol v1.1, for
 * browsers and Node >= 18. This is the entry for browsers (and bundlers): it uses the global
 * WebSocket and fetch and has no dependencies. Node's entry is node.js (adds `ws`).
 */
import { ChatClient, DEFAULTS } from './client.js';
import { ChatError } from './errors.js';
import { CLOSE } from './reconnect-policy.js';

export const VERSION = '1.1.0';
export const PROTOCOL_VERSION = '1.1';
export { ChatClient, ChatError, CLOSE, DEFAULTS };
