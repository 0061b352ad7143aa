"""Describe one kernel variable (or a cell) as the server's `@` mention expects it.

`describe_object(name, value, rows=N)` returns the dict of a `variable` Mention
(rubberduck_jupyter/protocol.py): type, shape, columns, dtypes, a one-line `summary` with
what the columns do not say (a frame's index, memory, nulls; an array's min/max/mean; an
estimator's parameters and whether it is fitted), and, when asked with `rows`, the first
rows as text in `values`. `describe_cells` shapes cell sources as `cell` mentions.

Why it is built this way:
- The package runs in any kernel (standard library only): pandas, polars, numpy, torch and
  scikit-learn objects are recognised by their class's module and name along the MRO,
  never by importing the library, and a library function is only ever reached through the
  object's own module in `sys.modules` (which is there, since the object exists).
- Describing must not change the kernel. On a class we do not know, an attribute is read
  only when `inspect.getattr_static` finds a plain value (no property or other descriptor
  runs); type checks use `issubclass(type(v), ...)` since `isinstance` may run a
  `__class__` property. On the libraries we know, only cheap, read-only accessors are used.
- Describing must not take long: anything O(n) (nulls, min/max/mean, uniqueness) runs
  only under SCAN_LIMIT elements, about 1-10 ms on a laptop; above it the summary says it
  was skipped. A 10^8-element array is described in well under a millisecond.
- Describing never raises: every facet is computed in its own guard, so an object whose
  `__repr__`, `shape` or `columns` raises gets a shorter description. `_bounded` then
  enforces the protocol's limits whatever a describer produced, so the server's
  validation cannot reject what we send.
- A secret-looking name (a word of it ending in key, token, secret, password, passwd, pwd or
  credential: `api_key`, `openaiApiKey`; not `keys` or `tokenizer`) keeps its type
  and shape, but no values and no value-bearing summary leave the kernel; the server
  redacts as well, this just never sends them.
"""

from __future__ import annotations

import builtins
import contextlib
import inspect
import re
import reprlib
import sys
import types
import warnings
from collections.abc import Callable, Iterable
from itertools import islice
from typing import Any

# The protocol's limits (rubberduck_jupyter/protocol.py): MAX_MENTION_NAME bounds every
# string but values and source, MAX_MENTION_COLUMNS the columns/dtypes lists.
MAX_TEXT = 2_000
MAX_SUMMARY = 2_000
MAX_COLUMNS = 200
MAX_VALUES = 8_000
MAX_SOURCE = 20_000
MAX_DIMS = 32
MAX_CELL = 1_000_000
# One column name, dtype or type string: a line, far below MAX_TEXT, so 200 of them stay
# readable in the prompt.
MAX_ITEM = 200
# `rows=N` asks for at most this many rows (a screen of data is what a model can use).
MAX_ROWS = 50
# Above this many elements (cells for a frame) no O(n) pass runs: ~1-10 ms below it.
SCAN_LIMIT = 1_000_000
# An index's order and uniqueness need a hash table of its labels: ~30 ms for 10^5 strings,
# 300 ms for 10^6, so a lower limit than the vectorised passes above.
INDEX_SCAN_LIMIT = 100_000
# memory_usage() builds a Series over the columns: ~8 us a column (164 ms for 20,000); a
# wider frame's memory is estimated from its dtypes' item sizes instead.
MEMORY_USAGE_MAX_COLUMNS = 1_000
# Keys of a dict, distinct element types of a sequence, parameters of an estimator:
# enough to recognise the thing, few enough for one summary line.
MAX_KEYS = 20
MAX_ELEMENT_TYPES = 5
ELEMENTS_LOOKED_AT = 100
MAX_NULL_COLUMNS = 30
MAX_PARAMS = 40
# Width of a frame's `values` text: a model reads 20 columns of 50 characters well.
VALUES_MAX_COLS = 20
VALUES_MAX_COLWIDTH = 50
VALUES_LINE_WIDTH = 160

SECRET_PARTS = (
    "key",
    "token",
    "secret",
    "secrets",
    "password",
    "passwd",
    "pwd",
    "credential",
    "credentials",
)
# Words that end in a secret word and are not one: a `monkey` holds no key.
_NOT_SECRET_WORDS = frozenset({"monkey", "turkey", "hockey", "donkey", "jockey", "whiskey"})
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
WITHHELD = "values withheld: the name looks like a secret"

_MISSING: Any = object()
# Libraries whose shape/dtype/columns accessors we know are cheap and read-only.
_TRUSTED = frozenset({"pandas", "polars", "numpy", "torch"})


