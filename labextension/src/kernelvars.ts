/**
 * The kernel's variables, asked of an idle IPython kernel with a silent execute request
 * whose only work is one user expression, so nothing shows in the notebook, the
 * execution count and history stay as they were, and the user's namespace gains nothing.
 */
import type { NotebookPanel } from '@jupyterlab/notebook';
import type { Kernel, KernelMessage } from '@jupyterlab/services';

import {
  IKernelVariable,
  IMention,
  MAX_MENTION_COLUMNS,
  MAX_MENTION_NAME,
  MAX_MENTION_VALUES,
  MAX_VARIABLES
} from './protocol';

/** Past this the question goes out without variables. */
export const VARIABLES_TIMEOUT_MS = 1_500;
const MAX_LISTED = Math.min(100, MAX_VARIABLES);
const EXPRESSION_KEY = 'rubberduck_variables';

/*
 * Runs in the kernel. A user expression must be one expression, and try/except is a
 * statement, so the expression execs this function into a fresh dict (never the user's
 * namespace) and calls it. Every look at a user object is guarded: a property or
 * __getattr__ that raises costs that variable only; attributes are read only where the
 * class itself defines them (no __getattr__ fallbacks); reprs go through reprlib, which
 * bounds containers; and the loop gives up after a time budget.
 */
const PYTHON_LISTER = `
def _rubberduck_variables(limit):
    import inspect, reprlib, time, types
    from IPython import get_ipython
    shell = get_ipython()
    ns = shell.user_ns
    # What IPython itself put there (In, Out, exit, ...), not the user's work.
    skip = set(getattr(shell, "user_ns_hidden", {})) | {"In", "Out", "exit", "quit", "get_ipython"}
    plain = (types.ModuleType, types.FunctionType, types.BuiltinFunctionType,
             types.MethodType, type)
    sized = (list, tuple, dict, set, frozenset, str, bytes, bytearray, range)
    short = reprlib.Repr()
    short.maxstring = 60
    short.maxother = 80
    short.maxlist = short.maxtuple = short.maxdict = short.maxset = 6
    started = time.monotonic()

    def static(value, name):
        try:
            inspect.getattr_static(value, name)
            return True
        except Exception:
            return False

    def describe(value):
        cls = type(value)
        module = getattr(cls, "__module__", "") or ""
        name = getattr(cls, "__qualname__", "") or getattr(cls, "__name__", "?")
        kind = name if module == "builtins" else module.split(".")[0] + "." + name
        parts = []
        if static(value, "shape"):
            try:
                parts.append("shape " + repr(tuple(int(n) for n in value.shape)))
            except Exception:
                pass
        if static(value, "columns") and module.split(".")[0] in ("pandas", "polars"):
            try:
                names = [str(c) for c in list(value.columns)[:21]]
                more = ", …" if len(names) > 20 else ""
                parts.append("columns " + ", ".join(names[:20]) + more)
            except Exception:
                pass
        if isinstance(value, (str, bytes)):
            # The text itself says more than its length, up to a point.
            text = short.repr(value)[:80]
            parts.append(text if len(value) <= 60 else text + " (len " + str(len(value)) + ")")
        if not parts and (isinstance(value, sized) or static(value, "__len__")):
            try:
                parts.append("len " + str(int(len(value))))
            except Exception:
                pass
        if not parts:
            try:
                parts.append(short.repr(value)[:80])
            except Exception:
                parts.append("<unprintable>")
        return kind, "; ".join(parts)

    out = []
    for name, value in list(ns.items()):
        if len(out) >= limit or time.monotonic() - started > 0.8:
            break
        if not isinstance(name, str) or name.startswith("_") or name in skip:
            continue
        try:
            if isinstance(value, plain):
                continue
            kind, summary = describe(value)
        except Exception:
            continue
        out.append({"name": name, "type": kind[:200], "summary": summary[:400]})
    return out
`;

/**
 * Evaluates to an object whose _repr_json_ is the list, so the reply carries it as
 * application/json and nothing has to parse a Python repr. Builtins are reached through
 * the builtins module: the user may well have a variable named `type`.
 */
export const VARIABLES_EXPRESSION =
  '(lambda __rd, __b: (__b.exec(' +
  JSON.stringify(PYTHON_LISTER) +
  ', __rd), __b.type("RubberDuckVariables", (), {"_repr_json_": ' +
  `lambda self, *a, **k: __rd["_rubberduck_variables"](${MAX_LISTED})` +
  '})())[1])({}, __import__("builtins"))';

/**
 * The variables of the notebook's kernel, or null when the kernel is missing, busy,
 * not IPython, or slower than `timeoutMs`.
 */
