"""A training job's input channels (`train`, `validation`, ...) read as the built-in
algorithms read them:

    text/csv           no header, the label in the first column (unlabelled algorithms,
                       or `text/csv;label_size=0`, take every column as a feature)
    text/libsvm        `label index:value ...` lines (XGBoost); also text/x-libsvm, libsvm
    application/x-parquet   the label in the first column, like CSV

`CompressionType: Gzip` channels are gunzipped on reading. Every value must be a number:
the built-ins take numbers only (missing CSV cells are NaN, which XGBoost handles and the
others refuse). RecordIO-protobuf is not read: send CSV or Parquet instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from tabpilot.errors import DataError

CSV, LIBSVM, PARQUET = "text/csv", "text/libsvm", "application/x-parquet"
ALIASES = {"text/csv": CSV, "csv": CSV, "text/libsvm": LIBSVM, "text/x-libsvm": LIBSVM,
           "libsvm": LIBSVM, "application/x-parquet": PARQUET, "parquet": PARQUET,
           "application/parquet": PARQUET}


@dataclass
class Channel:
    name: str
    X: np.ndarray | sp.csr_matrix
    y: np.ndarray | None

    @property
    def rows(self) -> int:
        return self.X.shape[0]

    def dense(self, algorithm: str) -> np.ndarray:
        """The features as a dense array without missing values (every built-in but
        XGBoost needs that)."""
        X = self.X.toarray() if sp.issparse(self.X) else np.asarray(self.X, dtype=float)
        if np.isnan(X).any():
            row, col = np.argwhere(np.isnan(X))[0]
            raise DataError(f"channel {self.name}: row {row + 1}, column {col + 1} is missing; "
                            f"{algorithm} takes no missing values, fill them in first")
        return X


def content_type(given: str | None) -> tuple[str, dict[str, str]]:
    """'text/csv;label_size=0' -> ('text/csv', {'label_size': '0'}); default CSV."""
    if not given:
        return CSV, {}
    head, *rest = [part.strip() for part in given.split(";")]
    kind = ALIASES.get(head.lower())
    if kind is None:
        raise DataError(f"ContentType {given!r}: the built-in algorithms read here take "
                        "text/csv, text/libsvm or application/x-parquet (RecordIO-protobuf is "
                        "not read: write the data as CSV, label first, no header)")
    params = dict(p.split("=", 1) for p in rest if "=" in p)
    return kind, {k.strip().lower(): v.strip() for k, v in params.items()}


def read(name: str, files: list[Path], given_type: str | None, labelled: bool,
         gzip: bool = False) -> Channel:
    """The rows of a channel's files, together, split into features and label."""
    kind, params = content_type(given_type)
    if not files:
        raise DataError(f"channel {name} holds no files; check its S3Uri")
    if params.get("label_size") in ("0", "1"):  # the request says, whatever the algorithm
        labelled = params["label_size"] == "1"
    compression = "gzip" if gzip else "infer"
    if kind == LIBSVM:
        return _libsvm(name, files, compression)
    frames = [_table(name, f, kind, compression) for f in files]
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    if frame.empty:
        raise DataError(f"channel {name} holds no rows ({len(files)} file(s) read)")
    values = _numbers(name, frame)
    if not labelled:
        return Channel(name, values, None)
    if values.shape[1] < 2:
        raise DataError(f"channel {name}: a row needs the label and at least one feature; "
                        f"got {values.shape[1]} column(s)")
    y = values[:, 0]
    if np.isnan(y).any():
        row = int(np.argmax(np.isnan(y)))
        raise DataError(f"channel {name}: row {row + 1} has no label (first column); every "
                        "row of a labelled channel needs one")
    return Channel(name, values[:, 1:], y)


def _table(name: str, path: Path, kind: str, compression: str) -> pd.DataFrame:
    try:
        if kind == PARQUET:
            return pd.read_parquet(path)
        return pd.read_csv(path, header=None, compression=compression, skip_blank_lines=True)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"channel {name}: cannot read {path.name} as {kind}: {first}") from None


def _numbers(name: str, frame: pd.DataFrame) -> np.ndarray:
    for i, column in enumerate(frame.columns):
        if not pd.api.types.is_numeric_dtype(frame[column]):
            converted = pd.to_numeric(frame[column], errors="coerce")
            bad = frame[column][converted.isna() & frame[column].notna()]
            if len(bad):
                raise DataError(f"channel {name}: column {i + 1} holds {str(bad.iloc[0])[:40]!r}, "
                                "not a number; the built-in algorithms take numbers only "
                                "(label first, no header line)")
            frame[column] = converted
    return frame.to_numpy(dtype=float)


def _libsvm(name: str, files: list[Path], compression: str) -> Channel:
    from sklearn.datasets import load_svmlight_files

    try:
        loaded = load_svmlight_files([str(f) for f in files], dtype=np.float64,
                                     zero_based=True)
    except (OSError, ValueError) as exc:
        raise DataError(f"channel {name}: cannot read it as LibSVM: {exc}") from None
    Xs, ys = loaded[0::2], loaded[1::2]
    width = max(X.shape[1] for X in Xs)
    Xs = [sp.csr_matrix((X.data, X.indices, X.indptr), shape=(X.shape[0], width)) for X in Xs]
    X = sp.vstack(Xs, format="csr")
    if X.shape[0] == 0:
        raise DataError(f"channel {name} holds no rows ({len(files)} file(s) read)")
    return Channel(name, X, np.concatenate(ys))


def align(train: Channel, other: Channel) -> Channel:
    """`other` with as many feature columns as `train` (LibSVM files list only the
    features they use); a table with a different width is refused."""
    if other.X.shape[1] == train.X.shape[1]:
        return other
    if sp.issparse(other.X) and other.X.shape[1] < train.X.shape[1]:
        X = other.X.copy()
        X.resize((X.shape[0], train.X.shape[1]))
        return Channel(other.name, X, other.y)
    raise DataError(f"channel {other.name} has {other.X.shape[1]} feature columns, channel "
                    f"{train.name} {train.X.shape[1]}; both need the same columns in the same order")
