/**
 * The lines under an answer, live or stored alike: how it ended ("(stopped)", "(the
 * answer was cut off)", its error) and what it used ("gpt-4o-mini · 47 + 15 = 62
 * tokens · $0.00012"). One place, so a stored answer reads as it did when it streamed.
 */
import { element } from './dom';
import { renderMarkdownInto } from './markdown';
import { IDoneFrame } from './protocol';
import { attemptsText, failoverText, formatCost, formatTokens } from './usage';

/** "(stopped)": the user stopped the answer. */
export function stoppedLine(): HTMLElement {
  return element('div', 'jp-RubberDuck-stopped', '(stopped)');
}

/** A note that the answer did not end normally: cut off, ended early, incomplete. */
export function finishLine(text: string): HTMLElement {
  return element('div', 'jp-RubberDuck-finish', text);
}

/**
 * An error, as a notice or as the line an answer ended with: the server writes them in
 * Markdown (`commands`, setting names), drawn as answers are; `code` is for styling and
 * tests.
 */
export function errorLine(code: string, message: string): HTMLElement {
  const line = element('div', 'jp-RubberDuck-error jp-RubberDuck-notice-text');
  renderMarkdownInto(line, message);
  line.dataset.code = code;
  return line;
}

/**
 * The answer's footer: the model, naming the fallback when one answered, the tokens and
 * the cost, badging cached answers. Null when there is nothing to say (a cancelled turn).
 */
export function usageLine(frame: IDoneFrame): HTMLElement | null {
  const items: (string | HTMLElement)[] = [];
  const failover = failoverText(frame);
  if (failover) {
    items.push(element('span', 'jp-RubberDuck-failover', failover));
  } else if (frame.model) {
    items.push(frame.model);
  }
  if (frame.usage.total_tokens > 0) {
    items.push(formatTokens(frame.usage));
  }
  if (frame.cost_usd !== null) {
    items.push(formatCost(frame.cost_usd));
  }
  if (!items.length && !frame.cached) {
    return null;
  }
  const line = element('div', 'jp-RubberDuck-usage');
  for (const [index, item] of items.entries()) {
    if (index) {
      line.append(' · ');
    }
    line.append(item);
  }
  if (frame.cached) {
    line.append(
      element('span', 'jp-RubberDuck-cached', 'cached answer (provider paused)')
    );
  }
  const tooltip: string[] = [];
  if (frame.usage.total_tokens > 0) {
    tooltip.push('Tokens: prompt + completion = total');
  }
  const attempts = attemptsText(frame);
  if (attempts) {
    tooltip.push(`Attempts:\n${attempts}`);
  }
  line.title = tooltip.join('\n');
  return line;
}