class _Repr(reprlib.Repr):
    """reprlib's bounded repr, but an object whose __repr__ raises is named by type(x):
    reprlib's own fallback reads `x.__class__`, which a class can make a property."""

    def repr_instance(self, x: Any, level: int) -> str:
        try:
            s = builtins.repr(x)
        except Exception:
            return f"<{_attempt(lambda: type(x).__qualname__, '?')} object, repr failed>"
        if len(s) > self.maxother:
            i = max(0, (self.maxother - 3) // 2)
            j = max(0, self.maxother - 3 - i)
            s = s[:i] + "..." + s[len(s) - j :]
        return s


_short = _Repr()
_short.maxstring = 80
_short.maxother = 80
_short.maxlist = _short.maxtuple = _short.maxset = _short.maxdict = 6
_short.maxlevel = 2


def is_secret_name(name: str) -> bool:
    """A variable name that says its value is a secret (`api_key`, `DB_PASSWORD`,
    `openaiApiKey`, `authtoken`). Read word by word (snake and camel case), each word
    ending in a secret word: a substring test also hid `keys`, `tokenizer`, `monkey`
    and `tokens`, whose values are what a question about them needs."""
    return any(
        word.endswith(SECRET_PARTS) and word not in _NOT_SECRET_WORDS for word in _name_words(name)
    )


def _name_words(name: str) -> list[str]:
    spaced = _CAMEL_BOUNDARY.sub("_", name)
    return [word for word in re.split(r"[^a-z0-9]+", spaced.lower()) if word]


# --- guards ----------------------------------------------------------------------------


def _attempt(fn: Callable[[], Any], default: Any = None) -> Any:
    try:
        return fn()
    except Exception:
        return default


def _static(value: object, name: str) -> Any:
    """The attribute as stored, without running any descriptor; _MISSING if absent."""
    try:
        return inspect.getattr_static(value, name)
    except Exception:
        return _MISSING


def _plain(value: object, name: str) -> Any:
    """The attribute of an unknown object only when reading it runs no code of its class:
    an instance attribute or a plain class attribute, not a property or descriptor."""
    attr = _static(value, name)
    if attr is _MISSING or hasattr(type(attr), "__get__"):
        return _MISSING
    return attr


def _is(value: object, cls: type | tuple[type, ...]) -> bool:
    # issubclass on the real type: isinstance would consult a `__class__` property.
    return issubclass(type(value), cls)


def _repr(value: object, limit: int = 80) -> str:
    text = _attempt(lambda: _short.repr(value))
    if not isinstance(text, str):
        return f"<{_attempt(lambda: type(value).__name__, '?')} object, repr failed>"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _size(n: int | float) -> str:
    if n < 1024:
        return f"{int(n)} B"
    value, units = float(n) / 1024, ["KiB", "MiB", "GiB", "TiB"]
    while value >= 1024 and len(units) > 1:
        value /= 1024
        units.pop(0)
    return f"{value:.1f} {units[0]}"


def _num(x: Any) -> str:
    if _classes(x)[:1] == [("numpy", type(x).__name__)]:
        x = _attempt(lambda: x.item(), x)  # 5 rather than np.int64(5)
    if _is(x, float):
        return f"{float(x):.6g}"
    return _repr(x, 40)


def _classes(value: object) -> list[tuple[str, str]]:
    """(top package, class name) along the MRO: a subclass of DataFrame is a DataFrame."""
    out = []
    for cls in _attempt(lambda: type(value).__mro__, ()):
        module = str(_attempt(lambda c=cls: c.__module__, "") or "")
        out.append((module.split(".")[0], str(_attempt(lambda c=cls: c.__name__, ""))))
    return out


def _type_name(value: object) -> str:
    cls = type(value)
    module = str(_attempt(lambda: cls.__module__, "") or "")
    qual = str(_attempt(lambda: cls.__qualname__, "") or _attempt(lambda: cls.__name__, "?"))
    if module in ("builtins", "__main__", ""):
        return qual
    top = module.split(".")[0]
    if top in _TRUSTED:
        return f"{top}.{qual}"  # they export their classes at the top: pandas.DataFrame
    # Elsewhere the public path: sklearn.linear_model._logistic -> sklearn.linear_model.
    public = []
    for part in module.split("."):
        if part.startswith("_"):
            break
        public.append(part)
    return ".".join([*public, qual])


def _module_of(value: object) -> Any:
    """The object's own top-level library module, already imported since the object exists."""
    module = str(_attempt(lambda: type(value).__module__, "") or "")
    return sys.modules.get(module.split(".")[0])


class _Description:
    """Facets collected for one object; each facet is added under its own guard."""

    def __init__(self, name: str, value: object, rows: int, secret: bool) -> None:
        self.name, self.value, self.rows, self.secret = name, value, rows, secret
        self.type = _type_name(value)
        self.shape: list[int] = []
        self.columns: list[str] = []
        self.dtypes: list[str] = []
        self.parts: list[str] = []  # summary facets, joined with "; "
        self.values: str | None = None

    def add(self, fn: Callable[[], str | Iterable[str] | None], *, data: bool = False) -> None:
        """Add the facet fn() returns (None adds nothing). `data` marks a facet that shows
        the variable's contents (a value, a prefix, an index's first label): not for a
        secret-named variable."""
        if data and self.secret:
            return
        try:
            facet = fn()
            facets = [] if facet is None else [facet] if isinstance(facet, str) else list(facet)
        except Exception:
            return
        self.parts.extend(facets)

    def set_values(self, fn: Callable[[], str]) -> None:
        if self.rows <= 0 or self.secret:
            return
        try:
            self.values = fn()
        except Exception as exc:
            self.values = f"<values not readable: {type(exc).__name__}>"

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"kind": "variable", "name": self.name, "type": self.type}
        parts = list(self.parts)
        if self.secret:
            parts.append(WITHHELD)
        if parts:
            out["summary"] = "; ".join(parts)
        if self.shape:
            out["shape"] = self.shape
        if self.columns:
            out["columns"] = self.columns
        if self.dtypes:
            out["dtypes"] = self.dtypes
        if self.values is not None:
            out["values"] = self.values
        return out


