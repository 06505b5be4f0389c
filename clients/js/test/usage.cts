// The same package through require() (CommonJS types: dist/index.d.cts, made by the build).
import client = require('@chat-gateway/client');

const chat = new client.ChatClient({ url: 'ws://127.0.0.1:8080/ws', token: 'jwt', tokenIn: 'header' });
chat.on('welcome', (w) => console.log(w.node, w.heartbeat));
const version: string = client.VERSION;
console.log(version);
