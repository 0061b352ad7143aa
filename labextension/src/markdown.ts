import { Sanitizer } from '@jupyterlab/apputils';
import { Marked } from 'marked';

import { sanitizeAnswerHtml } from './sanitize';

// A private instance so our options never leak into other users of marked.
const parser = new Marked({ gfm: true, breaks: false });
const labSanitizer = new Sanitizer();

/**
 * Markdown answer text to HTML that is safe to assign to innerHTML.
 *
 * JupyterLab's Sanitizer is defence in depth; sanitizeAnswerHtml is the strict
 * allowlist that decides what survives.
 */
export function renderAnswerMarkdown(markdown: string): string {
  const html = parser.parse(markdown, { async: false });
  return sanitizeAnswerHtml(labSanitizer.sanitize(html));
}

/**
 * Fill `node` with `markdown` rendered as an answer is (same parser, same sanitizer), so
 * a notice's `code` and links read as they do in answers; should rendering fail, the
 * text goes in as it is, never as HTML.
 */
export function renderMarkdownInto(node: HTMLElement, markdown: string): void {
  try {
    node.innerHTML = renderAnswerMarkdown(markdown);
  } catch {
    node.textContent = markdown;
  }
}
