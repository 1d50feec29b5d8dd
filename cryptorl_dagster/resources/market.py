"""Where market data comes from: the embedded synthetic market or a folder of files."""

from __future__ import annotations

from functools import lru_cache

import dagster as dg
import pandas as pd

from cryptorl_core import settings
from cryptorl_core.data.coverage import SeriesCoverageConfig
from cryptorl_core.data.market import MarketData

#: Environment variable naming a folder of ``<SYMBOL>_1h.csv|parquet`` files.
DATA_DIR_ENV = settings.DATA_DIR_ENV
#: Environment variable with a de-duplication policy for overlapping exports.
DEDUP_ENV = settings.DEDUP_ENV
#: Environment variables of the series-coverage policy (see :mod:`cryptorl_core.data.coverage`).
ON_SHORT_SERIES_ENV = settings.ON_SHORT_SERIES_ENV
MAX_GAP_CRYPTO_ENV = settings.MAX_GAP_CRYPTO_ENV
MAX_GAP_MACRO_ENV = settings.MAX_GAP_MACRO_ENV
COVERAGE_ENV_VARS = settings.COVERAGE_ENV_VARS
_COVERAGE_DEFAULT = SeriesCoverageConfig()


def env_or(name: str, default: str) -> str | dg.EnvVar:
    """``dg.EnvVar(name)`` when the variable is set (resolved in the run worker, shown as an
    env var in the UI), else ``default``."""
    return dg.EnvVar(name) if settings.is_set(name) else default


def _env_int_or(name: str, default: int) -> int | dg.EnvVar:
    return dg.EnvVar.int(name) if settings.is_set(name) else default


def synthetic_coverage() -> tuple[pd.Timestamp, pd.Timestamp]:
    """First and last bar of the synthetic market, without generating it."""
    from cryptorl_core.data.synthetic import SyntheticMarketConfig

    cfg = SyntheticMarketConfig()
    start = pd.Timestamp(cfg.start, tz="UTC") if pd.Timestamp(cfg.start).tzinfo is None else pd.Timestamp(cfg.start)
    end = start + pd.DateOffset(years=cfg.n_years) - pd.Timedelta(hours=1)
    return start, pd.Timestamp(end)


@lru_cache(maxsize=4)
def load_market(
    data_dir: str = "", dedup: str = "", coverage: SeriesCoverageConfig | None = None
) -> MarketData:
    """Load (once per process and configuration) the synthetic market or a data folder."""
    if not data_dir:
        from cryptorl_core.data.synthetic import generate_synthetic_market

        return generate_synthetic_market()
    from cryptorl_core.data.folder import load_market_folder

    return load_market_folder(data_dir, dedup=dedup or None, coverage=coverage)


class MarketSource(dg.ConfigurableResource):
    """The market data source of the pipeline.

    :param data_dir: folder of own data; empty means the embedded synthetic market.
    :param dedup: opt-in de-duplication policy for overlapping exports (see the data docs).
    :param on_short_series: what to do with a series that ends early, starts late or has
        a hole over its gap limit: ``"truncate"`` (default: keep the longest stretch every
        series covers, with a note), ``"drop"`` (leave the symbol out, with a note) or
        ``"fail"`` (raise an error naming the file, symbol, last bar and gap).
    :param max_gap_crypto_hours: longest tolerated run of hours without a bar, crypto.
    :param max_gap_macro_hours: the same for macro series (weekends and holidays fit in it).

    The walk-forward partitions are listed from the environment (:meth:`from_settings`),
    so set the policy through ``CRYPTORL_ON_SHORT_SERIES``, ``CRYPTORL_MAX_GAP_CRYPTO_HOURS``
    and ``CRYPTORL_MAX_GAP_MACRO_HOURS`` for the segment list to follow a truncated end.
    """

    data_dir: str = ""
    dedup: str = ""
    on_short_series: str = _COVERAGE_DEFAULT.on_short_series
    max_gap_crypto_hours: int = _COVERAGE_DEFAULT.max_gap_crypto_hours
    max_gap_macro_hours: int = _COVERAGE_DEFAULT.max_gap_macro_hours

    @classmethod
    def from_env(cls) -> MarketSource:
        """The code location's resource: each variable as ``dg.EnvVar`` when set, else its default."""
        return cls(
            data_dir=env_or(DATA_DIR_ENV, ""),
            dedup=env_or(DEDUP_ENV, ""),
            on_short_series=env_or(ON_SHORT_SERIES_ENV, _COVERAGE_DEFAULT.on_short_series),
            max_gap_crypto_hours=_env_int_or(MAX_GAP_CRYPTO_ENV, _COVERAGE_DEFAULT.max_gap_crypto_hours),
            max_gap_macro_hours=_env_int_or(MAX_GAP_MACRO_ENV, _COVERAGE_DEFAULT.max_gap_macro_hours),
        )

    @classmethod
    def from_settings(cls) -> MarketSource:
        """The same source with the environment's values resolved now (outside a run)."""
        return cls(
            data_dir=settings.data_dir(),
            dedup=settings.dedup_policy(),
            on_short_series=settings.env(ON_SHORT_SERIES_ENV, _COVERAGE_DEFAULT.on_short_series),
            max_gap_crypto_hours=settings.env_int(MAX_GAP_CRYPTO_ENV, _COVERAGE_DEFAULT.max_gap_crypto_hours),
            max_gap_macro_hours=settings.env_int(MAX_GAP_MACRO_ENV, _COVERAGE_DEFAULT.max_gap_macro_hours),
        )

    def coverage_config(self) -> SeriesCoverageConfig:
        """The series-coverage policy (an unknown policy or a bad limit raises ``ValueError``)."""
        return SeriesCoverageConfig(
            max_gap_crypto_hours=self.max_gap_crypto_hours,
            max_gap_macro_hours=self.max_gap_macro_hours,
            on_short_series=self.on_short_series,
        )

    def load(self) -> MarketData:
        return load_market(self.data_dir, self.dedup, self.coverage_config())

    def coverage(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        """First and last bar of the loaded data (after the coverage policy, e.g. a
        truncated end); the synthetic market's without generating it."""
        if not self.data_dir:
            return synthetic_coverage()
        market = self.load()
        return market.start, market.end

    @property
    def label(self) -> str:
        return self.data_dir or "synthetic"
