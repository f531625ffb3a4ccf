// markdown.js -- a small, safe Markdown renderer for model answers.
//
// Model text is untrusted: every character of it is HTML-escaped before any markup is
// added, and the only markup added is a fixed set of tags without attributes, except
// links (href only when it is http(s):// or mailto:, escaped) and code blocks (a class
// from the fence's language, reduced to [A-Za-z0-9_+-]). So the result is safe to put into
// innerHTML; the page's Content-Security-Policy forbids inline script on top of that.
//
// What it knows: fenced code blocks (``` or ~~~, an unclosed fence runs to the end, which
// is what a streaming answer looks like mid-block), indented lines inside lists, headings
// (#..######), block quotes (>), lists (-, *, + and 1.), rules (---), paragraphs; inline
// `code`, **bold**, *italic* / _italic_, ~~strike~~, [text](url) and bare http(s) URLs.
// Anything else stays plain text. Pure: no DOM, so node's test runner checks it.

const ESC = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, (c) => ESC[c]);
}

// A link target that can be followed safely, escaped for an attribute; null otherwise.
function safeHref(raw) {
  const url = raw.trim();
  if (!/^(https?:\/\/|mailto:)[^\s]*$/i.test(url)) return null;
  return escapeHtml(url);
}

// Inline markup of one piece of text that holds no code span. The text is escaped first;
// the patterns then run on the escaped text, whose only specials left are & entities.
function inlinePlain(text) {
  text = text.replace(/[\u0000\u0001]/g, ''); // the placeholders' marks below
  const links = [];
  // [label](url): the url checked before escaping; the label rendered like any text.
  let s = text.replace(/\[([^\]\n]{1,500})\]\(([^()\s]{1,2000})\)/g, (m, label, url) => {
    const href = safeHref(url);
    if (!href) return m;
    links.push(`<a href="${href}" rel="noopener noreferrer" target="_blank">${inlineMarks(escapeHtml(label))}</a>`);
    return `\u0000${links.length - 1}\u0000`;
  });
  s = s.replace(/\bhttps?:\/\/[^\s<>()\u0000]+[^\s<>().,;:!?'"\u0000]/g, (url) => {
    const href = safeHref(url);
    if (!href) return url;
    links.push(`<a href="${href}" rel="noopener noreferrer" target="_blank">${escapeHtml(url)}</a>`);
    return `\u0000${links.length - 1}\u0000`;
  });
  s = inlineMarks(escapeHtml(s));
  return s.replace(/\u0000(\d+)\u0000/g, (m, i) => links[Number(i)] ?? '');
}

function inlineMarks(s) {
  return s
    .replace(/\*\*(?=\S)([^*]*?\S)\*\*/g, '<strong>$1</strong>')
    .replace(/(^|[^_\w])__(?=\S)([^_]*?\S)__(?![_\w])/g, '$1<strong>$2</strong>') // not inside words (snake__case)
    .replace(/(^|[^*\w])\*(?=\S)([^*\n]*?\S)\*(?![*\w])/g, '$1<em>$2</em>')
    .replace(/(^|[^_\w])_(?=\S)([^_\n]*?\S)_(?![_\w])/g, '$1<em>$2</em>')
    .replace(/~~(?=\S)([^~]*?\S)~~/g, '<del>$1</del>');
}

// Inline markup of a paragraph's text: code spans first (their content stays literal).
export function renderInline(text) {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const open = text.indexOf('`', i);
    if (open < 0) break;
    let n = 1;
    while (text[open + n] === '`') n++;
    const fence = '`'.repeat(n);
    const close = text.indexOf(fence, open + n);
    if (close < 0) break;
    out += inlinePlain(text.slice(i, open));
    let code = text.slice(open + n, close);
    if (/^ .* $/.test(code)) code = code.slice(1, -1);
    out += `<code>${escapeHtml(code)}</code>`;
    i = close + n;
  }
  return out + inlinePlain(text.slice(i));
}