def _shape_of(value: object) -> list[int]:
    shape = value.shape  # type: ignore[attr-defined]
    dims = [int(n) for n in islice(shape, MAX_DIMS + 1)]
    if len(dims) > MAX_DIMS or any(n < 0 for n in dims):
        return []
    return dims


def _strings(items: Iterable[Any]) -> list[str]:
    return [_clip(str(item), MAX_ITEM) for item in islice(items, MAX_COLUMNS)]


def _columns_note(total: int) -> str | None:
    # The server only sees the 200 we send; say there are more.
    if total > MAX_COLUMNS:
        return f"first {MAX_COLUMNS} of {total:,} columns listed"
    return None


def _cells(shape: list[int]) -> int:
    total = 1
    for n in shape:
        total *= n
    return total


# --- pandas ------------------------------------------------------------------------------


def _pandas_index(index: Any) -> str:
    cls = type(index).__name__
    text = f"index: {cls}"
    nlevels = _attempt(lambda: int(index.nlevels), 1)
    if nlevels > 1:
        names = ", ".join(_repr(n, 40) for n in islice(index.names, 10))
        return f"{text} of {nlevels} levels ({names}), {len(index):,} entries"
    if index.name is not None:
        text += f" {_repr(index.name, 60)}"
    text += f" ({index.dtype})"
    n = len(index)
    if cls == "RangeIndex":
        start, step = int(index.start), int(index.step)
        if n:
            text += f" {start}..{start + (n - 1) * step}" + (f" step {step}" if step != 1 else "")
        return text + (" (empty)" if not n else "")
    if n:
        text += f" {_label(index[0])} .. {_label(index[-1])}"
        freq = _attempt(lambda: index.freqstr)
        if freq:
            text += f", freq {freq}"
        if n <= INDEX_SCAN_LIMIT:
            order = _attempt(
                lambda: (
                    "increasing"
                    if index.is_monotonic_increasing
                    else ("decreasing" if index.is_monotonic_decreasing else "unsorted")
                )
            )
            unique = _attempt(lambda: "unique" if index.is_unique else "with duplicates")
            text += "".join(f", {w}" for w in (order, unique) if w)
    else:
        text += " (empty)"
    return text


def _label(label: object) -> str:
    # A string label quoted (so 'a b' reads as one); a Timestamp as 2024-01-01 00:00:00.
    if _is(label, str):
        return _repr(label, 60)
    return _clip(str(_attempt(lambda: str(label), "?")), 60)


def _pandas_memory(value: Any, shape: list[int]) -> str:
    if len(shape) == 2 and shape[1] > MEMORY_USAGE_MAX_COLUMNS:
        # An extension dtype without an item size counts as a pointer, as deep=False does.
        width = sum(int(getattr(t, "itemsize", 8) or 8) for t in value.dtypes)
        return f"memory ≈ {_size(width * shape[0])} (estimated from the dtypes)"
    usage = value.memory_usage(index=True, deep=False)
    total = int(usage.sum()) if hasattr(usage, "sum") else int(usage)
    # deep=False counts an object column's pointers, not the strings they point to.
    return f"memory ≈ {_size(total)} (shallow)"


def _pandas_nulls(value: Any, cells: int, *, series: bool) -> str:
    if cells > SCAN_LIMIT:
        return f"nulls not counted (more than {SCAN_LIMIT:,} cells)"
    counts = value.isna().sum()
    if series:
        n = int(counts)
        return f"nulls: {n:,}" if n else "no nulls"
    found = [(str(col), int(n)) for col, n in counts.items() if n]
    if not found:
        return "no nulls"
    shown = ", ".join(f"{_clip(col, 60)} {n:,}" for col, n in found[:MAX_NULL_COLUMNS])
    more = len(found) - MAX_NULL_COLUMNS
    return f"nulls: {shown}" + (f", and {more} more columns with nulls" if more > 0 else "")


