"""Dagster wiring of the CryptoRL pipeline: thin assets over ``cryptorl_core``."""

from cryptorl_dagster.definitions import defs

__all__ = ["defs"]
