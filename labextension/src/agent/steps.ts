/**
 * How an agent's tool call reads as a step, without a DOM: its arguments pretty-printed
 * from the step frame's `tool` field, its result out of the step's text, and which cell
 * of which notebook the call is about (for the notebook to scroll to).
 */
import type { IStepTool } from '../protocol';

/** The arguments as indented JSON; `{}` reads as "(no arguments)". */
export function prettyArguments(
  args: Readonly<Record<string, unknown>>
): string {
  if (!Object.keys(args).length) {
    return '(no arguments)';
  }
  return JSON.stringify(args, null, 2);
}

// The server's step text is "Arguments: <json>\n\nResult:\n<text>" (engines/agent.py).
const ARGUMENTS_PREFIX = 'Arguments: ';
const RESULT_MARK = '\n\nResult';

/**
 * The step's text without its "Arguments: …" part once the arguments are shown from the
 * `tool` field (both would say the same thing); any other text is kept whole.
 */
export function stepResultText(text: string): string {
  if (!text.startsWith(ARGUMENTS_PREFIX)) {
    return text;
  }
  const at = text.indexOf(RESULT_MARK);
  return at < 0 ? '' : text.slice(at + 2);
}

/** Where a tool call points in a notebook: its path and the cell's 0-based index. */
export interface ICellFocus {
  path: string;
  index: number;
}

/** The cell a step reads, edits or runs; null when the call names no notebook cell. */
export function cellFocus(tool: IStepTool | undefined): ICellFocus | null {
  if (!tool || tool.path === null || tool.cell_index === null) {
    return null;
  }
  if (!tool.path.endsWith('.ipynb')) {
    return null;
  }
  return { path: tool.path, index: tool.cell_index - 1 };
}