def _pandas_text(value: Any, rows: int) -> str:
    head = value.head(rows)
    if hasattr(head, "columns"):
        text = head.to_string(
            max_cols=VALUES_MAX_COLS, max_colwidth=VALUES_MAX_COLWIDTH, line_width=None
        )
    else:
        text = head.to_string(max_rows=rows)
    total = int(value.shape[0])
    note = f"first {min(rows, total)} of {total:,} rows"
    return f"{note}\n{text}"


def _pandas_frame(d: _Description) -> None:
    v: Any = d.value
    d.shape = _attempt(lambda: _shape_of(v), [])
    d.columns = _attempt(lambda: _strings(v.columns), [])
    d.dtypes = _attempt(lambda: _strings(v.dtypes), [])
    ncols = d.shape[1] if len(d.shape) == 2 else len(d.columns)
    d.add(lambda: _columns_note(ncols))
    d.add(lambda: _pandas_index(v.index), data=True)
    d.add(lambda: _pandas_memory(v, d.shape))
    d.add(lambda: _pandas_nulls(v, _cells(d.shape), series=False))
    d.set_values(lambda: _pandas_text(v, d.rows))


def _pandas_series(d: _Description) -> None:
    v: Any = d.value
    d.shape = _attempt(lambda: _shape_of(v), [])
    d.dtypes = _attempt(lambda: [_clip(str(v.dtype), MAX_ITEM)], [])
    d.add(lambda: f"name {_repr(v.name, 80)}" if v.name is not None else "unnamed")
    d.add(lambda: _pandas_index(v.index), data=True)
    d.add(lambda: _pandas_memory(v, d.shape))
    d.add(lambda: _pandas_nulls(v, _cells(d.shape), series=True))
    d.set_values(lambda: _pandas_text(v, d.rows))


# --- polars ------------------------------------------------------------------------------


def _polars_text(d: _Description) -> str:
    v: Any = d.value
    pl = _module_of(v)
    # polars prints 10 rows by default, eliding the middle: show all the rows asked for.
    with pl.Config(
        tbl_rows=d.rows,
        tbl_cols=VALUES_MAX_COLS,
        fmt_str_lengths=VALUES_MAX_COLWIDTH,
        tbl_width_chars=VALUES_LINE_WIDTH,
    ):
        text = str(v.head(d.rows))
    return f"first {min(d.rows, d.shape[0] if d.shape else 0):,} of {len(v):,} rows\n{text}"


def _polars_nulls(v: Any, *, series: bool) -> str:
    # polars keeps null counts with each column's buffers: this is O(columns), not O(cells).
    if series:
        n = int(v.null_count())
        return f"nulls: {n:,}" if n else "no nulls"
    counts = v.null_count().row(0)
    found = [(c, int(n)) for c, n in zip(v.columns, counts, strict=False) if n]
    if not found:
        return "no nulls"
    shown = ", ".join(f"{_clip(c, 60)} {n:,}" for c, n in found[:MAX_NULL_COLUMNS])
    more = len(found) - MAX_NULL_COLUMNS
    return f"nulls: {shown}" + (f", and {more} more columns with nulls" if more > 0 else "")


def _polars_frame(d: _Description) -> None:
    v: Any = d.value
    d.shape = _attempt(lambda: _shape_of(v), [])
    d.columns = _attempt(lambda: _strings(v.columns), [])
    d.dtypes = _attempt(lambda: _strings(v.dtypes), [])
    d.add(lambda: _columns_note(d.shape[1] if len(d.shape) == 2 else 0))
    d.add(lambda: f"memory ≈ {_size(v.estimated_size())} (estimated_size)")
    d.add(lambda: _polars_nulls(v, series=False))
    d.set_values(lambda: _polars_text(d))


def _polars_series(d: _Description) -> None:
    v: Any = d.value
    d.shape = _attempt(lambda: _shape_of(v), [])
    d.dtypes = _attempt(lambda: [_clip(str(v.dtype), MAX_ITEM)], [])
    d.add(lambda: f"name {_repr(v.name, 80)}")
    d.add(lambda: f"memory ≈ {_size(v.estimated_size())} (estimated_size)")
    d.add(lambda: _polars_nulls(v, series=True))
    d.set_values(lambda: _polars_text(d))


