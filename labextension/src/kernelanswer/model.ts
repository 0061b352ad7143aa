/**
 * A `%%duck` answer in a cell output, without a DOM: what the kernel's display bundle
 * says once validated, and what the view shows for it (which buttons, which status line).
 *
 * The kernel publishes one display bundle per answer and updates it in place
 * (`update_display_data`) as the answer streams; every update carries the whole state,
 * so `KernelAnswerModel.update` replaces the answer rather than appending to it. The
 * bundle is untrusted (any code in the kernel can publish one): `parseKernelAnswer`
 * accepts only version 1 with the right types, drops list items it cannot read, caps
 * sizes, and never throws. Unit tests: labextension/test/kernelanswer.test.ts.
 */
import {
  ICitation,
  ISuggestion,
  parseCitation,
  parseSuggestion
} from '../protocol';

/** The MIME type of the answer bundle the `%%duck` magic publishes. */
export const KERNEL_ANSWER_MIME = 'application/vnd.rubberduck.answer.v1+json';

/** The bundle versions this front end reads. */
export const KERNEL_ANSWER_VERSION = 1;

// An answer streams into one output: 1 MB of Markdown is ~100 long answers, far past any
// real one, and re-rendering more on every update would stall the page.
const MAX_MARKDOWN = 1_000_000;
const MAX_STEPS = 100;
const MAX_CITATIONS = 200;
const MAX_SUGGESTIONS = 50;
const MAX_NOTICES = 50;
const MAX_SHORT = 2_000;

export type KernelAnswerStatus =
  'waiting' | 'streaming' | 'done' | 'error' | 'stopped';

const STATUSES: ReadonlySet<string> = new Set([
  'waiting',
  'streaming',
  'done',
  'error',
  'stopped'
]);

export interface IKernelAnswerStep {
  step: string;
  title: string;
  status: 'started' | 'finished';
  text: string;
}

export interface IKernelAnswerNotice {
  code: string;
  message: string;
}

export interface IKernelAnswerError {
  code: string;
  message: string;
  /** Seconds until a retry may succeed; null when the server did not say. */
  retry_after: number | null;
}

/** A validated answer bundle. */
export interface IKernelAnswer {
  version: 1;
  /** The answering server's base URL, or null when missing or not an http(s) URL. */
  server_url: string | null;
  turn_id: string;
  conversation_id: string | null;
  status: KernelAnswerStatus;
  title: string | null;
  markdown: string;
  steps: IKernelAnswerStep[];
  citations: ICitation[];
  suggestions: ISuggestion[];
  notices: IKernelAnswerNotice[];
  error: IKernelAnswerError | null;
  engine: string | null;
  model: string | null;
  cost_usd: number | null;
}

/** Why a bundle is not shown as an answer: a newer version, or not an answer at all. */
export type UnreadableReason = 'newer' | 'invalid';

export type ParsedKernelAnswer =
  { ok: true; answer: IKernelAnswer } | { ok: false; reason: UnreadableReason };

type Json = Record<string, unknown>;

const isObject = (value: unknown): value is Json =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

const shortString = (value: unknown): string | null =>
  typeof value === 'string' && value !== '' ? value.slice(0, MAX_SHORT) : null;

function listOf<T>(
  raw: unknown,
  max: number,
  parse: (item: unknown) => T | null
): T[] {
  if (!Array.isArray(raw)) {
    return [];
  }
  const out: T[] = [];
  for (const item of raw) {
    const parsed = parse(item);
    if (parsed !== null) {
      out.push(parsed);
      if (out.length >= max) {
        break;
      }
    }
  }
  return out;
}

function parseStep(item: unknown): IKernelAnswerStep | null {
  if (!isObject(item)) {
    return null;
  }
  const step =
    typeof item.step === 'number' && Number.isFinite(item.step)
      ? String(item.step)
      : shortString(item.step);
  if (step === null) {
    return null;
  }
  return {
    step,
    title: shortString(item.title) ?? `Step ${step}`,
    status: item.status === 'finished' ? 'finished' : 'started',
    text: typeof item.text === 'string' ? item.text.slice(0, MAX_MARKDOWN) : ''
  };
}

function parseNotice(item: unknown): IKernelAnswerNotice | null {
  if (!isObject(item) || typeof item.message !== 'string') {
    return null;
  }
  return {
    code: shortString(item.code) ?? 'notice',
    message: item.message.slice(0, MAX_SHORT * 5)
  };
}

function parseError(item: unknown): IKernelAnswerError | null {
  if (!isObject(item)) {
    return null;
  }
  const retry = item.retry_after;
  return {
    code: shortString(item.code) ?? 'internal',
    message: shortString(item.message) ?? 'The answer failed.',
    retry_after:
      typeof retry === 'number' && Number.isFinite(retry) && retry >= 0
        ? retry
        : null
  };
}

