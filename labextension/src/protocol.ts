/**
 * The RubberDuck wire protocol, mirroring rubberduck_jupyter/protocol.py.
 *
 * Keep the two files in step: any incompatible change bumps PROTOCOL_VERSION on
 * both sides; additive fields do not.
 */

export const PROTOCOL_VERSION = 1;

export const MAX_ID_LENGTH = 128;
export const MAX_CONTEXT_STRING = 200_000;
/** The most kernel variables a chat context may carry. */
export const MAX_VARIABLES = 200;

/** Machine-readable error codes; the `message` beside each says what to do. */
export const ErrorCode = {
  BAD_JSON: 'bad_json',
  BAD_FRAME: 'bad_frame',
  FRAME_TOO_LARGE: 'frame_too_large',
  UNKNOWN_TYPE: 'unknown_type',
  UNSUPPORTED_VERSION: 'unsupported_version',
  DUPLICATE_ID: 'duplicate_id',
  UNKNOWN_ID: 'unknown_id',
  BUSY: 'busy',
  NO_MODEL: 'no_model',
  MODEL_NOT_ALLOWED: 'model_not_allowed',
  PROVIDER_ERROR: 'provider_error',
  PROVIDER_UNAVAILABLE: 'provider_unavailable',
  PROVIDER_AUTH: 'provider_auth',
  RATE_LIMITED: 'rate_limited',
  TIMEOUT: 'timeout',
  INCOMPLETE: 'incomplete',
  NOT_FOUND: 'not_found',
  UNKNOWN_ENGINE: 'unknown_engine',
  INTERNAL: 'internal',
  // REST-only codes: every RubberDuck REST error body is {"code", "message"}.
  BAD_REQUEST: 'bad_request',
  BAD_PATH: 'bad_path',
  BAD_QUERY: 'bad_query',
  FORBIDDEN: 'forbidden',
  METHOD_NOT_ALLOWED: 'method_not_allowed',
  CONFLICT: 'conflict',
  EMBEDDER_UNAVAILABLE: 'embedder_unavailable',
  // A resume for a turn (or frames of it) the server no longer keeps.
  RESUME_UNAVAILABLE: 'resume_unavailable'
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Codes of `notice` frames: information beside an answer, never its end. */
export const NoticeCode = {
  NO_MODEL: 'no_model',
  NO_INDEX: 'no_index',
  INDEX_UNAVAILABLE: 'index_unavailable',
  KEYWORD_SEARCH_ONLY: 'keyword_search_only',
  FILE_REFUSED: 'file_refused',
  SUGGESTION_UNPARSABLE: 'suggestion_unparsable',
  SUGGESTION_WITHHELD: 'suggestion_withheld',
  AGENT_NO_TOOLS: 'agent_no_tools',
  AGENT_LIMIT: 'agent_limit',
  MCP_UNAVAILABLE: 'mcp_unavailable'
} as const;

export type NoticeCode = (typeof NoticeCode)[keyof typeof NoticeCode];

// --- client frames ----------------------------------------------------------------

/** One variable of the user's kernel: `summary` is a shape, a length or a short repr. */
export interface IKernelVariable {
  name: string;
  type: string;
  summary: string;
}

/** What the client knows about where the question was asked; every key is optional. */
export interface IChatContext {
  notebook_path?: string;
  active_cell?: string;
  selection?: string;
  error?: string;
  kernel_id?: string;
  /** The active cell's position in the notebook, 0-based. */
  cell_index?: number;
  /** Its nbformat id, when the notebook has ids. */
  cell_id?: string;
  /** Its nbformat type (additive to v1): the prompt fences a markdown cell as markdown. */
  cell_type?: 'code' | 'markdown' | 'raw';
  /** At most MAX_VARIABLES of the kernel's variables. */
  variables?: IKernelVariable[];
  /** What the user attached with `@`, in the order of the text (additive to v1). */
  mentions?: IMention[];
  /** What this client does for the agent (additive to v1; docs/agent.md). */
  agent?: IAgentCapabilities;
}

/** The sidebar's side of the agent's approval contract. */
export interface IAgentCapabilities {
  /** This client runs cells in the open notebook and answers approval frames. */
  can_run: boolean;
  /** The user switched on "auto-apply edits": the server marks suggestions auto_apply. */
  auto_apply: boolean;
}

/** protocol.py's bounds on `context.mentions`; the server refuses a frame past them. */
export const MAX_MENTIONS = 20;
export const MAX_MENTION_COLUMNS = 200;
export const MAX_MENTION_VALUES = 8_000;
export const MAX_MENTION_SOURCE = 20_000;
export const MAX_MENTION_NAME = 2_000;

/**
 * One `@` attachment. variable: described by the kernel (values only for `@name:values`);
 * file: a path relative to the server's root, resolved (and refused) by the server;
 * cell: a cell of the active notebook, numbered from 1, with its source.
 */
export type IMention =
  | {
      kind: 'variable';
      name: string;
      type: string;
      summary?: string;
      shape?: number[];
      columns?: string[];
      dtypes?: string[];
      values?: string;
    }
  | { kind: 'file'; path: string }
  | { kind: 'cell'; cell: number; source: string; cell_type?: string };

export interface IChatFrame {
  type: 'chat';
  v: typeof PROTOCOL_VERSION;
  id: string;
  conversation_id: string;
  text: string;
  context?: IChatContext;
  /** One of the hello frame's `models`; absent means the server's default. */
  model?: string;
  /** Force an engine by name (see IHelloFrame.engines); a slash command does the same. */
  engine?: string;
}

export interface ICancelFrame {
  type: 'cancel';
  v: typeof PROTOCOL_VERSION;
  id: string;
}

/** After a dropped socket: turn `id`'s frames numbered above `after`, then the live ones. */
export interface IResumeFrame {
  type: 'resume';
  v: typeof PROTOCOL_VERSION;
  id: string;
  /** The last frame number `n` seen of this turn; 0 for none. */
  after: number;
}

/** How the user answered an approval frame (additive to v1). */
export const ApprovalDecision = {
  ALLOW: 'allow',
  /** This run and every further one of the turn. */
  ALLOW_TURN: 'allow_turn',
  /** Every run for the rest of the conversation (the server remembers it). */
  ALLOW_CONVERSATION: 'allow_conversation',
  DENY: 'deny'
} as const;

export type ApprovalDecision =
  (typeof ApprovalDecision)[keyof typeof ApprovalDecision];

export interface IApproveFrame {
  type: 'approve';
  v: typeof PROTOCOL_VERSION;
  /** The turn's id. */
  id: string;
  approval_id: string;
  decision: ApprovalDecision;
}

/** One output of a run, as plain text (the client trims it). */
export interface IRunOutput {
  output_type: 'stream' | 'execute_result' | 'display_data';
  text: string;
}

export interface IRunError {
  ename: string;
  evalue: string;
  traceback: string[];
}

/** How an approved run (or interrupt) went, sent after it. */
export interface IRunResultFrame {
  type: 'run_result';
  v: typeof PROTOCOL_VERSION;
  id: string;
  approval_id: string;
  status: 'ok' | 'error' | 'aborted';
  execution_count: number | null;
  outputs: IRunOutput[];
  error: IRunError | null;
}

/** The client trims each run output to this many characters, and sends this many. */
export const MAX_RUN_OUTPUT_CHARS = 4_000;
export const MAX_RUN_OUTPUTS = 20;

export type ClientFrame =
  IChatFrame | ICancelFrame | IResumeFrame | IApproveFrame | IRunResultFrame;

// --- server frames ----------------------------------------------------------------

export interface IModelInfo {
  configured: boolean;
  name: string | null;
}

/** An engine the server offers, and the slash commands that pick it. */
export interface IEngineInfo {
  name: string;
  title: string;
  description: string;
  /** e.g. ["/review", "/analyze"]; empty for engines only the router picks. */
  commands: string[];
}

export interface IHelloFrame {
  type: 'hello';
  protocol_version: number;
  /** The default model. */
  model: IModelInfo;
  /** The model names this user may pick. */
  models: string[];
  engines: IEngineInfo[];
}

/** The states a plugin can change to at run time (protocol.md, "Outside turns"). */
export const PluginState = {
  /** A hot reload, or a newly added plugin, loaded: `version` is the new one. */
  LOADED: 'loaded',
  /** Turned off after repeated failures; `reason` says which. */
  DISABLED: 'disabled',
  /** A reload failed; the previous version keeps running (`reason`: "reload failed: ..."). */
  FAILED: 'failed',
  /** Unloaded: its file was removed, or it was refused. */
  SKIPPED: 'skipped'
} as const;

export type PluginState = (typeof PluginState)[keyof typeof PluginState];

/** Which plugin changed, to what, and why. */
export interface IPluginChange {
  name: string;
  /** One of PluginState; typed as string so states added later still parse. */
  state: string;
  /** Empty when the server gave none. */
  reason: string;
  /** The plugin's version; empty when it has none (e.g. it never loaded). */
  version: string;
}

/**
 * Additive to v1, outside turns: a plugin's state changed at run time. `engines` replaces
 * the hello frame's list (so the slash commands follow). No `id` and no `n`: it may
 * arrive between the frames of an answer in flight and belongs to none of them.
 */
export interface IPluginsFrame {
  type: 'plugins';
  engines: IEngineInfo[];
  /** Absent when only the list changed. */
  changed?: IPluginChange;
}

/** Which engine answers the turn, and why; the first frame of every turn. */
export interface IRouteFrame {
  type: 'route';
  id: string;
  engine: string;
  reason: string;
  /** Chosen by a slash command or the chat frame's `engine`, not by the router. */
  forced: boolean;
  confidence: number;
}

/** A reasoning step starts or finishes; its text arrives as chunks carrying `step`. */
export interface IStepFrame {
  type: 'step';
  id: string;
  step: string;
  title: string;
  /** "started" or "finished"; typed as string so statuses added later still parse. */
  status: string;
  /** An agent's tool call, on "started" (additive to v1). */
  tool?: IStepTool;
}

/** The tool call a step is: what the sidebar shows and where the notebook scrolls to. */
export interface IStepTool {
  name: string;
  /** The parsed JSON arguments (an object; anything else arrives as {}). */
  arguments: Record<string, unknown>;
  /** The cell it reads, edits or runs, 1-based; null for none. */
  cell_index: number | null;
  /** The notebook that cell is in; null for none. */
  path: string | null;
}

export interface IChunkFrame {
  type: 'chunk';
  id: string;
  seq: number;
  text: string;
  /** Set when the text belongs to a reasoning step rather than to the answer. */
  step?: string;
}

/** A place in the project an answer may cite as `[n]`. */
export interface ICitation {
  n: number;
  /** Relative to the server's root. */
  path: string;
  /** e.g. "code_cell", "markdown_cell", "function", "section". */
  kind: string;
  /** The cell's index in the notebook, 0-based; null for files. */
  cell: number | null;
  /** 1-based lines in a file; null for cells. */
  start_line: number | null;
  end_line: number | null;
  title: string;
  score: number;
}

export interface ICitationsFrame {
  type: 'citations';
  id: string;
  /** The whole list so far, not only what is new. */
  citations: ICitation[];
}

/** One problem found in generated code (lines are 1-based). */
export interface IFinding {
  source: string;
  code: string;
  message: string;
  line: number;
  col: number;
  end_line: number | null;
  /** "error", "warning" or "info". */
  severity: string;
  fix: string | null;
  /** Which Python block of the answer, when it has several. */
  block?: number;
}

/** One self-correction round of generated code. */
export interface ICorrection {
  round: number;
  findings: IFinding[];
  /** This round's code has no errors left (warnings may remain). */
  fixed: boolean;
}

export interface ICorrectionFrame extends ICorrection {
  type: 'correction';
  id: string;
}

export interface ISuggestionTarget {
  /** null: the active cell of an unsaved or unnamed notebook. */
  path: string | null;
  cell_index: number | null;
  cell_id: string | null;
}

/** How a suggestion changes its target (ISuggestion.mode). */
export const SuggestionMode = {
  REPLACE: 'replace',
  INSERT_AFTER: 'insert_after',
  INSERT_MARKDOWN_AFTER: 'insert_markdown_after',
  /** Remove the target cell (additive to v1: the agent's delete_cell). */
  DELETE: 'delete'
} as const;

export type SuggestionMode =
  (typeof SuggestionMode)[keyof typeof SuggestionMode];

/** A change the user may apply, as the server stored it. */
export interface ISuggestion {
  id: string;
  conversation_id: string | null;
  message_id: string | null;
  title: string;
  /**
   * A SuggestionMode: "replace" the target, "insert_after" it (a new code cell below) or
   * "insert_markdown_after" it (a new Markdown cell below); typed as string so modes
   * added later still parse (placement.ts refuses to apply one it does not know).
   */
  mode: string;
  /** "proposed", "applied" or "rejected". */
  status: string;
  target: ISuggestionTarget;
  /** contentHash() of `original`: the target must still hash to this to apply. */
  base_hash: string;
  original: string;
  proposed: string;
  /** Unified diff from `original` to `proposed`. */
  diff: string;
  /** Seconds since the epoch; resolved_at is null until applied or rejected. */
  created_at: number | null;
  resolved_at: number | null;
  /** The server asks the client to apply it at once (auto-apply edits is on). */
  auto_apply?: boolean;
}

export interface ISuggestionFrame {
  type: 'suggestion';
  id: string;
  suggestion: ISuggestion;
}

/**
 * What an approval asks for: running a cell, interrupting its kernel, or (tool) letting
 * the server call an MCP server's write/run tool: answered by the decision alone.
 */
export const ApprovalKind = {
  RUN: 'run',
  INTERRUPT: 'interrupt',
  TOOL: 'tool'
} as const;

/** The MCP tool a `tool` approval would call. */
export interface IApprovalTool {
  server: string;
  name: string;
  /** "write" or "run". */
  permission: string;
}

/** The agent asks to run a cell (or interrupt the kernel); the turn waits for the answer. */
export interface IApprovalFrame {
  type: 'approval';
  id: string;
  approval_id: string;
  /** An ApprovalKind; typed as string so kinds added later still parse. */
  kind: string;
  title: string;
  path: string | null;
  /** 1-based; null for an interrupt of the notebook's kernel. */
  cell_index: number | null;
  cell_id: string | null;
  /** The cell's code as the agent expects it. */
  source: string;
  /** Pending suggestions of this turn on that cell: applied before the run. */
  suggestion_ids: string[];
  /** Already allowed for the conversation: the client runs it without asking. */
  auto: boolean;
  /** Kind tool: which MCP tool (its arguments, as JSON, are in `source`). */
  tool?: IApprovalTool | null;
}

export interface IApprovalClosedFrame {
  type: 'approval.closed';
  id: string;
  approval_id: string;
  /** "answered", "timeout" or "cancelled". */
  reason: string;
}

export interface ITaskStep {
  title: string;
  /** "done", "skipped" or "todo". */
  status: string;
}

/** A multi-step task; `current` may equal steps.length once every step is through. */
export interface ITask {
  goal: string;
  steps: ITaskStep[];
  current: number;
}

export interface ITaskFrame {
  type: 'task';
  id: string;
  task: ITask;
}

/** Something to know about the answer, e.g. code "no_model". */
export interface INotice {
  code: string;
  message: string;
  /** A front-end command that acts on the notice (e.g. index the project). */
  action?: INoticeAction;
}

export interface INoticeAction {
  command: string;
  label: string;
}

export interface INoticeFrame extends INotice {
  type: 'notice';
  id: string;
}

export interface IUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

/** One try at one model, in the order the server made them. */
export interface IAttempt {
  model: string;
  /** e.g. "ok", "rate_limited", "server_error", "breaker_open", "cached". */
  outcome: string;
  /** Set when the server waited this long before trying again. */
  retry_in_s?: number;
}

export interface IDoneFrame {
  type: 'done';
  id: string;
  usage: IUsage;
  /** "stop", "cancelled", or whatever the provider reported (e.g. "length"). */
  finish_reason: string;
  /** The model that answered, which may be a fallback; null when none did (cancelled). */
  model: string | null;
  /** null when the model is unpriced. */
  cost_usd: number | null;
  /** Served from the recent-answer cache because the provider is paused. */
  cached: boolean;
  attempts: IAttempt[];
  /** The engine that answered. */
  engine: string | null;
  conversation_id: string | null;
  /** The stored answer's id. */
  message_id: string | null;
}

export interface IErrorFrame {
  type: 'error';
  /** null when the offending frame had no usable id. */
  id: string | null;
  /** One of ErrorCode; typed as string so codes added later still parse. */
  code: string;
  message: string;
  /** Seconds until a retry may succeed (rate_limited, provider_unavailable). */
  retry_after?: number;
}

export type ServerFrame =
  | IHelloFrame
  | IPluginsFrame
  | IRouteFrame
  | IStepFrame
  | IChunkFrame
  | ICitationsFrame
  | ICorrectionFrame
  | ISuggestionFrame
  | IApprovalFrame
  | IApprovalClosedFrame
  | ITaskFrame
  | INoticeFrame
  | IDoneFrame
  | IErrorFrame;

// --- REST --------------------------------------------------------------------------

/** Tokens and money spent; one shape for a user, a model or a conversation. */
export interface IUsageTotals {
  requests: number;
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  cost_usd: number;
  /** Answers from models with no known price, so cost_usd leaves them out. */
  unpriced_requests: number;
}

/** GET rubberduck/api/usage: the calling user's spending since the server started. */
export interface IUsageReport {
  user: string;
  totals: IUsageTotals;
  by_model: Record<string, IUsageTotals>;
  /** By conversation_id. */
  conversations: Record<string, IUsageTotals>;
}

/** One entry of GET rubberduck/api/conversations (newest first). */
export interface IConversationSummary {
  id: string;
  title: string;
  /** "question", "code_review", "bug_fix" or "feature_request". */
  context_type: string;
  /** Seconds since the epoch. */
  created_at: number;
  updated_at: number;
  task: ITask | null;
  n_messages: number;
  /** The start of the newest question, null for an empty conversation. */
  last_question: string | null;
}

/** How a stored answer came about (the `route` frame, without its id). */
export interface IStoredRoute {
  engine: string;
  reason: string;
  confidence: number;
  forced: boolean;
  command: string | null;
}

export interface IStoredStep {
  step: string;
  title: string;
  text: string;
  /** Characters of the answer's text before the step (additive; null when not stored). */
  answer_at: number | null;
}

/** What the server keeps beside an answer's text. */
export interface IAnswerMeta {
  route: IStoredRoute | null;
  steps: IStoredStep[];
  citations: ICitation[];
  /** Suggestion ids, resolved against IConversationDetail.suggestions. */
  suggestions: string[];
  corrections: ICorrection[];
  notices: INotice[];
  usage: IUsage | null;
  model: string | null;
  cost_usd: number | null;
  error: { code: string; message: string; cancelled: boolean } | null;
}

export interface IStoredMessage {
  id: string;
  seq: number;
  role: 'user' | 'assistant';
  content: string;
  /** The chat frame's id: a question and its answer share it. */
  turn_id: string;
  /** "pending", "answered", "complete", "incomplete" or "error". */
  status: string;
  engine: string | null;
  meta: IAnswerMeta;
  created_at: number;
}

/** GET rubberduck/api/conversations/{id}. */
export interface IConversationDetail {
  conversation: IConversationSummary;
  messages: IStoredMessage[];
  suggestions: ISuggestion[];
}

// --- validation --------------------------------------------------------------------

type Json = Record<string, unknown>;

const isObject = (value: unknown): value is Json =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

const isString = (value: unknown): value is string => typeof value === 'string';

const isCount = (value: unknown): value is number =>
  typeof value === 'number' && Number.isInteger(value) && value >= 0;

const isNonNegative = (value: unknown): value is number =>
  typeof value === 'number' && Number.isFinite(value) && value >= 0;

const stringOr = <T>(value: unknown, fallback: T): string | T =>
  isString(value) ? value : fallback;

const countOrNull = (value: unknown): number | null =>
  isCount(value) ? value : null;

/** The valid items of a list; anything else is an empty list. */
function listOf<T>(raw: unknown, parse: (item: unknown) => T | null): T[] {
  if (!Array.isArray(raw)) {
    return [];
  }
  const out: T[] = [];
  for (const item of raw) {
    const parsed = parse(item);
    if (parsed !== null) {
      out.push(parsed);
    }
  }
  return out;
}

function parseAttempt(item: unknown): IAttempt | null {
  if (!isObject(item) || !isString(item.model) || !isString(item.outcome)) {
    return null;
  }
  const attempt: IAttempt = { model: item.model, outcome: item.outcome };
  if (isNonNegative(item.retry_in_s)) {
    attempt.retry_in_s = item.retry_in_s;
  }
  return attempt;
}

function parseUsage(raw: unknown): IUsage {
  const usage = isObject(raw) ? raw : {};
  const count = (name: string): number =>
    isCount(usage[name]) ? (usage[name] as number) : 0;
  return {
    prompt_tokens: count('prompt_tokens'),
    completion_tokens: count('completion_tokens'),
    total_tokens: count('total_tokens')
  };
}

function parseEngine(item: unknown): IEngineInfo | null {
  if (!isObject(item) || !isString(item.name)) {
    return null;
  }
  return {
    name: item.name,
    title: stringOr(item.title, item.name),
    description: stringOr(item.description, ''),
    commands: listOf(item.commands, c =>
      isString(c) && c.startsWith('/') ? c : null
    )
  };
}

export function parseCitation(item: unknown): ICitation | null {
  if (!isObject(item) || !isCount(item.n) || !isString(item.path)) {
    return null;
  }
  return {
    n: item.n,
    path: item.path,
    kind: stringOr(item.kind, ''),
    cell: countOrNull(item.cell),
    start_line: countOrNull(item.start_line),
    end_line: countOrNull(item.end_line),
    title: stringOr(item.title, ''),
    score: isNonNegative(item.score) ? item.score : 0
  };
}

function parseFinding(item: unknown): IFinding | null {
  if (!isObject(item) || !isString(item.message)) {
    return null;
  }
  const finding: IFinding = {
    source: stringOr(item.source, ''),
    code: stringOr(item.code, ''),
    message: item.message,
    line: isCount(item.line) ? item.line : 0,
    col: isCount(item.col) ? item.col : 0,
    end_line: countOrNull(item.end_line),
    severity: stringOr(item.severity, 'warning'),
    fix: stringOr(item.fix, null)
  };
  if (isCount(item.block)) {
    finding.block = item.block;
  }
  return finding;
}

export function parseCorrection(item: unknown): ICorrection | null {
  if (!isObject(item) || !isCount(item.round)) {
    return null;
  }
  return {
    round: item.round,
    findings: listOf(item.findings, parseFinding),
    fixed: item.fixed === true
  };
}

export function parseSuggestion(item: unknown): ISuggestion | null {
  if (
    !isObject(item) ||
    !isString(item.id) ||
    !isString(item.proposed) ||
    !isObject(item.target)
  ) {
    return null;
  }
  const target = item.target;
  return {
    id: item.id,
    conversation_id: stringOr(item.conversation_id, null),
    message_id: stringOr(item.message_id, null),
    title: stringOr(item.title, ''),
    mode: stringOr(item.mode, 'replace'),
    status: stringOr(item.status, 'proposed'),
    target: {
      path: stringOr(target.path, null),
      cell_index: countOrNull(target.cell_index),
      cell_id: stringOr(target.cell_id, null)
    },
    base_hash: stringOr(item.base_hash, ''),
    original: stringOr(item.original, ''),
    proposed: item.proposed,
    diff: stringOr(item.diff, ''),
    created_at: isNonNegative(item.created_at) ? item.created_at : null,
    resolved_at: isNonNegative(item.resolved_at) ? item.resolved_at : null,
    ...(item.auto_apply === true ? { auto_apply: true } : {})
  };
}

function parseStepTool(raw: unknown): IStepTool | null {
  if (!isObject(raw) || !isString(raw.name)) {
    return null;
  }
  return {
    name: raw.name,
    arguments: isObject(raw.arguments) ? raw.arguments : {},
    cell_index:
      isCount(raw.cell_index) && raw.cell_index > 0 ? raw.cell_index : null,
    path: stringOr(raw.path, null)
  };
}

export function parseTask(raw: unknown): ITask | null {
  if (!isObject(raw) || !isString(raw.goal)) {
    return null;
  }
  const steps = listOf(raw.steps, step =>
    isObject(step) && isString(step.title)
      ? { title: step.title, status: stringOr(step.status, 'todo') }
      : null
  );
  return {
    goal: raw.goal,
    steps,
    current: isCount(raw.current) ? raw.current : steps.length
  };
}

function parseNotice(item: unknown): INotice | null {
  if (!(isObject(item) && isString(item.code) && isString(item.message))) {
    return null;
  }
  const action = item.action;
  // Only commands of ours: a notice must never run another extension's command.
  if (
    isObject(action) &&
    isString(action.command) &&
    isString(action.label) &&
    action.command.startsWith('rubberduck:')
  ) {
    return {
      code: item.code,
      message: item.message,
      action: { command: action.command, label: action.label }
    };
  }
  return { code: item.code, message: item.message };
}

function parsePluginsFrame(raw: Json): IPluginsFrame | null {
  // Without a list, nothing would replace the hello's: an empty one would wipe the
  // slash commands, so a frame with no `engines` array is malformed.
  if (!Array.isArray(raw.engines)) {
    return null;
  }
  const frame: IPluginsFrame = {
    type: 'plugins',
    engines: listOf(raw.engines, parseEngine)
  };
  const changed = raw.changed;
  if (isObject(changed) && isString(changed.name) && isString(changed.state)) {
    frame.changed = {
      name: changed.name,
      state: changed.state,
      reason: stringOr(changed.reason, ''),
      version: stringOr(changed.version, '')
    };
  }
  return frame;
}

/**
 * Validate one server frame; returns null for anything malformed so a bad frame
 * can never throw inside the socket's message handler.
 */
export function parseServerFrame(data: unknown): ServerFrame | null {
  if (!isString(data)) {
    return null;
  }
  let raw: unknown;
  try {
    raw = JSON.parse(data);
  } catch {
    return null;
  }
  return serverFrameOf(raw);
}

/**
 * The frame number `n` the server puts on every frame of a turn on the WebSocket
 * (1, 2, ... per turn; what a resume continues after), or null when there is none.
 */
export function frameNumber(raw: unknown): number | null {
  return isObject(raw) && isCount(raw.n) && raw.n > 0 ? raw.n : null;
}

/** parseServerFrame for an already decoded JSON value. */
export function serverFrameOf(raw: unknown): ServerFrame | null {
  if (!isObject(raw)) {
    return null;
  }
  if (raw.type === 'hello') {
    const model = raw.model;
    if (!isCount(raw.protocol_version) || !isObject(model)) {
      return null;
    }
    return {
      type: 'hello',
      protocol_version: raw.protocol_version,
      model: {
        configured: model.configured === true,
        name: isString(model.name) ? model.name : null
      },
      models: listOf(raw.models, m => (isString(m) ? m : null)),
      engines: listOf(raw.engines, parseEngine)
    };
  }
  if (raw.type === 'plugins') {
    return parsePluginsFrame(raw);
  }
  if (raw.type === 'error') {
    if (!isString(raw.code) || !isString(raw.message)) {
      return null;
    }
    const frame: IErrorFrame = {
      type: 'error',
      id: isString(raw.id) ? raw.id : null,
      code: raw.code,
      message: raw.message
    };
    if (isNonNegative(raw.retry_after)) {
      frame.retry_after = raw.retry_after;
    }
    return frame;
  }
  // Every other frame belongs to a turn.
  if (!isString(raw.id)) {
    return null;
  }
  const id = raw.id;
  switch (raw.type) {
    case 'route':
      if (!isString(raw.engine)) {
        return null;
      }
      return {
        type: 'route',
        id,
        engine: raw.engine,
        reason: stringOr(raw.reason, ''),
        forced: raw.forced === true,
        confidence: isNonNegative(raw.confidence) ? raw.confidence : 0
      };
    case 'step': {
      if (!isString(raw.step) || !isString(raw.status)) {
        return null;
      }
      const frame: IStepFrame = {
        type: 'step',
        id,
        step: raw.step,
        title: stringOr(raw.title, raw.step),
        status: raw.status
      };
      const tool = parseStepTool(raw.tool);
      if (tool) {
        frame.tool = tool;
      }
      return frame;
    }
    case 'chunk': {
      if (!isCount(raw.seq) || !isString(raw.text)) {
        return null;
      }
      const frame: IChunkFrame = {
        type: 'chunk',
        id,
        seq: raw.seq,
        text: raw.text
      };
      if (isString(raw.step)) {
        frame.step = raw.step;
      }
      return frame;
    }
    case 'citations':
      return {
        type: 'citations',
        id,
        citations: listOf(raw.citations, parseCitation)
      };
    case 'correction': {
      const correction = parseCorrection(raw);
      return correction ? { type: 'correction', id, ...correction } : null;
    }
    case 'suggestion': {
      const suggestion = parseSuggestion(raw.suggestion);
      return suggestion ? { type: 'suggestion', id, suggestion } : null;
    }
    case 'approval': {
      if (!isString(raw.approval_id) || !isString(raw.kind)) {
        return null;
      }
      const tool = parseApprovalTool(raw.tool);
      return {
        type: 'approval',
        id,
        approval_id: raw.approval_id,
        kind: raw.kind,
        title: stringOr(raw.title, ''),
        path: stringOr(raw.path, null),
        cell_index:
          isCount(raw.cell_index) && raw.cell_index > 0 ? raw.cell_index : null,
        cell_id: stringOr(raw.cell_id, null),
        source: stringOr(raw.source, ''),
        suggestion_ids: listOf(raw.suggestion_ids, s =>
          isString(s) ? s : null
        ),
        auto: raw.auto === true,
        ...(tool ? { tool } : {})
      };
    }
    case 'approval.closed':
      if (!isString(raw.approval_id)) {
        return null;
      }
      return {
        type: 'approval.closed',
        id,
        approval_id: raw.approval_id,
        reason: stringOr(raw.reason, 'answered')
      };
    case 'task': {
      const task = parseTask(raw.task);
      return task ? { type: 'task', id, task } : null;
    }
    case 'notice': {
      const notice = parseNotice(raw);
      return notice ? { type: 'notice', id, ...notice } : null;
    }
    case 'done':
      return {
        type: 'done',
        id,
        usage: parseUsage(raw.usage),
        finish_reason: stringOr(raw.finish_reason, 'stop'),
        model: stringOr(raw.model, null),
        cost_usd: isNonNegative(raw.cost_usd) ? raw.cost_usd : null,
        cached: raw.cached === true,
        attempts: listOf(raw.attempts, parseAttempt),
        engine: stringOr(raw.engine, null),
        conversation_id: stringOr(raw.conversation_id, null),
        message_id: stringOr(raw.message_id, null)
      };
    default:
      return null;
  }
}

// --- REST validation ---------------------------------------------------------------

export function parseConversationSummary(
  item: unknown
): IConversationSummary | null {
  if (!isObject(item) || !isString(item.id)) {
    return null;
  }
  const time = (value: unknown): number => (isNonNegative(value) ? value : 0);
  return {
    id: item.id,
    title: stringOr(item.title, 'Untitled'),
    context_type: stringOr(item.context_type, 'question'),
    created_at: time(item.created_at),
    updated_at: time(item.updated_at),
    task: parseTask(item.task),
    n_messages: isCount(item.n_messages) ? item.n_messages : 0,
    last_question: stringOr(item.last_question, null)
  };
}

export function parseConversationList(raw: unknown): IConversationSummary[] {
  return isObject(raw)
    ? listOf(raw.conversations, parseConversationSummary)
    : [];
}

function parseRoute(raw: unknown): IStoredRoute | null {
  if (!isObject(raw) || !isString(raw.engine)) {
    return null;
  }
  return {
    engine: raw.engine,
    reason: stringOr(raw.reason, ''),
    confidence: isNonNegative(raw.confidence) ? raw.confidence : 0,
    forced: raw.forced === true,
    command: stringOr(raw.command, null)
  };
}

function parseAnswerMeta(raw: unknown): IAnswerMeta {
  const meta = isObject(raw) ? raw : {};
  const error = isObject(meta.error) ? meta.error : null;
  return {
    route: parseRoute(meta.route),
    steps: listOf(meta.steps, step =>
      isObject(step) && isString(step.step)
        ? {
            step: step.step,
            title: stringOr(step.title, step.step),
            text: stringOr(step.text, ''),
            answer_at: countOrNull(step.answer_at)
          }
        : null
    ),
    citations: listOf(meta.citations, parseCitation),
    suggestions: listOf(meta.suggestions, s => (isString(s) ? s : null)),
    corrections: listOf(meta.corrections, parseCorrection),
    notices: listOf(meta.notices, parseNotice),
    usage: isObject(meta.usage) ? parseUsage(meta.usage) : null,
    model: stringOr(meta.model, null),
    cost_usd: isNonNegative(meta.cost_usd) ? meta.cost_usd : null,
    error: error
      ? {
          code: stringOr(error.code, 'internal'),
          message: stringOr(error.message, ''),
          cancelled: error.cancelled === true
        }
      : null
  };
}

function parseStoredMessage(item: unknown): IStoredMessage | null {
  if (
    !isObject(item) ||
    !isString(item.id) ||
    !isString(item.content) ||
    (item.role !== 'user' && item.role !== 'assistant')
  ) {
    return null;
  }
  return {
    id: item.id,
    seq: isCount(item.seq) ? item.seq : 0,
    role: item.role,
    content: item.content,
    turn_id: stringOr(item.turn_id, ''),
    status: stringOr(item.status, 'complete'),
    engine: stringOr(item.engine, null),
    meta: parseAnswerMeta(item.meta),
    created_at: isNonNegative(item.created_at) ? item.created_at : 0
  };
}

export function parseConversationDetail(
  raw: unknown
): IConversationDetail | null {
  if (!isObject(raw)) {
    return null;
  }
  const conversation = parseConversationSummary(raw.conversation);
  if (!conversation) {
    return null;
  }
  return {
    conversation,
    // In the server's order, which is the order to show (context/memory.py
    // display_order): sorting by seq here would split a question from its answer.
    messages: listOf(raw.messages, parseStoredMessage),
    suggestions: listOf(raw.suggestions, parseSuggestion)
  };
}

// --- inline completion (/rubberduck/api/complete/ws, docs/protocol.md) -------------

/** The client sends at most this many earlier cells, each cut to this many characters. */
export const MAX_COMPLETION_CELLS = 50;
export const MAX_COMPLETION_CELL_CHARS = 4_000;

export interface ICompletionCell {
  cell_type: 'code' | 'markdown';
  source: string;
}

/** A kernel variable as completion context: no values, a shape like "(100, 3)" or "". */
export interface ICompletionVariable {
  name: string;
  type: string;
  shape: string;
}

export interface ICompleteFrame {
  type: 'complete';
  v?: number;
  /** Unique per request; the server's frames for it carry it back. */
  id: string;
  /** The notebook or file, relative to the server's root. */
  path: string;
  language: string;
  prefix: string;
  suffix: string;
  /** The notebook's earlier cells, nearest first. */
  cells: ICompletionCell[];
  variables: ICompletionVariable[];
  multiline: boolean;
  max_lines: number;
}

export interface ICompletionCancelFrame {
  type: 'cancel';
  v?: number;
  id: string;
}

export type CompletionClientFrame = ICompleteFrame | ICompletionCancelFrame;

/** The status GET /rubberduck/api/complete/status answers. */
export interface ICompletionStatus {
  enabled: boolean;
  model: string | null;
  fim: boolean;
  /** Why completion is off; null when it is on. */
  reason: string | null;
}

export type CompletionServerFrame =
  | { type: 'completion.chunk'; id: string; text: string }
  | { type: 'completion.done'; id: string; text: string; cached: boolean }
  | {
      type: 'completion.error';
      id: string;
      code: string;
      message: string;
      retry_after: number | null;
    }
  | { type: 'completion.cancelled'; id: string };

/** One completion socket frame, or null for anything malformed (never throws). */
export function completionFrameOf(raw: unknown): CompletionServerFrame | null {
  // An error about a frame without a valid id (too large, not JSON) has id null: ''.
  const id =
    isObject(raw) && raw.type === 'completion.error' && raw.id === null
      ? ''
      : isObject(raw) && isString(raw.id)
        ? raw.id
        : null;
  if (!isObject(raw) || id === null) {
    return null;
  }
  switch (raw.type) {
    case 'completion.chunk':
      return isString(raw.text) ? { type: raw.type, id, text: raw.text } : null;
    case 'completion.done':
      return isString(raw.text)
        ? { type: raw.type, id, text: raw.text, cached: raw.cached === true }
        : null;
    case 'completion.error':
      return {
        type: raw.type,
        id,
        code: isString(raw.code) ? raw.code : ErrorCode.INTERNAL,
        message: isString(raw.message) ? raw.message : '',
        retry_after:
          typeof raw.retry_after === 'number' &&
          Number.isFinite(raw.retry_after) &&
          raw.retry_after >= 0
            ? raw.retry_after
            : null
      };
    case 'completion.cancelled':
      return { type: raw.type, id };
    default:
      return null;
  }
}

/** The status body, or null when it is not one. */
export function parseCompletionStatus(raw: unknown): ICompletionStatus | null {
  if (!isObject(raw) || typeof raw.enabled !== 'boolean') {
    return null;
  }
  return {
    enabled: raw.enabled,
    model: isString(raw.model) ? raw.model : null,
    fim: raw.fim === true,
    reason: isString(raw.reason) ? raw.reason : null
  };
}

function parseApprovalTool(raw: unknown): IApprovalTool | null {
  if (!isObject(raw) || !isString(raw.server) || !isString(raw.name)) {
    return null;
  }
  return {
    server: raw.server,
    name: raw.name,
    permission: stringOr(raw.permission, 'run')
  };
}
