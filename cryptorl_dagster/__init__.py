"""Dagster wiring of the CryptoRL pipeline: thin assets over ``cryptorl_core``.

``defs`` is loaded lazily (PEP 562): ``dagster ... -m cryptorl_dagster`` finds it, while
the webserver and daemon can import ``cryptorl_dagster.launcher`` (named in
``dagster.yaml``) without importing, or being broken by, the whole pipeline.
"""

__all__ = ["defs"]


def __getattr__(name: str):
    if name == "defs":
        from cryptorl_dagster.definitions import defs

        return defs
    raise AttributeError(f"module 'cryptorl_dagster' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