function httpUrl(value: unknown): string | null {
  if (typeof value !== 'string') {
    return null;
  }
  try {
    const url = new URL(value);
    return url.protocol === 'http:' || url.protocol === 'https:'
      ? url.href
      : null;
  } catch {
    return null;
  }
}

/** Validate a bundle's JSON; never throws. */
export function parseKernelAnswer(data: unknown): ParsedKernelAnswer {
  if (!isObject(data)) {
    return { ok: false, reason: 'invalid' };
  }
  if (data.version !== KERNEL_ANSWER_VERSION) {
    const newer =
      typeof data.version === 'number' && data.version > KERNEL_ANSWER_VERSION;
    return { ok: false, reason: newer ? 'newer' : 'invalid' };
  }
  const turn = shortString(data.turn_id);
  if (
    turn === null ||
    typeof data.markdown !== 'string' ||
    typeof data.status !== 'string' ||
    !STATUSES.has(data.status)
  ) {
    return { ok: false, reason: 'invalid' };
  }
  const cost = data.cost_usd;
  return {
    ok: true,
    answer: {
      version: KERNEL_ANSWER_VERSION,
      server_url: httpUrl(data.server_url),
      turn_id: turn,
      conversation_id: shortString(data.conversation_id),
      status: data.status as KernelAnswerStatus,
      title: shortString(data.title),
      markdown: data.markdown.slice(0, MAX_MARKDOWN),
      steps: listOf(data.steps, MAX_STEPS, parseStep),
      citations: listOf(data.citations, MAX_CITATIONS, parseCitation),
      suggestions: listOf(data.suggestions, MAX_SUGGESTIONS, parseSuggestion),
      notices: listOf(data.notices, MAX_NOTICES, parseNotice),
      error: parseError(data.error),
      engine: shortString(data.engine),
      model: shortString(data.model),
      cost_usd:
        typeof cost === 'number' && Number.isFinite(cost) && cost >= 0
          ? cost
          : null
    }
  };
}

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);

/** scheme://host:port/path without trailing slashes; loopback names count as one. */
function serverKey(url: URL): string {
  const host = LOOPBACK.has(url.hostname) ? 'loopback' : url.hostname;
  const port = url.port || (url.protocol === 'https:' ? '443' : '80');
  return `${url.protocol}//${host}:${port}${url.pathname.replace(/\/+$/, '')}`;
}

/**
 * Whether `serverUrl` is the server this page talks to: `pageBaseUrl` (PageConfig's base
 * URL, possibly relative) resolved against `pageHref`, trailing slashes ignored.
 * `localhost`, `127.0.0.1` and `[::1]` are taken as the same host: a kernel reports the
 * address the server bound, the page may have been opened by another loopback name.
 */
export function isSameServer(
  serverUrl: string | null,
  pageBaseUrl: string,
  pageHref: string
): boolean {
  if (serverUrl === null) {
    return false;
  }
  try {
    return (
      serverKey(new URL(serverUrl)) ===
      serverKey(new URL(pageBaseUrl, pageHref))
    );
  } catch {
    return false;
  }
}

/**
 * The button a notice offers, by its code, as the server's protocol.py NOTICE_ACTIONS
 * gives it; the bundle's own fields are never taken for a command to run.
 */
const NOTICE_ACTIONS: Record<string, { command: string; label: string }> = {
  no_index: { command: 'rubberduck:index-project', label: 'Index this project' }
};

/** A notice's action for its code, or undefined; only for this server's answers. */
export function noticeAction(
  code: string,
  fromThisServer: boolean
): { command: string; label: string } | undefined {
  return fromThisServer &&
    Object.prototype.hasOwnProperty.call(NOTICE_ACTIONS, code)
    ? { ...NOTICE_ACTIONS[code] }
    : undefined;
}

export const FOREIGN_SERVER =
  'This answer came from another RubberDuck server than the one this page uses; ' +
  'stopping it or applying its suggestions works only from that server.';

export const NOT_RUNNING =
  'Not running: this answer was saved before it finished.';

export const NEEDS_NEWER =
  'This RubberDuck answer needs a newer extension: update rubberduck-jupyter and ' +
  'reload the page.';

/** The line under the answer, and how it reads. */
export interface IStatusLine {
  kind: 'none' | 'thinking' | 'error' | 'stopped' | 'done';
  text: string;
}

/** What the Stop button shows; null when there is none. */
export interface IStopButton {
  label: string;
  disabled: boolean;
  /** Why it is disabled, as its tooltip; null when it is not. */
  reason: string | null;
}

/** "retry in 3 s" rounded up, never 0. */
function retryText(seconds: number): string {
  return `retry in ${Math.max(1, Math.ceil(seconds))} s`;
}

