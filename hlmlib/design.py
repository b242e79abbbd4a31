"""From a formula on a DataFrame, or from arrays, to a checked response and design matrix.

Every estimator in hlmlib goes through this module, so bad input is caught in one place and
reported by column, row or cluster, never as a NumPy traceback or a silent NaN.

Formula fits drop incomplete rows listwise over *every* variable the fit uses (the formula's,
the grouping column, a random-effects formula), report how many, and keep their own copy of the
rows kept, selected by *position* (so repeated index labels cannot repeat rows, and changing the
DataFrame after the fit cannot change the result). Labels named or passed later (clusters, groups)
are read from that copy, or aligned to it: by position for arrays, by index for pandas Series.

The argument checks every public function uses (``check_scalar``, ``check_bool``, ``check_alpha``,
``check_finite_array``, ``make_rng``) live here too, so that a bad value gets the same kind of
message everywhere.
"""
from __future__ import annotations

import copy
import os
import re
import sys
import warnings
from dataclasses import dataclass, field
from numbers import Integral, Real

import numpy as np
import pandas as pd

__all__ = ["InputError", "Design", "make_design", "model_frame", "rhs_matrix", "rhs_model", "new_model_matrix",
           "columns_by_name",
           "labels_for", "check_scalar", "check_bool", "check_alpha", "check_finite_array", "make_rng",
           "warn_user", "renamed_argument"]


class InputError(ValueError):
    """Input that hlmlib cannot fit: the message says what is wrong and where."""


# ----------------------------------------------------------------------------------------------
# warnings at the user's line

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def warn_user(message: str, category=UserWarning) -> None:
    """``warnings.warn`` attributed to the first caller outside hlmlib, so that the warning names the
    user's file and line however deep inside hlmlib it was raised (Python 3.12's ``skip_file_prefixes``,
    for every supported Python)."""
    frame, level = sys._getframe(1), 2
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE_DIR):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)


def renamed_argument(new_name: str, new_value, old_name: str, old_value, default=None):
    """The value of an argument renamed from ``old_name`` to ``new_name``: the old name still works for one
    release, with a ``DeprecationWarning`` at the user's line; both at once is an :class:`InputError`."""
    if old_value is None:
        return new_value
    warn_user(f"{old_name}= is deprecated and will be removed in the next release of hlmlib: use {new_name}= "
              f"(same values)", DeprecationWarning)
    if not (new_value is default or (isinstance(default, str) and new_value == default)):
        raise InputError(f"give {new_name}= only: {old_name}= is its old, deprecated name")
    return old_value


# ----------------------------------------------------------------------------------------------
# argument checks


def check_scalar(value, name: str, *, integer: bool = False, minimum=None, maximum=None,
                 exclusive_minimum: bool = False, exclusive_maximum: bool = False, allow_inf: bool = False):
    """A real number (an int if ``integer``) within the given bounds, else :class:`InputError`.

    Refused: booleans (``True`` is not a count or a level), strings, complex numbers, arrays, NaN,
    infinities (unless ``allow_inf``) and, where an integer is meant, non-integral values such as 2.5
    (an integral float such as ``1e4`` is accepted). Returns a Python ``int`` or ``float``.
    """
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, Real):
        kind = "an integer" if integer else "a real number"
        raise InputError(f"{name} must be {kind}, got {value!r} ({type(value).__name__})")
    if np.isnan(value) or (np.isinf(value) and not allow_inf):
        raise InputError(f"{name} must be a finite number, got {value!r}")
    if integer:
        if not isinstance(value, Integral):
            if not float(value).is_integer():
                raise InputError(f"{name} must be an integer (a count), got {value!r}")
        value = int(value)
    else:
        value = float(value)
    too_low = minimum is not None and (value <= minimum if exclusive_minimum else value < minimum)
    too_high = maximum is not None and (value >= maximum if exclusive_maximum else value > maximum)
    if too_low or too_high:
        if minimum is not None and maximum is not None:
            ends = {(True, True): " (exclusive)", (False, False): " (inclusive)"}.get(
                (exclusive_minimum, exclusive_maximum), f" ({'excluding' if exclusive_minimum else 'including'} "
                f"{minimum}, {'excluding' if exclusive_maximum else 'including'} {maximum})")
            bound = f"between {minimum} and {maximum}{ends}"
        elif too_low:
            bound = f"greater than {minimum}" if exclusive_minimum else f"at least {minimum}"
        else:
            bound = f"less than {maximum}" if exclusive_maximum else f"at most {maximum}"
        raise InputError(f"{name} must be {bound}, got {value!r}")
    return value


def check_bool(value, name: str) -> bool:
    """``True`` or ``False`` (NumPy booleans too); anything else, such as ``"no"`` or ``0``, is refused:
    a truthy string would silently mean True."""
    if not isinstance(value, (bool, np.bool_)):
        raise InputError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_alpha(alpha, name: str = "alpha") -> float:
    """A level in (0, 1), such as the 0.05 of 95% intervals."""
    return check_scalar(alpha, name, minimum=0, maximum=1, exclusive_minimum=True, exclusive_maximum=True)


