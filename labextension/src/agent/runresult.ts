/**
 * A cell's outputs as the run_result frame carries them, without a DOM: plain text only
 * (text/plain of rich outputs, a note for images), each cut to MAX_RUN_OUTPUT_CHARS, at
 * most MAX_RUN_OUTPUTS, and the error (if any) apart with its traceback's colour codes
 * taken out: the model reads text, not terminal escapes.
 */
import {
  IRunError,
  IRunOutput,
  IRunResultFrame,
  MAX_RUN_OUTPUT_CHARS,
  MAX_RUN_OUTPUTS
} from '../protocol';

/** One nbformat output as the notebook model's toJSON() gives it. */
export type NotebookOutput = Record<string, unknown>;

/** What a run_result says beyond its ids. */
export type RunResult = Pick<
  IRunResultFrame,
  'status' | 'execution_count' | 'outputs' | 'error'
>;

// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;]*[A-Za-z]/g;

function joined(value: unknown): string {
  if (typeof value === 'string') {
    return value;
  }
  return Array.isArray(value)
    ? value.filter(v => typeof v === 'string').join('')
    : '';
}

export function trimOutput(text: string): string {
  if (text.length <= MAX_RUN_OUTPUT_CHARS) {
    return text;
  }
  const cut = text.length - MAX_RUN_OUTPUT_CHARS;
  return `${text.slice(0, MAX_RUN_OUTPUT_CHARS)}… [${cut} more characters]`;
}

function richText(data: unknown): string {
  if (typeof data !== 'object' || data === null) {
    return '';
  }
  const bundle = data as Record<string, unknown>;
  const plain = joined(bundle['text/plain']);
  if (plain) {
    return plain;
  }
  const kinds = Object.keys(bundle);
  return kinds.length ? `[${kinds[0]} output]` : '';
}

/**
 * The run_result of a finished cell: `replyStatus` is the kernel's execute_reply status
 * ("ok", "error", "aborted"); an error output makes the status "error" whatever it says.
 */
export function runResult(
  outputs: readonly NotebookOutput[],
  replyStatus: string | null,
  executionCount: number | null
): RunResult {
  const shown: IRunOutput[] = [];
  let error: IRunError | null = null;
  for (const output of outputs) {
    const type = output.output_type;
    if (type === 'error') {
      error = {
        ename: String(output.ename ?? ''),
        evalue: String(output.evalue ?? ''),
        traceback: (Array.isArray(output.traceback) ? output.traceback : [])
          .map(line => String(line).replace(ANSI, ''))
          .slice(-40)
      };
      continue;
    }
    if (shown.length >= MAX_RUN_OUTPUTS) {
      continue;
    }
    if (type === 'stream') {
      shown.push({
        output_type: 'stream',
        text: trimOutput(joined(output.text))
      });
    } else if (type === 'execute_result' || type === 'display_data') {
      shown.push({
        output_type: type,
        text: trimOutput(richText(output.data))
      });
    }
  }
  const status =
    error !== null
      ? 'error'
      : replyStatus === 'error' || replyStatus === 'aborted'
        ? replyStatus
        : 'ok';
  return { status, execution_count: executionCount, outputs: shown, error };
}

/** A run that did not happen: the cell was gone, changed, or had no kernel. */
export function notRun(ename: string, evalue: string): RunResult {
  return {
    status: 'aborted',
    execution_count: null,
    outputs: [],
    error: { ename, evalue, traceback: [] }
  };
}
