/*
 * emitter — typed events without a dependency (EventTarget would force every payload into an
 * Event subclass, and Node's EventEmitter is not in browsers).
 *
 * A listener that throws must not break the client's state machine, which is in the middle of
 * handling a frame when it emits: the exception is reported (reportError in browsers,
 * console.error elsewhere) and the other listeners still run.
 */
export class Emitter {
    #listeners = new Map(); // type → Set of functions, in subscription order

    /** Calls fn(detail) for every `type` event until the returned function is called. */
    on(type, fn) {
        if (typeof fn !== 'function') throw new TypeError('listener must be a function');
        let set = this.#listeners.get(type);
        if (!set) this.#listeners.set(type, (set = new Set()));
        set.add(fn);
        return () => this.off(type, fn);
    }

    /** Like on(), for the next event only. */
    once(type, fn) {
        const off = this.on(type, (detail) => {
            off();
            fn(detail);
        });
        return off;
    }

    off(type, fn) {
        this.#listeners.get(type)?.delete(fn);
    }

    emit(type, detail) {
        const set = this.#listeners.get(type);
        if (!set) return;
        for (const fn of [...set]) {
            try {
                fn(detail);
            } catch (err) {
                if (typeof globalThis.reportError === 'function') globalThis.reportError(err);
                else console.error(`chat client: a '${type}' listener threw`, err);
            }
        }
    }

    removeAllListeners() {
        this.#listeners.clear();
    }
}
