"""Builders shared by several test modules: tiny agent inputs (``agent``), backtest stand-ins
(``backtest``), market-file writers (``data``) and the launcher tests' code location
(``launcher_defs``, loaded by path). Test modules import from here, never from each other.

Nothing here is named ``test_*.py``, so pytest collects no tests from this package.
"""
