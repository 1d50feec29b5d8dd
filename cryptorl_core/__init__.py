"""CryptoRL core library: data, walk-forward segments, features, regimes, encoder,
batched environment, agent and backtest. Plain Python, no Dagster imports."""

__version__ = "0.1.0"
