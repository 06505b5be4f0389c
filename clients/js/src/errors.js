/*
 * errors — the one error type the client rejects and emits with.
 *
 * `code` is the server's error code (PROTOCOL.md §3: bad_request, not_joined, rate_limited, …)
 * or one of the client's own: timeout, disconnected (the connection dropped while the request
 * was in flight: a publish may or may not have been applied, so it is never re-sent by
 * itself), closed (close() was called), queue_full (the offline queue is at its bound),
 * invalid_token / forbidden_origin (the server
 * refused the handshake: final), token_unavailable (getToken() failed).
 */
export class ChatError extends Error {
    /**
     * details: frame (the server's error frame, when there is one), status (HTTP status of a
     * refused handshake), request (the frame that failed), room.
     */
    constructor(code, message, details = {}) {
        super(message || code);
        this.name = 'ChatError';
        this.code = code;
        for (const [k, v] of Object.entries(details)) if (v !== undefined) this[k] = v;
    }
}
