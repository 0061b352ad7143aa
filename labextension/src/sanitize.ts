/**
 * The last gate between model output and the DOM.
 *
 * Model answers are untrusted: a prompt-injected answer could try to phone home
 * through a remote image, trick the user with a form or button, or drive JupyterLab
 * through command-linker attributes. JupyterLab's Sanitizer runs first (see
 * markdown.ts), but it allows all of those, so this pass is a strict allowlist of
 * what Markdown itself produces. It is self-contained on purpose: it must be safe on
 * its own and easy to audit.
 *
 * Rules:
 * - Elements in DROPPED_TAGS are removed together with everything inside them.
 * - `img` survives only with a `data:image/...` src (no network fetch is possible);
 *   any other image becomes a visible "[image not loaded: alt]" note naming its host,
 *   so a prompt-injected answer trying to phone home shows the attempt, not nothing.
 * - Elements not in ALLOWED_TAGS are unwrapped: their text stays, the tag goes.
 * - Attributes not in ALLOWED_ATTRIBUTES are removed, which drops every `on*`
 *   handler, `style`, `id`/`name` and all `data-*` (including
 *   `data-commandlinker-*`).
 * - Links survive only with an absolute http:, https: or mailto: href (others are
 *   unwrapped to their text) and always open in a new tab with
 *   rel="noopener noreferrer".
 * - Comments are removed.
 */

const DROPPED_TAGS = new Set([
  'applet',
  'area',
  'audio',
  'base',
  'button',
  'canvas',
  'datalist',
  'dialog',
  'embed',
  'form',
  'frame',
  'frameset',
  'head',
  'iframe',
  'input',
  'link',
  'map',
  'math',
  'meta',
  'noembed',
  'noframes',
  'noscript',
  'object',
  'optgroup',
  'option',
  'output',
  'picture',
  'portal',
  'script',
  'select',
  'source',
  'style',
  'svg',
  'template',
  'textarea',
  'title',
  'track',
  'video'
]);

const ALLOWED_TAGS = new Set([
  'a',
  'abbr',
  'b',
  'blockquote',
  'br',
  'caption',
  'code',
  'dd',
  'del',
  'details',
  'div',
  'dl',
  'dt',
  'em',
  'h1',
  'h2',
  'h3',
  'h4',
  'h5',
  'h6',
  'hr',
  'i',
  'img',
  'ins',
  'kbd',
  'li',
  'mark',
  'ol',
  'p',
  'pre',
  'q',
  's',
  'samp',
  'small',
  'span',
  'strong',
  'sub',
  'summary',
  'sup',
  'table',
  'tbody',
  'td',
  'tfoot',
  'th',
  'thead',
  'tr',
  'u',
  'ul',
  'var'
]);

const GLOBAL_ATTRIBUTES = new Set(['title']);

const ALLOWED_ATTRIBUTES: Record<string, Set<string>> = {
  a: new Set(['href']),
  code: new Set(['class']),
  img: new Set(['src', 'alt']),
  ol: new Set(['start']),
  td: new Set(['align', 'colspan', 'rowspan']),
  th: new Set(['align', 'colspan', 'rowspan'])
};

const SAFE_LINK_PROTOCOLS = new Set(['http:', 'https:', 'mailto:']);

/** Return a sanitized copy of `html`; the input is parsed inertly and never rendered. */
export function sanitizeAnswerHtml(html: string): string {
  // A DOMParser document has no browsing context: nothing in it loads or runs.
  const doc = new DOMParser().parseFromString(html, 'text/html');
  cleanChildren(doc.body);
  return doc.body.innerHTML;
}

/** An absolute http(s)/mailto URL, normalized, or null. */
export function safeHref(raw: string | null): string | null {
  if (!raw) {
    return null;
  }
  let url: URL;
  try {
    // No base URL: relative links (which would point into JupyterLab) fail here.
    url = new URL(raw.trim());
  } catch {
    return null;
  }
  return SAFE_LINK_PROTOCOLS.has(url.protocol) ? url.href : null;
}

function isDataImage(src: string | null): boolean {
  return src !== null && /^data:image\/[a-z0-9.+-]+[;,]/i.test(src.trim());
}

/** What a refused image leaves: its alt text and host, as text (nothing to load). */
function blockedImageNote(img: Element): HTMLElement {
  const note = img.ownerDocument.createElement('em');
  note.className = 'jp-RubberDuck-blocked-image';
  const alt = (img.getAttribute('alt') ?? '').trim().slice(0, 200);
  note.textContent = alt ? `[image not loaded: ${alt}]` : '[image not loaded]';
  let host = '';
  try {
    host = new URL((img.getAttribute('src') ?? '').trim()).host;
  } catch {
    // A relative or malformed src names no host.
  }
  note.title =
    'RubberDuck does not load images from other sites in answers: they could send ' +
    `what you see there${host ? ` (this one: ${host})` : ''}.`;
  return note;
}

function cleanChildren(parent: Element): void {
  for (const node of Array.from(parent.childNodes)) {
    if (node.nodeType === Node.COMMENT_NODE) {
      node.remove();
    } else if (node.nodeType === Node.ELEMENT_NODE) {
      cleanElement(node as Element);
    }
  }
}

function cleanElement(el: Element): void {
  const tag = el.localName;
  if (tag === 'img' && !isDataImage(el.getAttribute('src'))) {
    el.replaceWith(blockedImageNote(el));
    return;
  }
  if (DROPPED_TAGS.has(tag)) {
    el.remove();
    return;
  }
  cleanChildren(el);
  // A link whose target is not allowed becomes plain text rather than a dead anchor.
  if (
    !ALLOWED_TAGS.has(tag) ||
    (tag === 'a' && safeHref(el.getAttribute('href')) === null)
  ) {
    el.replaceWith(...Array.from(el.childNodes));
    return;
  }
  cleanAttributes(el, tag);
}

function cleanAttributes(el: Element, tag: string): void {
  const allowed = ALLOWED_ATTRIBUTES[tag];
  for (const { name } of Array.from(el.attributes)) {
    if (!GLOBAL_ATTRIBUTES.has(name) && !allowed?.has(name)) {
      el.removeAttribute(name);
    }
  }
  switch (tag) {
    case 'a':
      // cleanElement already unwrapped links without a safe href.
      el.setAttribute('href', safeHref(el.getAttribute('href')) as string);
      el.setAttribute('target', '_blank');
      el.setAttribute('rel', 'noopener noreferrer');
      break;
    case 'img':
      el.setAttribute('src', (el.getAttribute('src') as string).trim());
      break;
    case 'code': {
      // Keep only the language hint Markdown adds to fenced blocks.
      const classes = (el.getAttribute('class') ?? '')
        .split(/\s+/)
        .filter(c => /^language-[\w+#.-]+$/.test(c));
      if (classes.length) {
        el.setAttribute('class', classes.join(' '));
      } else {
        el.removeAttribute('class');
      }
      break;
    }
    case 'ol':
      keepIfMatches(el, 'start', /^\d{1,6}$/);
      break;
    case 'td':
    case 'th':
      keepIfMatches(el, 'align', /^(left|right|center)$/);
      keepIfMatches(el, 'colspan', /^\d{1,3}$/);
      keepIfMatches(el, 'rowspan', /^\d{1,3}$/);
      break;
  }
}

function keepIfMatches(el: Element, name: string, pattern: RegExp): void {
  const value = el.getAttribute(name);
  if (value !== null && !pattern.test(value)) {
    el.removeAttribute(name);
  }
}
