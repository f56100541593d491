"""Work done once per distinct value, then spread back to every row. Pure: no Airflow.

A million events repeat a few thousand leads' facts and a site's few hundred pages: validation checks
each distinct (email, segment) pair once and the transforms build each distinct subject, note and
name once (``per_distinct``). Columns that repeat values are categorical (``spread``): each distinct
value is stored once and every row holds a small code.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
from pandas.api.extensions import take


def distinct_codes(frame: pd.DataFrame, columns: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Each row's code for its combination of ``columns`` (missing counts as a value), numbered in order
    of first appearance, and the first row of each code, in code order.

    Several columns are combined through integer codes (a categorical column's own, any other column's
    ``pd.factorize``) into one integer per row, re-numbered whenever the combinations could outgrow 64
    bits, which is then factorised."""
    if len(columns) == 1:
        codes = np.asarray(pd.factorize(frame[columns[0]], use_na_sentinel=False)[0])
    else:
        key, size = np.zeros(len(frame), dtype=np.int64), 1
        for column in columns:
            column_codes, count = _value_codes(frame[column])
            if size * count >= 1 << 62:  # re-number the combinations seen so far: at most one per row
                key, uniques = pd.factorize(key)
                size = len(uniques)
            key, size = key * count + column_codes, size * count
        codes = np.asarray(pd.factorize(key)[0])
    # Codes are numbered in order of first appearance: a row is a code's first where it exceeds every
    # code before it.
    seen = np.maximum.accumulate(codes) if len(codes) else codes
    first = np.ones(len(codes), dtype=bool)
    first[1:] = codes[1:] > seen[:-1]
    return codes, np.flatnonzero(first)


def _value_codes(column: pd.Series) -> tuple[np.ndarray, int]:
    """Each row's value as an integer in ``[0, count)``, missing values included (as one value)."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        return column.cat.codes.to_numpy().astype(np.int64) + 1, len(column.cat.categories) + 1
    codes, uniques = pd.factorize(column, use_na_sentinel=False)
    return np.asarray(codes, dtype=np.int64), max(len(uniques), 1)


def per_distinct(frame: pd.DataFrame, columns: list[str], function, categorical: bool = False) -> pd.Series:
    """``function(frame[columns])``, worked out once per distinct combination of those columns and
    spread back to every row. ``function`` gets plain (not categorical) columns; with ``categorical``
    the result is a categorical column (``spread``)."""
    codes, first_rows = distinct_codes(frame, columns)
    if len(codes) == 0:
        return function(plain(frame[columns]))
    distinct = plain(frame[columns].iloc[first_rows].reset_index(drop=True))
    result = function(distinct)
    if categorical:
        return spread(result, codes, frame.index).rename(result.name)
    return pd.Series(result.array.take(codes), index=frame.index, name=result.name)


def spread(values: pd.Series, position: np.ndarray, index: pd.Index) -> pd.Series:
    """``values`` taken at ``position`` (-1: missing) as a categorical column."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    taken = take(codes, position, allow_fill=True, fill_value=-1)
    return pd.Series(pd.Categorical.from_codes(taken, categories=pd.Index(uniques)), index=index, name=values.name)


def plain(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with its categorical columns turned back into their values' own dtype."""
    categorical = [column for column in frame if isinstance(frame[column].dtype, pd.CategoricalDtype)]
    if not categorical:
        return frame
    frame = frame.copy(deep=False)
    for column in categorical:
        frame[column] = plain_values(frame[column])
    return frame


def plain_values(column: pd.Series) -> pd.Series:
    """A categorical column's values in its categories' dtype (text categories are taken in Arrow, not
    through a Python object per row); any other column as it is."""
    if not isinstance(column.dtype, pd.CategoricalDtype):
        return column
    dtype = column.cat.categories.dtype
    if not isinstance(dtype, pd.StringDtype) or dtype.storage != "pyarrow":
        return column.astype(dtype)
    codes = column.cat.codes.to_numpy()
    values = column.cat.categories.array.__arrow_array__().take(pa.array(codes, mask=codes < 0))
    return pd.Series(pd.array(values, dtype=dtype), index=column.index, name=column.name)
