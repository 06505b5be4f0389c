/*
 * dom — the few DOM helpers every view of the demo uses. User-provided text always goes
 * through textContent (el's third argument), never innerHTML.
 */
export const $ = (id) => document.getElementById(id);

export function el(tag, className, text) {
    const e = document.createElement(tag);
    if (className) e.className = className;
    if (text !== undefined) e.textContent = text;
    return e;
}

export const timeOf = (ts) =>
    new Date(ts ?? Date.now()).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });

/** Whether the scroll box shows its end (within slack px). */
export const atEnd = (box, slack = 40) => box.scrollHeight - box.scrollTop - box.clientHeight < slack;