def _polars_lazy(d: _Description) -> None:
    v: Any = d.value
    # The schema only: resolving it reads no data beyond a scan's header; nothing collects.
    schema = _attempt(lambda: v.collect_schema())
    if schema is not None:
        d.columns = _attempt(lambda: _strings(schema.names()), [])
        d.dtypes = _attempt(lambda: _strings(schema.dtypes()), [])
        d.add(lambda: _columns_note(len(schema)))
        d.add(lambda: f"lazy: {len(schema)} columns, rows unknown until collected")
    else:
        d.add(lambda: "lazy: schema not resolvable without running the query")
    # The unoptimized plan is built from the query alone: it tells what the frame will do.
    # Data: a filter's literals are in it.
    d.add(
        lambda: "plan: " + _clip(" ".join(str(v.explain(optimized=False)).split()), 600),
        data=True,
    )
    if d.rows > 0 and not d.secret:
        d.values = "not collected: a LazyFrame's rows are computed only by .collect()"


# --- numpy and torch --------------------------------------------------------------------


def _numpy_stats(v: Any, np: Any, size: int) -> str | None:
    kind = v.dtype.kind
    if size == 0 or kind not in "biuf":
        return None
    if size > SCAN_LIMIT:
        return f"min/max/mean skipped (more than {SCAN_LIMIT:,} elements)"
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        if kind == "b":
            return f"true {int(np.count_nonzero(v)):,} of {size:,}"
        text = ""
        if kind == "f":
            nans = int(np.isnan(v).sum())
            if nans == size:
                return "all NaN"
            text = f"; NaN {nans:,} of {size:,}" if nans else "; no NaN"
        low, high, mean = np.nanmin(v), np.nanmax(v), np.nanmean(v)
        return f"min {_num(low)}, max {_num(high)}, mean {_num(mean)}{text}"


def _element_types(items: Iterable[Any]) -> str:
    seen: list[str] = []
    for item in islice(items, ELEMENTS_LOOKED_AT):
        name = _type_name(item)
        if name not in seen:
            seen.append(name)
            if len(seen) > MAX_ELEMENT_TYPES:
                break
    if not seen:
        return ""
    more = ", …" if len(seen) > MAX_ELEMENT_TYPES else ""
    return ", ".join(seen[:MAX_ELEMENT_TYPES]) + more


def _numpy_text(v: Any, np: Any, rows: int) -> str:
    if v.ndim == 0:
        return np.array2string(v)
    sub = v[:rows]
    # Small enough: every element; else numpy's own summary with a few items per axis.
    threshold = sub.size + 1 if sub.size <= 2_000 else 200
    text = np.array2string(sub, threshold=threshold, edgeitems=5, max_line_width=120)
    return f"first {len(sub):,} of {len(v):,} along axis 0\n{text}"


def _numpy_array(d: _Description) -> None:
    v: Any = d.value
    np = _module_of(v)
    d.shape = _attempt(lambda: _shape_of(v), [])
    d.dtypes = _attempt(lambda: [_clip(str(v.dtype), MAX_ITEM)], [])
    size = _attempt(lambda: int(v.size), 0)
    d.add(lambda: "0-d array" if v.ndim == 0 else None)
    d.add(lambda: f"memory ≈ {_size(v.nbytes)} (nbytes)")
    d.add(lambda: _numpy_stats(v, np, size), data=True)
    d.add(lambda: "elements: " + _element_types(v.flat) if v.dtype.kind == "O" and size else None)
    d.set_values(lambda: _numpy_text(v, np, d.rows))


def _numpy_scalar(d: _Description) -> None:
    v: Any = d.value
    d.dtypes = _attempt(lambda: [_clip(str(v.dtype), MAX_ITEM)], [])
    d.add(lambda: f"value {_repr(v.item(), 200)}", data=True)


def _torch_tensor(d: _Description) -> None:
    v: Any = d.value
    d.shape = _attempt(lambda: _shape_of(v), [])
    d.dtypes = _attempt(lambda: [_clip(str(v.dtype), MAX_ITEM)], [])
    d.add(lambda: f"device {v.device}")
    d.add(lambda: f"memory ≈ {_size(int(v.numel()) * int(v.element_size()))}")
    d.add(lambda: "requires_grad" if v.requires_grad else None)
    # str() of a tensor is bounded by torch's own print threshold (1,000 elements).
    d.set_values(lambda: str(v[: d.rows] if v.dim() else v))


# --- scikit-learn ------------------------------------------------------------------------


def _estimator_short(value: object) -> str:
    module = str(_attempt(lambda: type(value).__module__, "") or "")
    if module.startswith("sklearn."):
        return f"{type(value).__name__}(…)"
    return _repr(value, 60)


def _fitted_names(value: object) -> list[str]:
    # scikit-learn's own rule (check_is_fitted): fit sets attributes ending in "_".
    return [k for k in _attempt(lambda: list(vars(value)), []) if k.endswith("_") and k[:1] != "_"]


