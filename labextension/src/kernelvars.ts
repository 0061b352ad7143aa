/**
 * The kernel's variables, asked of an idle IPython kernel with a silent execute request
 * whose only work is one user expression, so nothing shows in the notebook, the
 * execution count and history stay as they were, and the user's namespace gains nothing.
 */
import type { NotebookPanel } from '@jupyterlab/notebook';
import type { KernelMessage } from '@jupyterlab/services';

import { IKernelVariable, MAX_VARIABLES } from './protocol';

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
  const kernel = panel.sessionContext.session?.kernel;
  if (!kernel || kernel.status !== 'idle') {
    return null;
  }
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
        user_expressions: { [EXPRESSION_KEY]: VARIABLES_EXPRESSION }
      },
      true
    );
    const timeout = new Promise<null>(resolve => {
      timer = window.setTimeout(() => resolve(null), timeoutMs);
    });
    const reply = await Promise.race([future.done, timeout]);
    if (!reply) {
      return null;
    }
    return parseVariables(reply.content);
  } catch {
    return null;
  } finally {
    window.clearTimeout(timer);
    future?.dispose();
  }
}

function parseVariables(
  content: KernelMessage.IExecuteReplyMsg['content']
): IKernelVariable[] | null {
  if (content.status !== 'ok') {
    return null;
  }
  const result = content.user_expressions?.[EXPRESSION_KEY] as
    { status?: string; data?: Record<string, unknown> } | undefined;
  const list =
    result?.status === 'ok' ? result.data?.['application/json'] : null;
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