const FENCE = /^ {0,3}(`{3,}|~{3,})\s*([^`\s]*)[^`]*$/;
const HEADING = /^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$/;
const RULE = /^ {0,3}([-*_])(\s*\1){2,}\s*$/;
const QUOTE = /^ {0,3}> ?(.*)$/;
const ITEM = /^( {0,3})([-*+]|\d{1,9}[.)])\s+(.*)$/;

// Renders Markdown SRC to an HTML string (see the top of this file for what is safe).
export function renderMarkdown(src) {
  const lines = String(src ?? '').replace(/\r\n?/g, '\n').split('\n');
  return renderBlocks(lines, 0);
}

function renderBlocks(lines, depth) {
  let html = '';
  let para = [];
  const flush = () => {
    if (para.length) html += `<p>${para.map(renderInline).join('<br>')}</p>`;
    para = [];
  };
  for (let i = 0; i < lines.length; ) {
    const line = lines[i];
    let m;
    if ((m = FENCE.exec(line))) {
      flush();
      const fence = m[1];
      const lang = m[2].replace(/[^A-Za-z0-9_+-]/g, '').slice(0, 32);
      const body = [];
      i++;
      while (i < lines.length && !new RegExp(`^ {0,3}${fence[0]}{${fence.length},}\\s*$`).test(lines[i])) body.push(lines[i++]);
      const open = i >= lines.length; // unclosed: still streaming
      if (!open) i++;
      const cls = lang ? ` class="lang-${lang}"` : '';
      const label = lang ? `<span class="code-lang">${lang}</span>` : '';
      html += `<div class="code${open ? ' code-open' : ''}">${label}<button type="button" class="copy" data-copy>Copy</button>` +
        `<pre><code${cls}>${escapeHtml(body.join('\n'))}</code></pre></div>`;
      continue;
    }
    if (!line.trim()) { flush(); i++; continue; }
    if ((m = HEADING.exec(line))) {
      flush();
      const level = m[1].length;
      html += `<h${level}>${renderInline(m[2])}</h${level}>`;
      i++;
      continue;
    }
    if (RULE.test(line) && !para.length) { flush(); html += '<hr>'; i++; continue; }
    if (QUOTE.test(line) && depth < 8) {
      flush();
      const body = [];
      while (i < lines.length && (m = QUOTE.exec(lines[i]))) { body.push(m[1]); i++; }
      html += `<blockquote>${renderBlocks(body, depth + 1)}</blockquote>`;
      continue;
    }
    if ((m = ITEM.exec(line)) && depth < 8) {
      flush();
      const ordered = /\d/.test(m[2]);
      const start = ordered ? parseInt(m[2], 10) : 1;
      const items = [];
      while (i < lines.length) {
        const im = ITEM.exec(lines[i]);
        if (!im || /\d/.test(im[2]) !== ordered) break;
        const body = [im[3]];
        i++;
        // Continuation: indented lines (nested lists, code), or a lazy line of text.
        while (i < lines.length && lines[i].trim() && !ITEM.exec(lines[i]) && !FENCE.exec(lines[i])) body.push(lines[i++].replace(/^ {1,4}/, ''));
        while (i < lines.length && /^ {2,}\S/.test(lines[i])) {
          const ind = /^ */.exec(lines[i])[0].length;
          if (ind < 2) break;
          body.push(lines[i++].slice(Math.min(ind, 4)));
        }
        items.push(body);
        // "1. a", blank, "2. b" is still one list.
        let j = i;
        while (j < lines.length && !lines[j].trim()) j++;
        const next = j > i && j < lines.length ? ITEM.exec(lines[j]) : null;
        if (next && /\d/.test(next[2]) === ordered) i = j;
      }
      const tag = ordered ? 'ol' : 'ul';
      const attr = ordered && start !== 1 ? ` start="${start}"` : '';
      html += `<${tag}${attr}>` + items.map((b) => {
        const inner = renderBlocks(b, depth + 1);
        // A one-paragraph item shows as plain text, not a paragraph with margins.
        const tight = /^<p>((?:(?!<p>).)*)<\/p>$/s.exec(inner);
        return `<li>${tight ? tight[1] : inner}</li>`;
      }).join('') + `</${tag}>`;
      continue;
    }
    para.push(line.trim());
    i++;
  }
  flush();
  return html;
}
