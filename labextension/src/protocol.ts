/**
 * The RubberDuck wire protocol, mirroring rubberduck_jupyter/protocol.py.
 *
 * Keep the two files in step: any incompatible change bumps PROTOCOL_VERSION on
 * both sides; additive fields do not.
 */

export const PROTOCOL_VERSION = 1;

export const MAX_ID_LENGTH = 128;
export const MAX_CONTEXT_STRING = 200_000;

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
  INTERNAL: 'internal'
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

// --- client frames ----------------------------------------------------------------

/** What the client knows about where the question was asked; every key is optional. */
export interface IChatContext {
  notebook_path?: string;
  active_cell?: string;
  selection?: string;
  error?: string;
  kernel_id?: string;
}

export interface IChatFrame {
  type: 'chat';
  v: typeof PROTOCOL_VERSION;
  id: string;
  conversation_id: string;
  text: string;
  context?: IChatContext;
  /** One of the hello frame's `models`; absent means the server's default. */
  model?: string;
}

export interface ICancelFrame {
  type: 'cancel';
  v: typeof PROTOCOL_VERSION;
  id: string;
}

export type ClientFrame = IChatFrame | ICancelFrame;

// --- server frames ----------------------------------------------------------------

export interface IModelInfo {
  configured: boolean;
  name: string | null;
}

export interface IHelloFrame {
  type: 'hello';
  protocol_version: number;
  /** The default model. */
  model: IModelInfo;
  /** The model names this user may pick. */
  models: string[];
}

export interface IChunkFrame {
  type: 'chunk';
  id: string;
  seq: number;
  text: string;
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

export type ServerFrame = IHelloFrame | IChunkFrame | IDoneFrame | IErrorFrame;

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

type Json = Record<string, unknown>;

const isObject = (value: unknown): value is Json =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

const isString = (value: unknown): value is string => typeof value === 'string';

const isCount = (value: unknown): value is number =>
  typeof value === 'number' && Number.isInteger(value) && value >= 0;

const isNonNegative = (value: unknown): value is number =>
  typeof value === 'number' && Number.isFinite(value) && value >= 0;

function parseAttempts(raw: unknown): IAttempt[] {
  if (!Array.isArray(raw)) {
    return [];
  }
  const attempts: IAttempt[] = [];
  for (const item of raw) {
    if (!isObject(item) || !isString(item.model) || !isString(item.outcome)) {
      continue;
    }
    const attempt: IAttempt = { model: item.model, outcome: item.outcome };
    if (isNonNegative(item.retry_in_s)) {
      attempt.retry_in_s = item.retry_in_s;
    }
    attempts.push(attempt);
  }
  return attempts;
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
  if (!isObject(raw)) {
    return null;
  }
  switch (raw.type) {
    case 'hello': {
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
        models: Array.isArray(raw.models) ? raw.models.filter(isString) : []
      };
    }
    case 'chunk':
      if (!isString(raw.id) || !isCount(raw.seq) || !isString(raw.text)) {
        return null;
      }
      return { type: 'chunk', id: raw.id, seq: raw.seq, text: raw.text };
    case 'done':
      if (!isString(raw.id)) {
        return null;
      }
      return {
        type: 'done',
        id: raw.id,
        usage: parseUsage(raw.usage),
        finish_reason: isString(raw.finish_reason) ? raw.finish_reason : 'stop',
        model: isString(raw.model) ? raw.model : null,
        cost_usd: isNonNegative(raw.cost_usd) ? raw.cost_usd : null,
        cached: raw.cached === true,
        attempts: parseAttempts(raw.attempts)
      };
    case 'error': {
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
    default:
      return null;
  }
}
