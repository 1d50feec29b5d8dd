"""Column and split conventions shared by every stage of the pipeline.

A *segment frame* (the output of the ``features`` stage) is a pandas DataFrame:

- index: hourly, contiguous, tz-aware UTC ``DatetimeIndex`` named ``timestamp``,
  running from the segment's train start to its test end (exclusive);
- technical feature columns: float32, no NaN, normalised with train-row statistics;
- reserved columns (never features): :data:`SPLIT_COL`, :data:`PRICE_OPEN_COL`,
  :data:`PRICE_CLOSE_COL` and, for synthetic data only, :data:`TRUE_REGIME_COL`.

Row ``t`` of a segment frame only uses market information available at the close of
bar ``t`` (bars are stamped with their *open* time, so that is ``timestamp + 1h``).
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

#: Observation window length (hours) of the encoder and the agent.
WINDOW = 64

#: Hours in an average calendar year (365.25 days): crypto trades every hour, so returns,
#: Sharpe ratios and volatilities annualise with it, and the synthetic market sets its drifts by it.
HOURS_PER_YEAR = 24 * 365.25

#: Split labels, in time order inside a segment.
SPLIT_COL = "split"
TRAIN, EVAL, TEST, PURGED = "train", "eval", "test", "purged"
SPLITS = (TRAIN, EVAL, TEST, PURGED)

#: Raw (un-normalised) open and close of the traded asset, used for execution.
PRICE_OPEN_COL = "price_open"
PRICE_CLOSE_COL = "price_close"

#: Ground-truth regime of the synthetic generator (0 bull, 1 bear, 2 range, 3 crash).
TRUE_REGIME_COL = "true_regime"
REGIME_NAMES = ("bull", "bear", "range", "crash")

RESERVED_COLUMNS = frozenset({SPLIT_COL, PRICE_OPEN_COL, PRICE_CLOSE_COL, TRUE_REGIME_COL})

#: The HMM context columns appended by the regime stage: 4 filtered state
#: probabilities (states relabelled in a stable order) and the regime entropy.
HMM_PROB_COLUMNS = ("hmm_p0", "hmm_p1", "hmm_p2", "hmm_p3")
HMM_COLUMNS = (*HMM_PROB_COLUMNS, "hmm_entropy")

#: Symbols the pipeline knows. Crypto symbols are traded; macro symbols are context.
CRYPTO_SYMBOLS = ("BTC", "ETH")
MACRO_SYMBOLS = ("SPX", "NASDAQ", "DXY")
OHLCV = ("open", "high", "low", "close", "volume")


def feature_columns(frame: pd.DataFrame | Iterable[str]) -> list[str]:
    """Technical feature columns of a segment frame, in their stored order.

    :param frame: a segment frame, or its column names.
    :return: every column that is neither reserved nor an HMM context column.
    """
    cols = frame.columns if isinstance(frame, pd.DataFrame) else frame
    return [c for c in cols if c not in RESERVED_COLUMNS and c not in HMM_COLUMNS]


def raw_column(symbol: str, field: str) -> str:
    """Name of a raw market column in the aligned market frame, e.g. ``BTC_close``."""
    return f"{symbol}_{field}"
