"""Where market data comes from: the embedded synthetic market or a folder of files."""

from __future__ import annotations

import os
from functools import lru_cache

import dagster as dg

from cryptorl_core.data.market import MarketData

#: Environment variable naming a folder of ``<SYMBOL>_1h.csv|parquet`` files.
DATA_DIR_ENV = "CRYPTORL_DATA_DIR"
#: Environment variable with a de-duplication policy for overlapping exports.
DEDUP_ENV = "CRYPTORL_DEDUP"


@lru_cache(maxsize=4)
def load_market(data_dir: str = "", dedup: str = "") -> MarketData:
    """Load (once per process) the synthetic market or a data folder."""
    if not data_dir:
        from cryptorl_core.data.synthetic import generate_synthetic_market

        return generate_synthetic_market()
    from cryptorl_core.data.folder import load_market_folder

    return load_market_folder(data_dir, dedup=dedup or None)


class MarketSource(dg.ConfigurableResource):
    """The market data source of the pipeline.

    :param data_dir: folder of own data; empty means the embedded synthetic market.
    :param dedup: opt-in de-duplication policy for overlapping exports (see the data docs).
    """

    data_dir: str = ""
    dedup: str = ""

    @classmethod
    def from_env(cls) -> MarketSource:
        return cls(data_dir=os.environ.get(DATA_DIR_ENV, ""), dedup=os.environ.get(DEDUP_ENV, ""))

    def load(self) -> MarketData:
        return load_market(self.data_dir, self.dedup)

    @property
    def label(self) -> str:
        return self.data_dir or "synthetic"