def _sklearn_fitted(v: Any) -> str:
    names = _fitted_names(v)
    own = _static(v, "__sklearn_is_fitted__")
    # Pipelines and meta-estimators say themselves (a Pipeline is fitted when its last step is).
    fitted = bool(v.__sklearn_is_fitted__()) if own is not _MISSING else bool(names)
    if not fitted:
        return "not fitted"
    return "fitted" + (f" ({', '.join(names[:10])})" if names else "")


def _sklearn_learned(v: Any) -> Iterable[str]:
    state = _attempt(lambda: vars(v), {}) or {}
    steps = state.get("steps")
    if isinstance(steps, list) and steps:
        # A pipeline's input is its first step's.
        first = steps[0][1] if _is(steps[0], tuple) and len(steps[0]) == 2 else None
        state = _attempt(lambda: vars(first), {}) or {}
    out = []
    if "n_features_in_" in state:
        out.append(f"n_features_in_ {_repr(state['n_features_in_'], 20)}")
    names = state.get("feature_names_in_")
    if names is not None:
        shown = [_clip(str(n), 60) for n in islice(names, MAX_KEYS)]
        more = _attempt(lambda: len(names), 0) - len(shown)
        out.append(
            "feature_names_in_: " + ", ".join(shown) + (f", … {more} more" if more > 0 else "")
        )
    classes = vars(v).get("classes_") if hasattr(v, "__dict__") else None
    if classes is not None:
        shown = _attempt(lambda: classes[:10].tolist(), None) or list(islice(classes, 10))
        more = _attempt(lambda: len(classes), 0) - len(shown)
        out.append(f"classes_ {_repr(shown, 120)}" + (f" … {more} more" if more > 0 else ""))
    return out


def _sklearn_params(v: Any) -> Iterable[str]:
    params = v.get_params(deep=False)
    out = []
    steps = params.pop("steps", None)
    if isinstance(steps, list):
        named = [
            f"{name}={_estimator_short(step)}"
            for name, step, *_ in (s for s in steps[:MAX_PARAMS] if _is(s, tuple) and len(s) >= 2)
        ]
        out.append("steps: " + ", ".join(named))
    shown = [f"{k}={_estimator_short(p)}" for k, p in islice(sorted(params.items()), MAX_PARAMS)]
    if shown:
        out.append("params: " + ", ".join(shown))
    return out


def _sklearn(d: _Description) -> None:
    v: Any = d.value
    d.add(lambda: _sklearn_fitted(v))
    d.add(lambda: _sklearn_params(v))
    d.add(lambda: _sklearn_learned(v), data=True)
    # scikit-learn bounds its own repr (about 700 characters, BaseEstimator.__repr__).
    d.set_values(lambda: repr(v))


# --- the standard library ----------------------------------------------------------------


def _values_repr(rows: int) -> _Repr:
    r = _Repr()
    r.maxstring = 200
    r.maxother = 200
    r.maxlist = r.maxtuple = r.maxset = r.maxfrozenset = r.maxdeque = r.maxdict = rows
    r.maxlevel = 3
    return r


def _first_items(v: Any, rows: int, n: int | None) -> str:
    """A dict's or set's first `rows` items in their own order: reprlib would sort the whole
    collection first (O(n log n) on a 10^7-key dict), and sorted is not the order made."""
    r = _values_repr(rows)
    level = r.maxlevel - 1
    if _is(v, dict):
        items = [f"{r.repr1(k, level)}: {r.repr1(x, level)}" for k, x in islice(v.items(), rows)]
        opening, closing = "{", "}"
    else:
        items = [r.repr1(x, level) for x in islice(v, rows)]
        opening, closing = ("{", "}") if _is(v, set) else ("frozenset({", "})")
    more = (n or 0) - len(items)
    if not items and not more:
        return "{}" if _is(v, dict) else f"{type(v).__name__}()"
    return opening + ", ".join(items) + (f", … {more:,} more" if more > 0 else "") + closing


def _dict(d: _Description) -> None:
    v: Any = d.value
    n = _attempt(lambda: len(v))
    d.add(lambda: f"{n:,} keys" if n is not None else None)

    def keys() -> str:
        shown = [f"{_repr(k, 60)}: {_kind_of(x)}" for k, x in islice(v.items(), MAX_KEYS)]
        more = (n or 0) - len(shown)
        return "; ".join(shown) + (f"; … {more} more keys" if more > 0 else "")

    d.add(lambda: keys() or None, data=True)
    d.set_values(lambda: _first_items(v, d.rows, n))


def _kind_of(x: object) -> str:
    """A dict value's type, with its size when that is cheap to know."""
    name = _type_name(x)
    return _attempt(lambda: _sized(x, name), name)


