// oracle.mjs -- the reference renderer of the template tests: @huggingface/jinja (pinned in
// package.json), set up as transformers' apply_chat_template sets up Python's jinja2
// (trim_blocks and lstrip_blocks on; the library does both itself) with the two callables
// transformers adds to the context: strftime_now(format) and raise_exception(message).
//
// strftime_now always formats one fixed instant, NOW (2026-01-15T10:00:00Z, in UTC), so a
// rendering does not depend on the day the test runs; our C renderer gets the same instant
// through `bellows-jinja --now NOW_UNIX`.
import { Environment, Template } from '@huggingface/jinja';

export const NOW_UNIX = 1768471200; // 2026-01-15T10:00:00Z
const NOW = new Date(NOW_UNIX * 1000);

const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August',
  'September', 'October', 'November', 'December'];
const pad = (n, w = 2) => String(n).padStart(w, '0');

// Python's time.strftime in the C locale, for a Date read in UTC. The directives the real
// templates use (%Y %m %d %b %B, see models/templates/) and the other common ones; an
// unknown directive is kept as written, as glibc does.
export function strftime(date, fmt) {
  const h12 = date.getUTCHours() % 12 || 12;
  const start = Date.UTC(date.getUTCFullYear(), 0, 1);
  const yday = Math.floor((date.getTime() - start) / 86400000) + 1;
  const map = {
    a: () => DAYS[date.getUTCDay()].slice(0, 3),
    A: () => DAYS[date.getUTCDay()],
    b: () => MONTHS[date.getUTCMonth()].slice(0, 3),
    B: () => MONTHS[date.getUTCMonth()],
    d: () => pad(date.getUTCDate()),
    e: () => String(date.getUTCDate()).padStart(2, ' '),
    H: () => pad(date.getUTCHours()),
    I: () => pad(h12),
    j: () => pad(yday, 3),
    m: () => pad(date.getUTCMonth() + 1),
    M: () => pad(date.getUTCMinutes()),
    p: () => (date.getUTCHours() < 12 ? 'AM' : 'PM'),
    S: () => pad(date.getUTCSeconds()),
    y: () => pad(date.getUTCFullYear() % 100),
    Y: () => String(date.getUTCFullYear()),
    Z: () => 'UTC',
    z: () => '+0000',
    F: () => `${date.getUTCFullYear()}-${pad(date.getUTCMonth() + 1)}-${pad(date.getUTCDate())}`,
    T: () => `${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())}`,
    '%': () => '%',
  };
  return fmt.replace(/%(.)/gs, (whole, c) => (map[c] ? map[c]() : whole));
}

export const strftime_now = (fmt) => strftime(NOW, fmt);

// Throws MSG, marked as the template's own error (not one of the library's).
export function raise_exception(msg) {
  const e = new Error(msg);
  e.raisedByTemplate = true;
  throw e;
}

// The library declares its own strftime_now (today's local date) and raise_exception as
// globals, and Environment.set refuses to declare a name twice: let ours replace those two.
const OURS = new Set(['strftime_now', 'raise_exception']);
const declare = Environment.prototype.set;
Environment.prototype.set = function set(name, value) {
  if (OURS.has(name) && this.parent === undefined)
    this.variables.delete(name);
  return declare.call(this, name, value);
};

// Renders TEMPLATE_TEXT with CONTEXT (the globals: messages, tools, add_generation_prompt,
// bos_token, ...); strftime_now and raise_exception are ours unless CONTEXT has its own.
// Returns the text, or throws the template's error (raise_exception's message included).
export function render(templateText, context) {
  const t = new Template(templateText);
  return t.render({ strftime_now, raise_exception, ...context });
}
