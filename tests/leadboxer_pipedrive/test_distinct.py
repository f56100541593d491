import numpy as np
import pandas as pd

from leadboxer_pipedrive.distinct import distinct_codes, per_distinct


def test_distinct_codes_number_combinations_in_order_of_first_appearance_missing_values_included():
    rng = np.random.default_rng(7)
    many = [str(n) for n in rng.integers(0, 70_000, 3_000)]  # six such columns outgrow 64 bits: re-numbered
    frame = pd.DataFrame({
        **{f"lead_{n}": pd.Categorical(np.roll(many, n)) for n in range(6)},
        "text": pd.Series(["a", None, "b", "a", None] * 600, dtype="string"),
        "flag": [True, False, False] * 1_000,
        "number": pd.array([1, None, 1, 2, 3, None] * 500, dtype="Int64"),
    })
    frame.loc[5, "lead_2"] = None
    for columns in (list(frame.columns), ["text", "flag"], ["lead_0", "number"], ["text"]):
        expected = frame.groupby(columns, dropna=False, sort=False).ngroup().to_numpy()
        codes, first_rows = distinct_codes(frame, columns)
        assert np.array_equal(codes, expected), columns
        assert np.array_equal(first_rows, [np.flatnonzero(expected == code)[0] for code in range(expected.max() + 1)])
    assert [len(part) for part in distinct_codes(frame.iloc[:0], ["text", "flag"])] == [0, 0]


def test_per_distinct_works_each_combination_out_once_and_spreads_it_back():
    frame = pd.DataFrame({"a": pd.Categorical(["x", "y", "x", None]), "b": [1, 1, 1, 2]})
    seen = []

    def joined(rows: pd.DataFrame) -> pd.Series:
        seen.append(len(rows))
        return (rows["a"].astype("string").fillna("-") + rows["b"].astype("string")).rename("ab")

    assert per_distinct(frame, ["a", "b"], joined).tolist() == ["x1", "y1", "x1", "-2"] and seen == [3]
    categorical = per_distinct(frame, ["a", "b"], joined, categorical=True)
    assert isinstance(categorical.dtype, pd.CategoricalDtype) and categorical.tolist() == ["x1", "y1", "x1", "-2"]