def make_rng(seed) -> np.random.Generator:
    """``np.random.default_rng(seed)`` for what it accepts: ``None``, a non-negative integer, a sequence of
    them (``[base, replication]``, the usual way to seed independent replications), a ``SeedSequence`` or a
    bit generator; a ``Generator`` is used as it is (its stream continues). Anything else is refused."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or isinstance(seed, (np.random.SeedSequence, np.random.BitGenerator)):
        return np.random.default_rng(seed)
    if isinstance(seed, (list, tuple, np.ndarray)):
        entries = np.asarray(seed, dtype=object).ravel()
        if entries.size == 0 or np.ndim(seed) != 1:
            raise InputError(f"seed as a sequence must be a non-empty flat list of integers, got {seed!r}")
        return np.random.default_rng([check_scalar(v, "seed entry", integer=True, minimum=0) for v in entries])
    return np.random.default_rng(check_scalar(seed, "seed", integer=True, minimum=0))


def _holds_a_boolean(values) -> bool:
    """Whether a (nested) list or tuple holds a Python or NumPy boolean."""
    if isinstance(values, (bool, np.bool_)):
        return True
    return isinstance(values, (list, tuple)) and any(_holds_a_boolean(v) for v in values)


def check_finite_array(values, name: str, *, ndim=None, allow_empty: bool = False,
                       numbers_only: bool = False) -> np.ndarray:
    """``values`` as a float array, refusing non-numeric or complex entries, NaN and inf, a wrong
    number of dimensions (``ndim``: an int or a tuple of allowed ones) and (unless ``allow_empty``)
    an empty array. ``numbers_only`` (for arguments, not data) also refuses booleans and strings that
    would convert to numbers ("0.5", True), which for a weight or a parameter are a mistake, not a value."""
    arr = np.asarray(values)
    if arr.dtype.kind == "c":
        raise InputError(f"{name} must be real numbers, got complex values")
    if numbers_only and arr.dtype.kind not in "iuf" and not (arr.dtype.kind == "O" and all(
            isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))
            for v in arr.ravel())):
        raise InputError(f"{name} must be numbers, got {values!r}")
    if numbers_only and _holds_a_boolean(values):       # [0, True] becomes an integer array: look inside
        raise InputError(f"{name} must be numbers, got a boolean among them: {values!r}")
    if arr.dtype.kind not in "biuf":
        try:
            arr = arr.astype(float)
        except (TypeError, ValueError):
            raise InputError(f"{name} must be numbers, got {arr.dtype} values") from None
    arr = arr.astype(float, copy=False)
    if ndim is not None and arr.ndim not in np.atleast_1d(ndim):
        raise InputError(f"{name} must have {' or '.join(map(str, np.atleast_1d(ndim)))} dimension(s), "
                         f"got shape {arr.shape}")
    if arr.size == 0 and not allow_empty:
        raise InputError(f"{name} is empty")
    if not np.isfinite(arr).all():
        raise InputError(f"{name} must be finite: it has {int((~np.isfinite(arr)).sum())} NaN or inf value(s)")
    return arr


# ----------------------------------------------------------------------------------------------
# the design


@dataclass
class Design:
    """A checked response ``y`` (n,) and design ``X`` (n, k) with their names. The design owns its
    arrays (copies, never views of the caller's).

    Formula fits also set ``data``: the fit's own copy of the rows it uses (complete in every variable
    it needs), in the order of ``y`` and ``X``, from which a cluster column named later is read; it is
    indexed by the caller's labels when these are unique, else by 0..n-1, and ``rows`` is its index (so
    ``data.loc[rows]`` is ``data``, never a repetition of rows). ``index`` holds the labels of
    the fit's rows in the caller's data (or in a pandas ``X``/``y``; they may repeat) for messages and
    for aligning pandas Series; ``source_index`` and ``source_positions`` are the caller's whole index
    and the positions of the fit's rows in it, to align labels given one per row of the caller's data.
    ``spec`` is formulaic's model spec of the right-hand side (formula fits), which rebuilds ``X`` on new
    data with the fit's encoding of categorical variables and the state of stateful transforms
    (``center(x)``, ``scale(x)``, ``poly(x, 2)``): :func:`new_model_matrix`.
    """

    y: np.ndarray
    X: np.ndarray
    names: list[str]
    yname: str = "y"
    formula: str | None = None
    data: pd.DataFrame | None = field(default=None, repr=False)
    rows: pd.Index | None = field(default=None, repr=False)
    n_dropped: int = 0
    index: pd.Index | None = field(default=None, repr=False)
    source_index: pd.Index | None = field(default=None, repr=False)
    source_positions: np.ndarray | None = field(default=None, repr=False)
    spec: object = field(default=None, repr=False)

    @property
    def n(self) -> int:
        return self.X.shape[0]

    @property
    def k(self) -> int:
        return self.X.shape[1]

    @property
    def row_labels(self) -> pd.Index:
        """The labels of the fit's rows (0..n-1 for plain arrays)."""
        return self.index if self.index is not None else pd.RangeIndex(self.n)