export async function kernelVariables(
  panel: NotebookPanel,
  timeoutMs = VARIABLES_TIMEOUT_MS
): Promise<IKernelVariable[] | null> {
  const content = await evaluate(panel, VARIABLES_EXPRESSION, timeoutMs);
  return content ? parseVariables(content) : null;
}

/**
 * Runs one user expression in an idle kernel, silently (see the top of this file);
 * the reply's content, or null when the kernel is missing, busy or too slow.
 */
async function evaluate(
  panel: NotebookPanel,
  expression: string,
  timeoutMs: number
): Promise<KernelMessage.IExecuteReplyMsg['content'] | null> {
  const kernel = panel.sessionContext.session?.kernel;
  if (!kernel) {
    return null;
  }
  const started = Date.now();
  if (kernel.status === 'busy' && !(await idleWithin(kernel, timeoutMs))) {
    return null;
  }
  if (kernel.status !== 'idle') {
    return null;
  }
  timeoutMs = Math.max(100, timeoutMs - (Date.now() - started));
  let future: ReturnType<typeof kernel.requestExecute> | null = null;
  let timer = 0;
  try {
    future = kernel.requestExecute(
      {
        code: '',
        silent: true,
        store_history: false,
        allow_stdin: false,
        stop_on_error: false,
        user_expressions: { [EXPRESSION_KEY]: expression }
      },
      true
    );
    const timeout = new Promise<null>(resolve => {
      timer = window.setTimeout(() => resolve(null), timeoutMs);
    });
    const reply = await Promise.race([future.done, timeout]);
    return reply ? reply.content : null;
  } catch {
    return null;
  } finally {
    window.clearTimeout(timer);
    future?.dispose();
  }
}

/*
 * A kernel is busy for a moment after most clicks (JupyterLab asks it for completions,
 * history, comm state); wait for it to come back rather than send no variables.
 */
function idleWithin(
  kernel: Kernel.IKernelConnection,
  ms: number
): Promise<boolean> {
  return new Promise(resolve => {
    const done = (ok: boolean): void => {
      window.clearTimeout(timer);
      kernel.statusChanged.disconnect(onStatus);
      resolve(ok);
    };
    const onStatus = (): void => {
      if (kernel.status === 'idle') {
        done(true);
      } else if (kernel.status !== 'busy') {
        done(false);
      }
    };
    const timer = window.setTimeout(() => done(false), ms);
    kernel.statusChanged.connect(onStatus);
  });
}

function expressionResult(
  content: KernelMessage.IExecuteReplyMsg['content']
): unknown {
  if (content.status !== 'ok') {
    return null;
  }
  const result = content.user_expressions?.[EXPRESSION_KEY] as
    { status?: string; data?: Record<string, unknown> } | undefined;
  return result?.status === 'ok' ? result.data?.['application/json'] : null;
}

function parseVariables(
  content: KernelMessage.IExecuteReplyMsg['content']
): IKernelVariable[] | null {
  const list = expressionResult(content);
  if (!Array.isArray(list)) {
    return null;
  }
  const variables: IKernelVariable[] = [];
  for (const item of list.slice(0, MAX_LISTED)) {
    if (
      typeof item === 'object' &&
      item !== null &&
      typeof item.name === 'string' &&
      typeof item.type === 'string' &&
      typeof item.summary === 'string'
    ) {
      variables.push({
        name: item.name,
        type: item.type,
        summary: item.summary
      });
    }
  }
  return variables;
}

// --- one variable, described for an @ mention -----------------------------------------

/*
 * Runs in the kernel, guarded like the lister above: the type, shape, columns and dtypes
 * of each named variable (attributes read only where the class defines them), and its
 * values only when asked, bounded: a data frame's first rows, an array's summary print,
 * anything else through a roomier reprlib.
 */
