/** A new element with a class and, optionally, text (never HTML). */
export function element<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className: string,
  text?: string
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  node.className = className;
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}

/** A button that says what it does to screen readers and in its tooltip. */
export function button(
  className: string,
  label: string,
  content?: string | Node
): HTMLButtonElement {
  const node = element('button', className);
  node.type = 'button';
  node.setAttribute('aria-label', label);
  node.title = label;
  if (content !== undefined) {
    node.append(content);
  }
  return node;
}

let counter = 0;

/** A document-unique id for aria references. */
export function uniqueId(prefix: string): string {
  counter += 1;
  return `${prefix}-${counter}`;
}