def _first_rows(mask: np.ndarray, index=None, limit: int = 5) -> str:
    where = np.flatnonzero(mask)
    shown = [str(index[i]) if index is not None else str(i) for i in where[:limit]]
    more = f" and {where.size - limit} more" if where.size > limit else ""
    return ", ".join(shown) + more


def check_finite(values: np.ndarray, name: str, index=None) -> None:
    """Raise naming ``name`` and the first offending rows if ``values`` has NaN or inf."""
    bad = ~np.isfinite(values)
    if bad.any():
        kind = "NaN" if np.isnan(values[bad]).all() else "NaN or inf"
        raise InputError(f"{name} has {bad.sum()} {kind} value(s), at row(s) {_first_rows(bad, index)}")


# what pandas infers for an object column holding only numbers (Python floats, ints, Decimals, bools)
_NUMBERS = ("floating", "integer", "mixed-integer-float", "boolean", "decimal", "empty")


def _not_numeric(name: str, dtype) -> InputError:
    return InputError(f"column {name!r} is not numeric (dtype {dtype}); encode it, or use a formula, "
                      f"where C({name}) makes dummies")


def _numeric_column(values, name: str, index=None) -> np.ndarray:
    """A float copy of one column, refusing what would be a silent coercion: complex values (the
    imaginary part dropped), strings (even numeric-looking ones) and pandas Categoricals (regressed on
    their codes or category values)."""
    if isinstance(getattr(values, "dtype", None), pd.CategoricalDtype):
        raise InputError(f"column {name!r} is a pandas Categorical: its categories would be used as numbers; "
                         f"make dummies (a formula with C({name})), or convert it with .astype(float) if the "
                         "values are meant as numbers")
    arr = np.asarray(values)
    if arr.dtype.kind == "c":
        raise InputError(f"column {name!r} is complex; least squares here is for real numbers "
                         "(take .real or .imag explicitly)")
    strings_or_dates = arr.dtype.kind in "USmM"
    if strings_or_dates or (arr.dtype.kind == "O" and pd.api.types.infer_dtype(arr, skipna=True) not in _NUMBERS):
        raise _not_numeric(name, arr.dtype)
    try:
        arr = arr.astype(float)          # a copy: the design owns its arrays
    except (TypeError, ValueError):
        raise _not_numeric(name, arr.dtype) from None
    check_finite(arr, f"column {name!r}", index)
    return arr


def _numeric_matrix(X: np.ndarray, names: list[str], index=None, copy: bool = True) -> np.ndarray:
    """X as a float matrix (a copy unless ``copy=False``); one vectorised check on the common path,
    column by column only to say what is wrong."""
    if X.shape[1] == 0:
        return np.empty((X.shape[0], 0))
    if X.dtype.kind in "biuf":
        Xf = np.array(X, dtype=float) if copy else np.asarray(X, dtype=float)
        if np.isfinite(Xf).all():
            return Xf
    return np.column_stack([_numeric_column(X[:, j], names[j], index) for j in range(X.shape[1])])


def _check_columns(X: np.ndarray, what: str = "X") -> None:
    if X.shape[1] == 0:
        raise InputError(f"{what} has no columns: a regression needs at least one regressor "
                         "(add an intercept, a column of ones, or '1 +' in the formula)")


def _pandas_index(*objects):
    """The common index of the pandas objects among ``objects`` (None if none); refuses indices that
    differ, as statsmodels does: positions would silently pair rows that the labels say differ."""
    indices = [o.index for o in objects if isinstance(o, (pd.Series, pd.DataFrame))]
    for other in indices[1:]:
        if not other.equals(indices[0]):
            raise InputError("y and X are pandas objects with different indices: their rows would be paired by "
                             "position although the labels differ; align them first (e.g. X.loc[y.index]) or "
                             "pass arrays")
    return indices[0] if indices else None


def _array_design(y, X) -> Design:
    index = _pandas_index(y, X)
    if isinstance(X, pd.Series):
        X = X.to_frame()
    if isinstance(X, pd.DataFrame):
        names = [str(c) for c in X.columns]
        numeric = all(dt.kind in "biuf" and not isinstance(dt, pd.CategoricalDtype) for dt in X.dtypes)
        if numeric:
            Xa = _numeric_matrix(X.to_numpy(dtype=float, copy=True), names, index, copy=False)
        else:
            Xa = np.column_stack([_numeric_column(X.iloc[:, j], names[j], index) for j in range(X.shape[1])]) \
                if X.shape[1] else np.empty((len(X), 0))
    else:
        Xa = np.asarray(X)
        if Xa.ndim == 1:
            Xa = Xa[:, None]
        if Xa.ndim != 2:
            raise InputError(f"X must be 1- or 2-dimensional, got shape {Xa.shape}")
        names = [f"x{j}" for j in range(Xa.shape[1])]
        Xa = _numeric_matrix(Xa, names, index)
    _check_columns(Xa)
    yname = str(y.name) if isinstance(y, pd.Series) and y.name is not None else "y"
    if isinstance(y, pd.DataFrame):
        if y.shape[1] != 1:
            raise InputError(f"y must be one column, got a DataFrame with {y.shape[1]}")
        yname, y = str(y.columns[0]), y.iloc[:, 0]
    ya = y if isinstance(y, pd.Series) else np.asarray(y)
    if not isinstance(ya, pd.Series):
        if ya.ndim == 2 and ya.shape[1] == 1:
            ya = ya[:, 0]
        if ya.ndim != 1:
            raise InputError(f"y must be one-dimensional, got shape {ya.shape}")
    ya = _numeric_column(ya, yname, index)
    if ya.shape[0] != Xa.shape[0]:
        raise InputError(f"y has {ya.shape[0]} rows but X has {Xa.shape[0]}: they must match")
    return Design(y=ya, X=Xa, names=names, yname=yname, index=index)