def _sized(x: object, name: str) -> str:
    if _is(x, (str, bytes, list, tuple, dict, set, frozenset)):
        return f"{name} (len {len(x)})"  # type: ignore[arg-type]
    if _classes(x) and _classes(x)[0][0] in _TRUSTED and _static(x, "shape") is not _MISSING:
        shape = _attempt(lambda: _shape_of(x))
        if shape:
            return f"{name} ({' x '.join(str(s) for s in shape)})"
    return name


def _collection(d: _Description) -> None:
    v: Any = d.value
    n = _attempt(lambda: len(v))
    d.add(lambda: f"len {n:,}" if n is not None else None)

    def types_() -> str | None:
        text = _element_types(v)
        if not text:
            return None
        where = "" if (n or 0) <= ELEMENTS_LOOKED_AT else f" (in the first {ELEMENTS_LOOKED_AT})"
        return f"element types: {text}{where}"

    d.add(types_)
    if _is(v, (set, frozenset)):
        d.set_values(lambda: _first_items(v, d.rows, n))
    else:
        d.set_values(lambda: _values_repr(d.rows).repr(v))


def _text(d: _Description) -> None:
    v: Any = d.value
    d.add(lambda: f"len {len(v):,}")
    d.add(lambda: f"starts {_repr(v[:200], 220)}" if len(v) else "empty", data=True)
    if _is(v, str):
        d.set_values(lambda: v[:MAX_VALUES])
    else:
        d.set_values(lambda: repr(bytes(v[: MAX_VALUES // 4])))


def _number(d: _Description) -> None:
    v: Any = d.value
    if _is(v, int) and not _is(v, bool) and v.bit_length() > 10_000:
        # repr of an int over 4,300 digits raises (sys.int_info.default_max_str_digits).
        d.add(lambda: f"an int of {v.bit_length():,} bits")
        return
    d.add(lambda: f"value {_repr(v, 200)}", data=True)


def _code_object(d: _Description, *, trusted: bool = True) -> None:
    """Modules, functions, methods, classes; `trusted` False for a callable object of an
    unknown class, whose names are read only as plain attributes and whose signature is not
    asked for (inspect.signature reads `__signature__` and `__wrapped__` through getattr)."""
    v: Any = d.value
    if _is(v, types.ModuleType):
        state = _attempt(lambda: vars(v), {}) or {}
        d.add(lambda: f"module {state.get('__name__', '?')}")
        d.add(lambda: f"file {state['__file__']}" if state.get("__file__") else None)
        return
    # Functions, methods and classes keep these as built-in slots: reading them runs no user
    # code. A callable object from _generic has them as plain instance attributes.
    if trusted:
        module, qual = _attempt(lambda: v.__module__), _attempt(lambda: v.__qualname__)
    else:
        module, qual = _plain(v, "__module__"), _plain(v, "__qualname__")
    if not isinstance(qual, str) and trusted:
        qual = _attempt(lambda: v.__name__, "?")
    where = f"{module}.{qual}" if isinstance(module, str) and module else str(qual)
    if _is(v, type):
        d.add(lambda: f"class {where}")
        bases = _attempt(lambda: [b.__name__ for b in v.__bases__ if b is not object], [])
        d.add(lambda: "bases: " + ", ".join(bases) if bases else None)
        return
    d.add(lambda: where)
    if trusted:
        d.add(lambda: "signature " + _clip(str(inspect.signature(v)), 300))


def _generic(d: _Description, top: str) -> None:
    v: Any = d.value
    if _is(_plain(v, "__qualname__"), str) and _static(type(v), "__call__") is not _MISSING:
        # A callable that names itself: numpy's array-function dispatchers, a wrapper.
        _code_object(d, trusted=top in _TRUSTED)
        return
    if top in _TRUSTED:
        # Index, Timestamp, Expr, dtype...: these libraries' shape/dtype are plain reads.
        if _static(v, "shape") is not _MISSING:
            d.shape = _attempt(lambda: _shape_of(v), [])
        if _static(v, "dtype") is not _MISSING:
            d.dtypes = _attempt(lambda: [_clip(str(v.dtype), MAX_ITEM)], [])
    else:
        shape = _plain(v, "shape")
        if _is(shape, tuple):
            d.shape = _attempt(lambda: _shape_of(types.SimpleNamespace(shape=shape)), [])
    d.add(lambda: "repr " + _repr(v, 300), data=True)

    def attributes() -> str | None:
        # Only the ordinary instance dict: a class can make `__dict__` itself a property.
        slot = _static(type(v), "__dict__")
        if not _is(slot, (types.GetSetDescriptorType, types.MemberDescriptorType)):
            return None
        state = vars(v)
        if not _is(state, dict) or not state:
            return None
        shown = [f"{k} ({_type_name(x)})" for k, x in islice(state.items(), MAX_KEYS)]
        more = len(state) - len(shown)
        return "attributes: " + ", ".join(shown) + (f", … {more} more" if more > 0 else "")

    d.add(attributes)
    d.set_values(lambda: _values_repr(max(d.rows, 6)).repr(v))


_KNOWN: dict[tuple[str, str], Callable[[_Description], None]] = {
    ("pandas", "DataFrame"): _pandas_frame,
    ("pandas", "Series"): _pandas_series,
    ("polars", "DataFrame"): _polars_frame,
    ("polars", "Series"): _polars_series,
    ("polars", "LazyFrame"): _polars_lazy,
    ("numpy", "ndarray"): _numpy_array,
    ("numpy", "generic"): _numpy_scalar,
    ("torch", "Tensor"): _torch_tensor,
}


def _describe(d: _Description) -> None:
    v = d.value
    if v is None or _is(v, (bool, int, float, complex)):
        _number(d)
        return
    if _is(v, (str, bytes, bytearray)):
        _text(d)
        return
    if _is(v, dict):
        _dict(d)
        return
    if _is(v, (list, tuple, set, frozenset)):
        _collection(d)
        return
    if _is(v, (types.ModuleType, types.FunctionType, types.BuiltinFunctionType, type)) or _is(
        v, types.MethodType
    ):
        _code_object(d)
        return
    classes = _classes(v)
    for key in classes:
        if key in _KNOWN:
            _KNOWN[key](d)
            return
    top = classes[0][0] if classes else ""
    module = str(_attempt(lambda: type(v).__module__, "") or "")
    if module.startswith("sklearn.") and _static(v, "get_params") is not _MISSING:
        _sklearn(d)
        return
    _generic(d, top)


def _bounded(out: dict[str, object]) -> dict[str, object]:
    """Enforce the protocol's limits and JSON-safe text, whatever a describer produced."""

    def clean(text: str, limit: int) -> str:
        # A lone surrogate cannot be sent as UTF-8: escape it rather than fail the request.
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
        return _clip(text, limit)

    for key, limit in (("name", MAX_TEXT), ("type", MAX_TEXT), ("summary", MAX_SUMMARY)):
        if key in out:
            out[key] = clean(str(out[key]), limit)
    for key in ("columns", "dtypes"):
        if key in out:
            out[key] = [clean(str(s), MAX_TEXT) for s in list(out[key])[:MAX_COLUMNS]]  # type: ignore[call-overload]
    if "values" in out:
        values = clean(str(out["values"]), MAX_VALUES)
        out["values"] = values
    if "shape" in out:
        shape = out["shape"]
        if not (
            isinstance(shape, list)
            and len(shape) <= MAX_DIMS
            and all(type(n) is int and n >= 0 for n in shape)
        ):
            del out["shape"]
    return out


def describe_object(name: str, value: object, *, rows: int = 0) -> dict[str, object]:
    """A precise, bounded, side-effect-free description of one kernel variable, shaped as the
    server's `variable` mention (rubberduck_jupyter/protocol.py `Mention`, kind "variable"):
    {"kind": "variable", "name", "type", "summary"?, "shape"?, "columns"?, "dtypes"?, "values"?}

    `rows` > 0 adds `values`: the first `rows` rows (at most MAX_ROWS) of a table or array,
    or a bounded repr of anything else; never for a secret-looking name. Never raises.
    """
    rows = max(0, min(_attempt(lambda: int(rows), 0), MAX_ROWS))
    name = name if isinstance(name, str) else str(name)
    secret = is_secret_name(name)
    try:
        d = _Description(name, value, rows, secret)
    except Exception:
        return _bounded({"kind": "variable", "name": name, "type": "unknown"})
    # A describer's own guard missed something: keep what was collected so far.
    with contextlib.suppress(Exception):
        _describe(d)
    return _bounded(d.to_json())


def describe_cells(sources: list[tuple[int, str]]) -> list[dict[str, object]]:
    """Code cells as `cell` mentions: (number counted from 1 as the sidebar shows it, source).

    A source over the protocol's MAX_MENTION_SOURCE is cut, with a line saying so; a number
    outside 1..MAX_CELL raises ValueError (the caller numbered the cells wrong).
    """
    out: list[dict[str, object]] = []
    for number, source in sources:
        if type(number) is not int or not 1 <= number <= MAX_CELL:
            raise ValueError(f"cell numbers count from 1 to {MAX_CELL:,}; got {number!r}")
        if len(source) > MAX_SOURCE:
            note = f"\n# … {len(source) - MAX_SOURCE + 80:,} more characters not attached"
            source = source[: MAX_SOURCE - 80] + note
        out.append({"kind": "cell", "cell": number, "cell_type": "code", "source": source})
    return out