const PYTHON_DESCRIBER = `
def _rubberduck_describe(wanted, max_values, max_columns):
    import inspect, reprlib
    from IPython import get_ipython
    ns = get_ipython().user_ns
    short = reprlib.Repr()
    short.maxstring = 200
    short.maxother = 200
    roomy = reprlib.Repr()
    roomy.maxstring = max_values
    roomy.maxother = max_values
    roomy.maxlist = roomy.maxtuple = roomy.maxdict = roomy.maxset = 50
    roomy.maxlevel = 3

    def static(value, name):
        try:
            inspect.getattr_static(value, name)
            return True
        except Exception:
            return False

    def describe(name, with_values):
        if name not in ns:
            return {"name": name, "missing": True}
        value = ns[name]
        cls = type(value)
        module = getattr(cls, "__module__", "") or ""
        top = module.split(".")[0]
        qual = getattr(cls, "__qualname__", "") or getattr(cls, "__name__", "?")
        item = {"name": name, "type": (qual if module == "builtins" else top + "." + qual)[:200]}
        if static(value, "shape"):
            try:
                item["shape"] = [int(n) for n in value.shape][:32]
            except Exception:
                pass
        if static(value, "columns") and top in ("pandas", "polars"):
            try:
                item["columns"] = [str(c)[:200] for c in list(value.columns)[:max_columns]]
                item["dtypes"] = [str(t)[:200] for t in list(value.dtypes)[:max_columns]]
            except Exception:
                pass
        elif static(value, "dtype"):
            try:
                item["dtypes"] = [str(value.dtype)[:200]]
            except Exception:
                pass
        if "columns" not in item:
            try:
                item["summary"] = short.repr(value)[:400]
            except Exception:
                item["summary"] = "<unprintable>"
        if with_values:
            try:
                if top == "pandas" and static(value, "head"):
                    text = value.head(20).to_string(max_cols=30, max_colwidth=60)
                elif top == "numpy":
                    import numpy
                    text = numpy.array2string(value, threshold=200, edgeitems=5)
                elif top == "polars" and static(value, "head"):
                    text = str(value.head(20))
                else:
                    text = roomy.repr(value)
            except Exception as exc:
                text = "<values not readable: " + type(exc).__name__ + ">"
            item["values"] = text[:max_values]
        return item

    out = []
    for name, with_values in wanted[:20]:
        try:
            out.append(describe(str(name), bool(with_values)))
        except Exception:
            out.append({"name": str(name), "missing": True})
    return out
`;

/** Mentions of variables the kernel could not describe: not defined, or no kernel. */
export const MISSING_TYPE = 'not defined in the kernel';

function describeExpression(wanted: [string, boolean][]): string {
  // Arguments travel as a JSON string the kernel parses: names cannot become code.
  const args = JSON.stringify(JSON.stringify(wanted));
  return (
    '(lambda __rd, __b: (__b.exec(' +
    JSON.stringify(PYTHON_DESCRIBER) +
    ', __rd), __b.type("RubberDuckDescribe", (), {"_repr_json_": ' +
    `lambda self, *a, **k: __rd["_rubberduck_describe"](__b.__import__("json").loads(${args}), ` +
    `${MAX_DESCRIBED_VALUES}, ${MAX_MENTION_COLUMNS})` +
    '})())[1])({}, __import__("builtins"))'
  );
}

// Under protocol.py's MAX_MENTION_VALUES, with room for the server's redaction marks.
const MAX_DESCRIBED_VALUES = Math.min(6_000, MAX_MENTION_VALUES);

function strings(value: unknown, max: number): string[] | undefined {
  return Array.isArray(value) && value.every(v => typeof v === 'string')
    ? value.slice(0, max).map(v => v.slice(0, MAX_MENTION_NAME))
    : undefined;
}

/**
 * Each named variable as the kernel describes it (one silent request for all); a
 * variable the kernel does not have, or every one when there is no idle IPython
 * kernel, comes back typed MISSING_TYPE, so the model knows it was named but not seen.
 */
export async function describeVariables(
  panel: NotebookPanel | null,
  wanted: { name: string; values: boolean }[],
  timeoutMs = VARIABLES_TIMEOUT_MS
): Promise<IMention[]> {
  const missing = (name: string): IMention => ({
    kind: 'variable',
    name,
    type: MISSING_TYPE
  });
  if (!wanted.length) {
    return [];
  }
  const content = panel
    ? await evaluate(
        panel,
        describeExpression(wanted.map(w => [w.name, w.values])),
        timeoutMs
      )
    : null;
  const list = content ? expressionResult(content) : null;
  const found = new Map<string, IMention>();
  if (Array.isArray(list)) {
    for (const raw of list as Record<string, unknown>[]) {
      if (
        typeof raw !== 'object' ||
        raw === null ||
        typeof raw.name !== 'string' ||
        raw.missing === true ||
        typeof raw.type !== 'string'
      ) {
        continue;
      }
      const item: IMention = {
        kind: 'variable',
        name: raw.name,
        type: raw.type
      };
      const shape = raw.shape;
      if (
        Array.isArray(shape) &&
        shape.every(n => Number.isInteger(n) && n >= 0)
      ) {
        item.shape = (shape as number[]).slice(0, 32);
      }
      item.columns = strings(raw.columns, MAX_MENTION_COLUMNS);
      item.dtypes = strings(raw.dtypes, MAX_MENTION_COLUMNS);
      if (typeof raw.summary === 'string') {
        item.summary = raw.summary.slice(0, MAX_MENTION_NAME);
      }
      if (typeof raw.values === 'string') {
        item.values = raw.values.slice(0, MAX_DESCRIBED_VALUES);
      }
      found.set(raw.name, item);
    }
  }
  return wanted.map(w => found.get(w.name) ?? missing(w.name));
}