def _formulaic_message(error: Exception) -> str:
    """formulaic's message without its terminal colour codes and markers."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(error))
    return re.sub(r"[⧛⧚]", "", text).strip()


def _parse(formula: str):
    import formulaic

    if not isinstance(formula, str):
        raise InputError(f"a formula must be a string such as 'y ~ x1 + x2', got {type(formula).__name__}")
    try:
        return formulaic.Formula(formula)
    except formulaic.errors.FormulaicError as error:
        raise InputError(f"formula {formula!r} could not be parsed: {_formulaic_message(error)}") from None


def _factor_variables(factor, columns) -> set[str]:
    """The data columns one formulaic factor reads: a looked-up name as it stands (```x.1```), and in a Python
    expression each name, or its longest dotted prefix that is a column (``Q('p.q')``, ``np.log(a.b)``), else the
    part before its first dot (``a.fillna(0)`` reads ``a``). formulaic's own ``required_variables`` keeps only the
    part before the first dot, and so reads ```x.1``` as ``x``."""
    from formulaic.parser.types import Factor
    from formulaic.transforms import TRANSFORMS
    from formulaic.utils.variables import get_required_variables

    if factor.eval_method == Factor.EvalMethod.LOOKUP:
        return {factor.expr}
    if factor.eval_method != Factor.EvalMethod.PYTHON:
        return set()
    try:
        variables = get_required_variables(factor.expr, TRANSFORMS)
    except Exception:                   # malformed code: formulaic reports it when evaluating the factor
        return {str(v) for v in factor.required_variables}
    found = set()
    for variable in variables:
        if variable.root in TRANSFORMS:
            continue
        parts = str(variable).split(".")
        prefixes = (".".join(parts[:i]) for i in range(len(parts), 0, -1))
        found.add(next((p for p in prefixes if p in columns), str(variable.root)))
    return found


def _formula_variables(formula, columns, side: str | None = None) -> list[str]:
    """The data columns a formula (a string, or formulaic's parsed formula) reads, in sorted order
    (:func:`_factor_variables`); ``side="lhs"`` or ``"rhs"`` for one side of ``y ~ x``. ``columns``: the data's,
    to tell a dotted column name from an attribute."""
    parsed = _parse(formula) if isinstance(formula, str) else formula
    if side is not None:
        parsed = getattr(parsed, side, None)
    parts = [parsed] if parsed is None or parsed.__class__.__name__ == "SimpleFormula" else [parsed.lhs, parsed.rhs]
    columns = set(map(str, columns))
    return sorted({v for part in parts if part is not None for term in part for factor in term.factors
                   for v in _factor_variables(factor, columns)})


def _model_matrix(formula: str, frame: pd.DataFrame):
    """formulaic's model matrix, its errors (an unknown function, a bad term) as InputError."""
    import formulaic

    try:
        with np.errstate(all="ignore"):        # a NaN or inf a term makes is reported by the finite check
            return formulaic.model_matrix(formula, frame, na_action="ignore")
    except formulaic.errors.FormulaicError as error:
        raise InputError(f"formula {formula!r} could not be evaluated on the data: {_formulaic_message(error)}") \
            from None
    except ValueError as error:     # formulaic raises a bare ValueError for a reference that is not a level
        reference = re.match(r"Value `(.*)` for `\w+Contrasts\.base` is not among the provided levels", str(error))
        if reference is None:
            raise
        raise InputError(_reference_message(formula, frame, reference.group(1))) from None


def _reference_message(formula: str, frame: pd.DataFrame, value: str) -> str:
    """Which factor of ``formula`` has a treatment reference (``Treatment('zz')``, ``contr.treatment(base=2)``)
    that is not one of its levels, and those levels."""
    coded = [factor for term in _parse(formula).rhs for factor in term.factors
             if re.search(r"treatment|base\s*=|reference\s*=", factor.expr, re.IGNORECASE)]
    where = []
    for factor in dict.fromkeys(coded):
        for variable in sorted(_factor_variables(factor, frame.columns) & set(map(str, frame.columns))):
            column = frame[variable]
            levels = list(column.cat.categories) if isinstance(column.dtype, pd.CategoricalDtype) \
                else sorted(column.dropna().unique().tolist())
            where.append(f"{factor.expr!r} (the levels of {variable!r}: {levels})")
    return (f"formula {formula!r}: the reference level {value} of a treatment coding is not a level of "
            f"{' or '.join(where) or 'its factor'}; the reference (Treatment(...), contr.treatment(base=...)) is a "
            f"level's value, not its position as R's contr.treatment(base=2) reads it")


def _complete_rows(data: pd.DataFrame, formulas=(), columns=()) -> tuple[np.ndarray, int]:
    """A mask of the rows of ``data`` complete in every variable ``formulas`` and ``columns`` use, and
    the number of incomplete rows (warned about, so the listwise deletion is never silent)."""
    if not isinstance(data, pd.DataFrame):
        raise InputError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    if not data.columns.is_unique:
        repeated = sorted({str(c) for c in data.columns[data.columns.duplicated()]})
        raise InputError(f"data has repeated column name(s) {repeated}: a formula could not tell them apart")
    needed: list = []
    for f in formulas:
        for v in _formula_variables(f, data.columns):
            if v not in needed:
                needed.append(v)
    for c in columns:
        if c not in needed:
            needed.append(c)
    missing = [v for v in needed if v not in data.columns]
    if missing:
        raise InputError(f"variable(s) {missing} not found among the data's columns {list(data.columns)}")
    incomplete = data[needed].isna().any(axis=1).to_numpy()
    n_dropped = int(incomplete.sum())
    if n_dropped:
        per_var = {v: int(data[v].isna().sum()) for v in needed if data[v].isna().any()}
        warn_user(f"{n_dropped} of {len(data)} rows dropped listwise for missing values (missing per variable: "
                  f"{per_var})")
    return ~incomplete, n_dropped


def model_frame(data: pd.DataFrame, formulas=(), columns=()) -> tuple[pd.DataFrame, int]:
    """The rows of ``data`` complete in every variable that ``formulas`` and ``columns`` use (a copy,
    selected by position, with the caller's index labels) and the number dropped.

    Warns when rows are dropped, so the listwise deletion is never silent; unused levels of pandas
    categoricals are dropped, as R's ``model.frame`` does (``drop.unused.levels``), so that a level
    with no row left makes no all-zero dummy.
    """
    complete, n_dropped = _complete_rows(data, formulas, columns)
    return _drop_unused_levels(data.take(np.flatnonzero(complete))), n_dropped


def _drop_unused_levels(frame: pd.DataFrame) -> pd.DataFrame:
    for column in frame.columns[[isinstance(dt, pd.CategoricalDtype) for dt in frame.dtypes]]:
        frame[column] = frame[column].cat.remove_unused_categories()
    return frame


def rhs_matrix(formula: str, frame: pd.DataFrame, index=None) -> pd.DataFrame:
    """The model matrix of a right-hand-side formula (``"~ x"``) on complete rows, checked finite
    (messages name the rows by ``index``, default the frame's)."""
    return rhs_model(formula, frame, index)[0]


def rhs_model(formula: str, frame: pd.DataFrame, index=None):
    """:func:`rhs_matrix` and formulaic's model spec, which rebuilds the matrix on new data
    (:func:`new_model_matrix`)."""
    _parse(formula)
    matrix = _model_matrix(formula, frame)
    mm = pd.DataFrame(matrix)
    _numeric_matrix(mm.to_numpy(), [str(c) for c in mm.columns], mm.index if index is None else index, copy=False)
    return mm, matrix.model_spec


def _level_text(values) -> str:
    shown = [repr(v.item() if isinstance(v, np.generic) else v) for v in list(values)[:5]]
    return ", ".join(shown) + (f" and {len(values) - 5} more" if len(values) > 5 else "")


def _check_levels(spec, frame: pd.DataFrame) -> None:
    """Refuse a level of a categorical variable the fit did not see: formulaic would encode it as the
    reference level (all dummies 0), with only a warning, and so predict for another category. The
    variables are those of each categorical factor (``g``, ``C(g)``, ``C(g, contr.sum)``); a factor made
    by an expression of several variables is checked by formulaic's own warning, made an error here."""
    for factor, (kind, state) in spec.encoder_state.items():
        if getattr(kind, "value", kind) != "categorical" or "categories" not in state:
            continue
        variables = sorted(set(_formula_variables(f"~ {factor}", frame.columns)) & set(frame.columns))
        if len(variables) != 1:
            continue
        values = frame[variables[0]]
        unseen = pd.unique(values[~values.isin(list(state["categories"]))].to_numpy())
        if len(unseen):
            raise InputError(f"newdata column {variables[0]!r} has level(s) {_level_text(unseen)} that the fit did not "
                             f"see (its levels: {_level_text(state['categories'])}): their effect was not "
                             "estimated; drop those rows or map them to a level of the fit")


def _numeric_as_in_fit(frame: pd.DataFrame, needed, fit_data: pd.DataFrame) -> None:
    """Make the columns of ``frame`` (a copy of newdata's rows) that were numeric in the fit's data numbers
    again, in place: an object column holding only numbers (a row taken as ``df.iloc[[i]].T.T`` or
    ``df.iloc[i].to_frame().T``) is converted; text, categorical or date values are refused, naming the
    column (formulaic would encode them as categories, not as the fit's numbers)."""
    for v in needed:
        if v not in fit_data.columns or v not in frame.columns:
            continue
        fit_dtype, dtype = fit_data[v].dtype, frame[v].dtype
        if isinstance(fit_dtype, pd.CategoricalDtype) or fit_dtype.kind not in "iuf":
            continue
        if isinstance(dtype, pd.CategoricalDtype) or dtype.kind not in "iuf":
            if dtype.kind == "O" and pd.api.types.infer_dtype(frame[v], skipna=True) in ("floating", "integer",
                                                                                        "mixed-integer-float",
                                                                                        "decimal"):
                frame[v] = frame[v].astype(float)
                continue
            raise InputError(f"newdata column {v!r} is not numeric (dtype {dtype}), but it was numbers in the fit's "
                             f"data (dtype {fit_dtype}): convert it, e.g. newdata[{v!r}].astype(float)")


def new_model_matrix(spec, newdata: pd.DataFrame, names: list[str], what: str = "the model",
                     fit_data: pd.DataFrame | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The design matrix of ``newdata`` by a fit's formulaic model spec (the encoding of categorical
    variables and the state of stateful transforms kept from the fit), with the fit's column ``names``.

    Returns the matrix, one row per row of ``newdata``, and a mask of the rows complete in every variable
    the spec needs; incomplete rows are rows of NaN (formulaic would encode a missing category as the
    reference level). Refused with :class:`InputError`: ``newdata`` that is not a DataFrame or lacks a
    variable, a level of a categorical variable the fit did not see (naming the column and the level),
    a value that makes a term NaN or infinite (naming the term and the row), and (given ``fit_data``, the
    fit's own rows) a column that was numeric in the fit but is not in newdata (``_numeric_as_in_fit``).
    The spec is not changed: it is evaluated on a copy."""
    import formulaic

    if not isinstance(newdata, pd.DataFrame):
        raise InputError(f"newdata must be a pandas DataFrame with the variables of {what}, got "
                         f"{type(newdata).__name__}")
    columns = set(map(str, newdata.columns)) | (set() if fit_data is None else set(map(str, fit_data.columns)))
    # the columns the fit read (a dotted name such as `x.1` kept whole: formulaic's required_variables keeps x)
    needed = sorted({str(v) if str(v) in columns else str(v.root) for v in spec.variables_by_source.get("data", ())})
    missing = [v for v in needed if v not in newdata.columns]
    if missing:
        raise InputError(f"newdata lacks the variable(s) {missing} of {what} (its columns: {list(newdata.columns)})")
    complete = ~newdata[needed].isna().any(axis=1).to_numpy() if needed else np.ones(len(newdata), bool)
    frame = newdata.take(np.flatnonzero(complete))
    frame.index = pd.RangeIndex(len(frame))
    if fit_data is not None:
        _numeric_as_in_fit(frame, needed, fit_data)
    _check_levels(spec, frame)
    spec = copy.deepcopy(spec)      # formulaic updates a spec's encoder state in place on data of another kind
    out = np.full((len(newdata), len(names)), np.nan)
    if len(frame):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", formulaic.errors.DataMismatchWarning)
                with np.errstate(all="ignore"):
                    mm = pd.DataFrame(spec.get_model_matrix(frame, na_action="ignore"))
        except formulaic.errors.DataMismatchWarning as warning:
            raise InputError(f"newdata has a level of a categorical term that the fit did not see: "
                             f"{_formulaic_message(warning)}") from None
        except formulaic.errors.FormulaicError as error:
            raise InputError(f"{what} could not be evaluated on newdata: {_formulaic_message(error)}") from None
        if [str(c) for c in mm.columns] != list(names):
            raise InputError(f"newdata gives the columns {list(map(str, mm.columns))}, not the fit's {list(names)}")
        out[complete] = _numeric_matrix(mm.to_numpy(), list(names), newdata.index[complete], copy=False)
    return out, complete


def columns_by_name(newdata, names: list[str], what: str, default_prefix: str):
    """New rows for an array fit, with the fit's columns ``names`` in the fit's order: a DataFrame is matched by
    column name (extra columns ignored), as it would silently pair columns by position otherwise; a matrix,
    or a DataFrame for a fit whose columns had no names (``x0``, ``x1``, ...), is taken by position. A
    DataFrame lacking a named column of the fit is refused."""
    if not isinstance(newdata, pd.DataFrame):
        return newdata
    columns = [str(c) for c in newdata.columns]
    if set(names) <= set(columns):
        return newdata.set_axis(columns, axis=1)[names]
    if names == [f"{default_prefix}{j}" for j in range(len(names))]:
        warn_user(f"{what}'s columns {columns} are taken by position as the fit's unnamed columns {names}: "
                  "make sure they are in the fit's order (fit with a DataFrame to have them matched by name)")
        return newdata
    missing = [v for v in names if v not in columns]
    raise InputError(f"{what} is a DataFrame without the fit's column(s) {missing} (its columns: {columns}): "
                     f"a DataFrame is matched by the fit's column names {names}; rename its columns, or pass an "
                     "array to match by position")


def _check_response(formula, frame: pd.DataFrame) -> None:
    """The left-hand side's variables must be numeric (or boolean): formulaic would dummy-code a string
    or categorical response, and a single level would be 'fitted' as a column of ones."""
    for v in _formula_variables(formula, frame.columns, side="lhs"):
        if v in frame.columns:
            dtype = frame[v].dtype
            if isinstance(dtype, pd.CategoricalDtype) or dtype.kind not in "biuf":
                raise InputError(f"the response {v!r} is not numeric (dtype {dtype}): a regression's response "
                                 "must be numbers (code a binary outcome as 0/1)")


_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"|`[^`]*`")


def protect_quoted(formula: str) -> tuple[str, list[str]]:
    """The formula with its quoted names (``Q('a|b')``, ```a+b```) replaced by placeholders, so that a '|', '+'
    or '~' inside them is not read as syntax, and the quoted texts, for :func:`restore_quoted`."""
    quoted = _QUOTED.findall(formula)
    return _QUOTED.sub(lambda m: f"\x00{quoted.index(m.group())}\x00", formula), quoted


def restore_quoted(text: str, quoted: list[str]) -> str:
    return re.sub("\x00([0-9]+)\x00", lambda m: quoted[int(m.group(1))], text)


def check_formula_syntax(formula: str) -> str:
    """Refuse what formulaic would misread or report unclearly: no '~', no response left of it, an
    ``offset()`` term. Returns the formula with quoted names protected (:func:`protect_quoted`)."""
    if not isinstance(formula, str):
        raise InputError(f"a formula must be a string such as 'y ~ x1 + x2', got {type(formula).__name__}")
    bare = protect_quoted(formula)[0]
    if "~" not in bare:
        raise InputError(f"formula {formula!r} has no '~': write it as 'y ~ x1 + x2'")
    if not bare.partition("~")[0].strip():
        raise InputError(f"formula {formula!r} has no response: write it as 'y ~ x1 + x2', the response left of '~'")
    if re.search(r"(?<![\w.])offset\s*\(", bare):
        raise InputError(f"formula {formula!r} has an offset() term, which hlmlib does not fit: for a linear model "
                         "subtract it from the response instead, 'I(y - w) ~ x' (the same fit)")
    return bare


def _formula_design(formula: str, data: pd.DataFrame, extra_formulas=(), extra_columns=()) -> Design:
    if "|" in check_formula_syntax(formula):
        raise InputError(f"formula {formula!r} has a '|': this estimator takes no grouping in its formula. For "
                         "fixed effects of a group (one-way, absorbed) use hlmlib.within('y ~ x', data, groups='g'); "
                         "for random effects hlmlib.mixed('y ~ x + (1 | g)', data), lme4's syntax")
    complete, n_dropped = _complete_rows(data, [formula, *extra_formulas], extra_columns)
    positions = np.flatnonzero(complete)
    if positions.size == 0:
        raise InputError("no complete rows are left after dropping rows with missing values")
    # the fit's own copy of its rows, by position (repeated labels cannot repeat rows); indexed by the
    # caller's labels when they are unique, else 0..n-1, so that frame.loc[frame.index] is frame
    frame = data.take(positions)
    if not data.index.is_unique:
        frame.index = pd.RangeIndex(positions.size)
    frame = _drop_unused_levels(frame)
    index = data.index[positions]
    _check_response(formula, frame)
    # a NaN the formula makes (np.log of a negative) is left to _numeric_matrix, which names the term
    # and the row (formulaic's "raise" names neither)
    mm = _model_matrix(formula, frame)
    lhs, rhs = pd.DataFrame(mm.lhs), pd.DataFrame(mm.rhs)
    if lhs.shape[1] != 1:
        raise InputError(f"the formula's left-hand side must be one numeric variable, got {list(lhs.columns)}")
    yname = str(lhs.columns[0])
    y = _numeric_column(lhs.iloc[:, 0].to_numpy(), yname, index)
    names = [str(c) for c in rhs.columns]
    X = _numeric_matrix(rhs.to_numpy(), names, index, copy=False)   # formulaic's own array, not the caller's
    _check_columns(X, f"the formula {formula!r}")
    return Design(y=y, X=X, names=names, yname=yname, formula=formula, data=frame, rows=frame.index,
                  n_dropped=n_dropped, index=index, source_index=data.index, source_positions=positions,
                  spec=mm.rhs.model_spec)


def make_design(y_or_formula, X=None, data=None, extra_formulas=(), extra_columns=()) -> Design:
    """``make_design(y, X)`` for arrays, or ``make_design("y ~ x", data=df)`` for a formula.

    Array input: names come from DataFrame columns, else ``x0``, ``x1``, ...; nothing is dropped,
    and a NaN or inf is an error that names the column and the row. Refused with a message rather than
    coerced: complex, string and pandas Categorical columns, X without columns, and a pandas ``y`` and
    ``X`` whose indices differ. Formula input (formulaic's Wilkinson syntax and term names): rows
    incomplete in any variable used by the formula, ``extra_formulas`` or ``extra_columns`` are dropped
    listwise with a warning, by position; unused categorical levels are dropped (as R does); a syntax
    error or a non-numeric response is an :class:`InputError`. The data may come second, positionally, as
    in statsmodels and pyfixest: ``make_design("y ~ x", df)`` (:func:`formula_data`). Returns a
    :class:`Design` that owns its arrays.
    """
    X, data = formula_data(y_or_formula, X, data)
    if isinstance(y_or_formula, str):
        if data is None:
            raise InputError("a formula needs data: a pandas DataFrame holding its variables (second argument, or data=)")
        return _formula_design(y_or_formula, data, extra_formulas, extra_columns)
    if X is None:
        raise InputError("give arrays y and X, or a formula string with data=")
    if data is not None:
        raise InputError("data= goes with a formula; with arrays y and X leave it out")
    return _array_design(y_or_formula, X)


def formula_data(y_or_formula, X, data):
    """``(X, data)`` with a DataFrame given second after a formula moved to ``data``: ``ols("y ~ x", df)``
    is ``ols("y ~ x", data=df)``, as statsmodels' and pyfixest's formula functions take it. Arrays
    (``ols(y, X)``) are told apart by the type of the first argument."""
    if not isinstance(y_or_formula, str) or X is None:
        return X, data
    if data is not None:
        raise InputError("give the data once: a formula takes its DataFrame as the second argument or as data=, "
                         "not both (arrays y and X take no data=)")
    if not isinstance(X, pd.DataFrame):
        raise InputError(f"with a formula, the second argument is the data, a pandas DataFrame; got "
                         f"{type(X).__name__} (arrays go with arrays: ols(y, X))")
    return None, X


def _align_series(values: pd.Series, design: Design, what: str) -> np.ndarray:
    """A Series's values for the fit's rows, matched by index: an index equal to the fit's rows' (or to
    the whole data's, for formula fits) is used as it stands; otherwise, with unique labels, by label."""
    fit_index = design.row_labels
    if values.index.equals(fit_index):
        return values.to_numpy()
    if design.source_index is not None and values.index.equals(design.source_index):
        return values.to_numpy()[design.source_positions]
    if fit_index.is_unique and values.index.is_unique:
        found = fit_index.isin(values.index)
        if found.all():
            return values.reindex(fit_index).to_numpy()
        raise InputError(f"{what} Series has no label for {int((~found).sum())} of the fit's rows (e.g. "
                         f"{_first_rows(~found, fit_index, 3)}): its index must cover the rows of the fit; "
                         "pass .to_numpy() to match by position")
    raise InputError(f"{what} Series's index differs from the fit's rows and has repeated labels, so it cannot be "
                     "aligned by label: pass a Series indexed like the data, or .to_numpy() to match by position")


def labels_for(spec, design: Design, what: str = "cluster") -> np.ndarray:
    """Cluster or group labels, one per row of ``design.X``.

    ``spec`` is a column name (formula fits: read from the fit's own copy of its rows), a pandas
    Series (aligned by its index to the fit's rows; see :class:`Design`), or an array with one label
    per row used in the fit, or (formula fits) one per row of the original data, which is then
    aligned to the rows kept by position. Missing labels are an error naming the rows; labels may be
    of any hashable type.
    """
    index = design.row_labels
    if isinstance(spec, str):
        if design.data is None:
            raise InputError(f"{what}={spec!r} names a column, but this fit was made from arrays: "
                             f"pass the {what} labels as an array, one per row")
        if spec not in design.data.columns:
            raise InputError(f"{what} column {spec!r} not found among the data's columns {list(design.data.columns)}")
        arr, source = design.data[spec].to_numpy(), f"{what} column {spec!r}"
    else:
        if isinstance(spec, pd.DataFrame) or np.ndim(spec) != 1:
            raise InputError(f"{what} labels must be one-dimensional, got shape {np.shape(spec)}")
        source = f"{what} labels"
        if isinstance(spec, pd.Series):
            arr = _align_series(spec, design, what)
        else:
            arr = np.asarray(spec)
            if len(arr) != design.n and design.source_positions is not None and len(arr) == len(design.source_index):
                arr = arr[design.source_positions]          # one label per row of the caller's data
            elif len(arr) != design.n:
                expect = f"{design.n}" + (f" (or {len(design.source_index)}, one per row of data)"
                                          if design.source_positions is not None else "")
                raise InputError(f"{what} labels have length {len(arr)}, expected {expect}")
    check_labels(arr, source, index)
    return arr


def check_labels(labels: np.ndarray, source: str, index=None) -> None:
    """Raise naming ``source`` and the first offending rows if a label is missing (None, NaN, NaT) or
    infinite."""
    missing = np.asarray(pd.isna(labels))
    if missing.any():
        raise InputError(f"{source} has {missing.sum()} missing value(s), at row(s) {_first_rows(missing, index)}")
    if labels.dtype.kind == "f":
        check_finite(labels, source, index)
    elif labels.dtype.kind == "c":
        raise InputError(f"{source} are complex numbers; use integers or strings as labels")


def group_codes(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes 0..G-1 and the unique labels, in sorted order of the labels (in order of first
    appearance when labels of mixed types, such as 1 and "a", have no order)."""
    try:
        codes, uniques = pd.factorize(labels, sort=True)
    except TypeError:
        codes, uniques = pd.factorize(labels, sort=False)
    return codes.astype(np.intp), np.asarray(uniques)
