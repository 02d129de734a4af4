"""Features and labels of the signal model: ONE feature function for training and serving (no skew).

Which columns, features and labels, and why: docs/ml-signal-model.md ("Modules").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

# Mart columns the features need (all present in fct_latest_features, so serving needs no extra query).
SOURCE_COLUMNS = (
    "close", "sma_20", "sma_50", "ema_12", "ema_26", "macd_hist", "rsi_14",
    "bb_upper", "bb_middle", "bb_lower", "atr_14", "volume_zscore_20", "return_simple",
)  # fmt: skip
FEATURE_NAMES = (
    "close_to_sma_20", "close_to_sma_50", "sma_20_to_sma_50", "ema_12_to_ema_26", "rsi_14_scaled",
    "macd_hist_to_close", "bb_position", "bb_width", "atr_to_close", "volume_zscore_20", "return_1d",
)  # fmt: skip
LABEL = "label_up"
INDICATORS_TABLE = "analytics_marts.fct_daily_indicators"
ENRICHED_TABLE = "analytics_intermediate.int_daily_bars_enriched"

# The training rows: the indicator mart plus the session's close-to-close return (the same join
# fct_latest_features makes), one row per symbol and session, oldest first.
_TRAINING_SQL = f"""
SELECT i.symbol, i.session_date, {", ".join(f"i.{c}" for c in SOURCE_COLUMNS if c != "return_simple")},
       b.return_simple
FROM {INDICATORS_TABLE} i
JOIN {ENRICHED_TABLE} b USING (symbol, session_date)
WHERE (%(symbols)s::text[] IS NULL OR i.symbol = ANY(%(symbols)s::text[]))
  AND (%(until)s::date IS NULL OR i.session_date <= %(until)s::date)
ORDER BY i.symbol, i.session_date
"""


def build_features(rows: pd.DataFrame) -> pd.DataFrame:
    """The model's inputs (``FEATURE_NAMES``, float64, same index) from rows holding ``SOURCE_COLUMNS``.

    Used unchanged by training (thousands of rows) and by the ``ml`` strategy (one row per symbol).
    NULL, non-numeric or non-finite inputs, and divisions by zero, give NaN (the caller drops or HOLDs).
    """
    import numpy as np
    import pandas as pd

    missing = [c for c in SOURCE_COLUMNS if c not in rows.columns]
    if missing:
        raise KeyError(f"feature rows lack column(s) {missing}")
    src = {c: pd.to_numeric(rows[c], errors="coerce").astype("float64").replace([np.inf, -np.inf], np.nan)
           for c in SOURCE_COLUMNS}  # fmt: skip
    close = src["close"].where(src["close"] > 0)
    band = src["bb_upper"] - src["bb_lower"]
    with np.errstate(divide="ignore", invalid="ignore"):
        out = pd.DataFrame(
            {
                "close_to_sma_20": close / src["sma_20"] - 1.0,
                "close_to_sma_50": close / src["sma_50"] - 1.0,
                "sma_20_to_sma_50": src["sma_20"] / src["sma_50"] - 1.0,
                "ema_12_to_ema_26": src["ema_12"] / src["ema_26"] - 1.0,
                "rsi_14_scaled": src["rsi_14"] / 100.0,
                "macd_hist_to_close": src["macd_hist"] / close,
                "bb_position": (close - src["bb_lower"]) / band.where(band > 0),
                "bb_width": band / src["bb_middle"],
                "atr_to_close": src["atr_14"] / close,
                "volume_zscore_20": src["volume_zscore_20"],
                "return_1d": src["return_simple"],
            },
            index=rows.index,
        )
    return out.replace([np.inf, -np.inf], np.nan)[list(FEATURE_NAMES)]


def features_from_row(row: Mapping[str, Any]) -> tuple[pd.DataFrame, list[str]]:
    """One serving row (a ``fct_latest_features`` row as the trading DAG passes it) -> a one-row feature frame,
    and the names of features that came out NaN (warm-up, NULL or junk inputs)."""
    import pandas as pd

    frame = pd.DataFrame([{c: _scalar(row.get(c)) for c in SOURCE_COLUMNS}])
    features = build_features(frame)
    return features, [name for name in FEATURE_NAMES if pd.isna(features.iloc[0][name])]


def _scalar(value: Any) -> Any:
    # bools and containers are junk, not numbers (pandas would read True as 1.0)
    return None if isinstance(value, bool | list | dict | tuple | set) else value


def add_labels(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` (``symbol``, ``session_date``, ``close``...) sorted per symbol by session, with
    ``next_session_date``, ``next_close`` and ``label_up`` (1 = next close strictly higher, 0 = lower or
    equal; NaN on each symbol's last session, which has no next session)."""
    import numpy as np

    out = frame.sort_values(["symbol", "session_date"], kind="stable").reset_index(drop=True)
    grouped = out.groupby("symbol", sort=False)
    out["next_session_date"] = grouped["session_date"].shift(-1)
    out["next_close"] = grouped["close"].shift(-1)
    close = out["close"].astype("float64")
    nxt = out["next_close"].astype("float64")
    out[LABEL] = np.where(nxt.isna() | close.isna(), np.nan, (nxt > close).astype("float64"))
    return out


