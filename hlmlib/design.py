"""From a formula on a DataFrame, or from arrays, to a checked response and design matrix.

Every estimator in hlmlib goes through this module, so bad input is caught in one place and
reported by column, row or cluster, never as a NumPy traceback or a silent NaN.

Formula fits drop incomplete rows listwise over *every* variable the fit uses (the formula's,
the grouping column, a random-effects formula), report how many, and remember which rows of the
data were kept, so that cluster labels fetched later stay aligned with the rows of X.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = ["InputError", "Design", "make_design", "model_frame", "rhs_matrix", "labels_for"]


class InputError(ValueError):
    """Input that hlmlib cannot fit: the message says what is wrong and where."""


@dataclass
class Design:
    """A checked response ``y`` (n,) and design ``X`` (n, k) with their names.

    ``data`` and ``rows`` are set for formula fits: the original DataFrame and the index labels of
    the rows kept, so that a cluster column named later is read for exactly those rows.
    """

    y: np.ndarray
    X: np.ndarray
    names: list[str]
    yname: str = "y"
    formula: str | None = None
    data: pd.DataFrame | None = field(default=None, repr=False)
    rows: pd.Index | None = field(default=None, repr=False)
    n_dropped: int = 0

    @property
    def n(self) -> int:
        return self.X.shape[0]

    @property
    def k(self) -> int:
        return self.X.shape[1]


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


def _numeric_column(values, name: str, index=None) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype == bool:
        arr = arr.astype(float)
    if not np.issubdtype(arr.dtype, np.number):
        try:
            arr = arr.astype(float)
        except (TypeError, ValueError):
            raise InputError(
                f"column {name!r} is not numeric (dtype {arr.dtype}); encode it, or use a formula, "
                f"where C({name}) makes dummies"
            ) from None
    arr = arr.astype(float)
    check_finite(arr, f"column {name!r}", index)
    return arr


def _numeric_matrix(X: np.ndarray, names: list[str], index=None) -> np.ndarray:
    """X as a float matrix; one vectorised check on the common path, column by column only to say what is wrong."""
    if X.shape[1] == 0:
        return np.empty((X.shape[0], 0))
    if X.dtype.kind in "biuf":
        Xf = X.astype(float, copy=False)
        if np.isfinite(Xf).all():
            return Xf
    return np.column_stack([_numeric_column(X[:, j], names[j], index) for j in range(X.shape[1])])


def _array_design(y, X) -> Design:
    if isinstance(X, pd.Series):
        X = X.to_frame()
    if isinstance(X, pd.DataFrame):
        names = [str(c) for c in X.columns]
        numeric = all(dt.kind in "biuf" for dt in X.dtypes)
        Xa = X.to_numpy(dtype=float) if numeric else X.to_numpy(dtype=object)
    else:
        Xa = np.asarray(X)
        if Xa.ndim == 1:
            Xa = Xa[:, None]
        if Xa.ndim != 2:
            raise InputError(f"X must be 1- or 2-dimensional, got shape {Xa.shape}")
        names = [f"x{j}" for j in range(Xa.shape[1])]
    Xa = _numeric_matrix(Xa, names)
    yname = str(y.name) if isinstance(y, pd.Series) and y.name is not None else "y"
    ya = np.asarray(y)
    if ya.ndim == 2 and ya.shape[1] == 1:
        ya = ya[:, 0]
    if ya.ndim != 1:
        raise InputError(f"y must be one-dimensional, got shape {ya.shape}")
    ya = _numeric_column(ya, yname)
    if ya.shape[0] != Xa.shape[0]:
        raise InputError(f"y has {ya.shape[0]} rows but X has {Xa.shape[0]}: they must match")
    return Design(y=ya, X=Xa, names=names, yname=yname)


def model_frame(data: pd.DataFrame, formulas=(), columns=()) -> tuple[pd.DataFrame, int]:
    """The rows of ``data`` complete in every variable that ``formulas`` and ``columns`` use.

    Returns the complete rows and the number dropped; warns when rows are dropped, so the
    listwise deletion is never silent.
    """
    import formulaic

    if not isinstance(data, pd.DataFrame):
        raise InputError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    needed: list[str] = []
    for f in formulas:
        for v in sorted(formulaic.Formula(f).required_variables):
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
        warnings.warn(
            f"{n_dropped} of {len(data)} rows dropped listwise for missing values (missing per variable: {per_var})",
            stacklevel=3,
        )
    return data.loc[~incomplete], n_dropped


def rhs_matrix(formula: str, frame: pd.DataFrame) -> pd.DataFrame:
    """The model matrix of a right-hand-side formula (``"~ x"``) on complete rows, checked finite."""
    import formulaic

    mm = formulaic.model_matrix(formula, frame, na_action="ignore")
    mm = pd.DataFrame(mm)
    _numeric_matrix(mm.to_numpy(), [str(c) for c in mm.columns], mm.index)
    return mm


def _formula_design(formula: str, data: pd.DataFrame, extra_formulas=(), extra_columns=()) -> Design:
    import formulaic

    if "~" not in formula:
        raise InputError(f"formula {formula!r} has no '~': write it as 'y ~ x1 + x2'")
    frame, n_dropped = model_frame(data, [formula, *extra_formulas], extra_columns)
    if len(frame) == 0:
        raise InputError("no complete rows are left after dropping rows with missing values")
    # model_frame dropped rows with missing inputs; a NaN the formula makes (np.log of a negative) is
    # left to _numeric_matrix, which names the term and the row (formulaic's "raise" names neither)
    mm = formulaic.model_matrix(formula, frame, na_action="ignore")
    lhs, rhs = pd.DataFrame(mm.lhs), pd.DataFrame(mm.rhs)
    if lhs.shape[1] != 1:
        raise InputError(f"the formula's left-hand side must be one numeric variable, got {list(lhs.columns)}")
    yname = str(lhs.columns[0])
    y = _numeric_column(lhs.iloc[:, 0].to_numpy(), yname, lhs.index)
    names = [str(c) for c in rhs.columns]
    X = _numeric_matrix(rhs.to_numpy(), names, rhs.index)
    return Design(y=y, X=X, names=names, yname=yname, formula=formula,
                  data=data, rows=frame.index, n_dropped=n_dropped)


def make_design(y_or_formula, X=None, data=None, extra_formulas=(), extra_columns=()) -> Design:
    """``make_design(y, X)`` for arrays, or ``make_design("y ~ x", data=df)`` for a formula.

    Array input: names come from DataFrame columns, else ``x0``, ``x1``, ...; nothing is dropped,
    and a NaN or inf is an error that names the column and the row. Formula input (formulaic's
    Wilkinson syntax and term names): rows incomplete in any variable used by the formula,
    ``extra_formulas`` or ``extra_columns`` are dropped listwise with a warning. Returns a
    :class:`Design`; bad input raises :class:`InputError` naming the column and the row.
    """
    if isinstance(y_or_formula, str):
        if data is None:
            raise InputError("a formula needs data=: a pandas DataFrame holding its variables")
        if X is not None:
            raise InputError("give either a formula with data=, or arrays y and X, not both")
        return _formula_design(y_or_formula, data, extra_formulas, extra_columns)
    if X is None:
        raise InputError("give arrays y and X, or a formula string with data=")
    return _array_design(y_or_formula, X)


def labels_for(spec, design: Design, what: str = "cluster") -> np.ndarray:
    """Cluster or group labels, one per row of ``design.X``.

    ``spec`` is a column name (formula fits), or an array with one label per row used in the fit,
    or (formula fits) one per row of the original data, which is then aligned to the rows kept.
    Missing labels are an error naming the rows; labels may be of any hashable type.
    """
    if isinstance(spec, str):
        if design.data is None:
            raise InputError(f"{what}={spec!r} names a column, but this fit was made from arrays: "
                             f"pass the {what} labels as an array, one per row")
        if spec not in design.data.columns:
            raise InputError(f"{what} column {spec!r} not found among the data's columns {list(design.data.columns)}")
        values = design.data.loc[design.rows, spec]
        source, index = f"{what} column {spec!r}", design.rows
    else:
        if np.ndim(spec) != 1:
            raise InputError(f"{what} labels must be one-dimensional, got shape {np.shape(spec)}")
        values = spec if isinstance(spec, pd.Series) else pd.Series(np.asarray(spec))
        if len(values) == design.n:
            values = pd.Series(np.asarray(values))
        elif design.rows is not None and len(values) == len(design.data):
            values = pd.Series(np.asarray(values), index=design.data.index).loc[design.rows]
        else:
            expect = f"{design.n}" + (f" (or {len(design.data)}, one per row of data)" if design.rows is not None else "")
            raise InputError(f"{what} labels have length {len(values)}, expected {expect}")
        source, index = f"{what} labels", design.rows
    arr = values.to_numpy()
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


def group_codes(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes 0..G-1 and the unique labels, in sorted order of the labels (in order of first
    appearance when labels of mixed types, such as 1 and "a", have no order)."""
    try:
        codes, uniques = pd.factorize(labels, sort=True)
    except TypeError:
        codes, uniques = pd.factorize(labels, sort=False)
    return codes.astype(np.intp), np.asarray(uniques)