/**
 * The state of one answer output: the latest valid bundle, whether the user asked to
 * stop it, and what that means for the view. DOM-free.
 */
export class KernelAnswerModel {
  /**
   * @param sameServer whether a bundle's server_url is this page's server
   */
  constructor(private readonly _sameServer: (url: string | null) => boolean) {}

  /** The latest valid answer; null before one arrived or after an unreadable one. */
  get answer(): IKernelAnswer | null {
    return this._answer;
  }

  /** Why the latest bundle could not be shown, or null when it could. */
  get unreadable(): UnreadableReason | null {
    return this._unreadable;
  }

  /** True while a Stop request was sent and the status has not changed since. */
  get stopping(): boolean {
    return this._stoppingFrom !== null;
  }

  /** Take a new bundle; returns the parsed result. */
  update(data: unknown): ParsedKernelAnswer {
    const parsed = parseKernelAnswer(data);
    if (!parsed.ok) {
      this._answer = null;
      this._unreadable = parsed.reason;
      this._stoppingFrom = null;
      return parsed;
    }
    const answer = parsed.answer;
    // "Stopping…" lasts until the kernel reports another status (or another turn).
    if (
      this._stoppingFrom !== null &&
      (this._answer?.turn_id !== answer.turn_id ||
        answer.status !== this._stoppingFrom)
    ) {
      this._stoppingFrom = null;
    }
    this._answer = answer;
    this._unreadable = null;
    return parsed;
  }

  /** Whether the answer is still running (Stop is offered). */
  get running(): boolean {
    const status = this._answer?.status;
    return (
      (status === 'waiting' || status === 'streaming') &&
      this._answer?.turn_id !== this._notRunningTurn
    );
  }

  /**
   * The server says this turn is not running (a Stop found nothing to stop): the bundle
   * was saved mid-stream, so it still says "streaming" after the notebook is reopened.
   * Stop goes away and the status line says so, until a bundle of another turn arrives.
   */
  markNotRunning(): void {
    if (this._answer) {
      this._notRunningTurn = this._answer.turn_id;
      this._stoppingFrom = null;
    }
  }

  /** Whether the server behind the answer is this page's (Stop and Apply work). */
  get fromThisServer(): boolean {
    return this._answer !== null && this._sameServer(this._answer.server_url);
  }

  /** Record that Stop was clicked; false when Stop is not available now. */
  startStopping(): boolean {
    const stop = this.stopButton;
    if (!stop || stop.disabled || !this._answer) {
      return false;
    }
    this._stoppingFrom = this._answer.status;
    return true;
  }

  /** The Stop request failed: offer Stop again. */
  stopFailed(): void {
    this._stoppingFrom = null;
  }

  get stopButton(): IStopButton | null {
    if (!this.running) {
      return null;
    }
    if (!this.fromThisServer) {
      return { label: 'Stop', disabled: true, reason: FOREIGN_SERVER };
    }
    if (this.stopping) {
      return { label: 'Stopping…', disabled: true, reason: null };
    }
    return { label: 'Stop', disabled: false, reason: null };
  }

  /** Why suggestions cannot be applied from here, or null when they can. */
  get applyBlockedReason(): string | null {
    return this.fromThisServer ? null : FOREIGN_SERVER;
  }

  get statusLine(): IStatusLine {
    const answer = this._answer;
    if (!answer) {
      return { kind: 'none', text: '' };
    }
    if (
      (answer.status === 'waiting' || answer.status === 'streaming') &&
      answer.turn_id === this._notRunningTurn
    ) {
      return { kind: 'stopped', text: NOT_RUNNING };
    }
    switch (answer.status) {
      case 'waiting':
        return { kind: 'thinking', text: 'Thinking…' };
      case 'streaming':
        return { kind: 'none', text: '' };
      case 'stopped':
        return { kind: 'stopped', text: 'Stopped' };
      case 'error': {
        const error = answer.error;
        const message = error?.message ?? 'The answer failed.';
        const retry =
          error?.retry_after !== null && error?.retry_after !== undefined
            ? ` (${retryText(error.retry_after)})`
            : '';
        return { kind: 'error', text: `${message}${retry}` };
      }
      case 'done': {
        const parts: string[] = [];
        if (answer.model) {
          parts.push(answer.model);
        }
        if (answer.engine) {
          parts.push(`${answer.engine} engine`);
        }
        if (answer.cost_usd !== null && answer.cost_usd > 0) {
          parts.push(`$${answer.cost_usd.toFixed(4)}`);
        }
        return { kind: 'done', text: parts.join(' · ') };
      }
    }
  }

  private _answer: IKernelAnswer | null = null;
  private _notRunningTurn: string | null = null;
  private _unreadable: UnreadableReason | null = null;
  private _stoppingFrom: KernelAnswerStatus | null = null;
}