@dataclass(frozen=True)
class Dataset:
    """Model rows: features ``X``, labels ``y`` (0/1) and ``meta`` (symbol, session_date, next_session_date)."""

    X: pd.DataFrame
    y: pd.Series
    meta: pd.DataFrame

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, mask: Any) -> Dataset:
        return Dataset(self.X[mask].reset_index(drop=True), self.y[mask].reset_index(drop=True),
                       self.meta[mask].reset_index(drop=True))  # fmt: skip


def make_dataset(frame: pd.DataFrame) -> Dataset:
    """Label the mart rows, build their features, drop unlabelled (last session) and warm-up (NaN) rows."""
    labelled = add_labels(frame)
    X = build_features(labelled)
    keep = labelled[LABEL].notna() & X.notna().all(axis=1)
    meta = labelled.loc[keep, ["symbol", "session_date", "next_session_date"]].reset_index(drop=True)
    return Dataset(X[keep].reset_index(drop=True), labelled.loc[keep, LABEL].astype("int64").reset_index(drop=True),
                   meta)  # fmt: skip


def default_cutoff(dataset: Dataset, holdout_fraction: float) -> date:
    """The first hold-out session: the session date at ``1 - holdout_fraction`` of the distinct sessions
    (one date for every symbol, so no symbol's hold-out overlaps another's training period)."""
    sessions = sorted(set(dataset.meta["session_date"]))
    if len(sessions) < 2:
        raise ValueError(f"need at least 2 labelled sessions to split, got {len(sessions)}")
    index = min(len(sessions) - 1, max(1, round(len(sessions) * (1.0 - holdout_fraction))))
    return sessions[index]


def time_split(dataset: Dataset, cutoff: date) -> tuple[Dataset, Dataset]:
    """(train, hold-out): training rows are sessions before ``cutoff`` whose label session (the next one) is also
    before it; hold-out rows are sessions on or after ``cutoff``. Order is kept (no shuffling)."""
    session = dataset.meta["session_date"]
    train = (session < cutoff) & (dataset.meta["next_session_date"] < cutoff)
    return dataset.subset(train.to_numpy()), dataset.subset((session >= cutoff).to_numpy())


def load_training_frame(dsn: str, symbols: Sequence[str] | None = None, until: date | None = None) -> pd.DataFrame:
    """Mart rows (``symbol``, ``session_date``, ``SOURCE_COLUMNS``) for ``symbols`` (None = all) up to ``until``."""
    import pandas as pd

    from include.marketdata.db import connection

    wanted = sorted({s.upper() for s in symbols}) if symbols else None
    with connection(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass(%s) IS NOT NULL AND to_regclass(%s) IS NOT NULL",
                    (INDICATORS_TABLE, ENRICHED_TABLE))  # fmt: skip
        if not cur.fetchone()[0]:
            raise LookupError(f"{INDICATORS_TABLE} does not exist: run ingestion and market_data_models (dbt) first")
        cur.execute(_TRAINING_SQL, {"symbols": wanted, "until": until})
        names = [d[0] for d in cur.description]
        rows = cur.fetchall()
    frame = pd.DataFrame(rows, columns=names)
    for column in SOURCE_COLUMNS:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    return frame
