/*
 * The entry for Node's require(): the bundled client (dist/chat-client.cjs, built from src/ by
 * scripts/build.mjs on `npm pack`) plus a WebSocket for Node, as src/node.js does for import.
 */
'use strict';
const core = require('../dist/chat-client.cjs');

let NodeWebSocket;
try {
    NodeWebSocket = require('ws');
} catch {
    NodeWebSocket = globalThis.WebSocket;
}

class ChatClient extends core.ChatClient {
    constructor(options) {
        super({ ...options, WebSocket: (options && options.WebSocket) || NodeWebSocket });
    }
}

module.exports = { ...core, ChatClient };
