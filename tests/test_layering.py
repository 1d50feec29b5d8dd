"""Import layering of ``cryptorl_core``, read from the source with ``ast`` (nothing is imported).

- no module of ``cryptorl_core/`` imports ``dagster`` (``cryptorl_dagster/`` wires the library);
- no module of ``cryptorl_core/agent/`` or ``cryptorl_core/env/`` imports ``cryptorl_core.backtest``
  (the backtest runs the agent through the env, never the other way round; what both use lives
  in neutral modules such as ``cryptorl_core/policy_stats.py`` and ``cryptorl_core/vol_target.py``).

Both rules cover every import statement, at module level or inside a function.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "cryptorl_core"
#: Packages of ``cryptorl_core`` that must not import the backtest.
BELOW_BACKTEST = ("agent", "env")


def _package(path: Path, root: Path) -> str:
    """Dotted package that relative imports in ``path`` start from."""
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1])


def _imports(path: Path, root: Path) -> Iterator[tuple[int, list[str]]]:
    """``(line, names)`` of every import statement in ``path``: the absolute names it imports,
    the module of a ``from`` import first, then each imported name under it (relative imports
    resolved), so ``from cryptorl_core import backtest`` names ``cryptorl_core.backtest``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, [alias.name]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                parts = _package(path, root).split(".")
                base = ".".join(parts[: len(parts) - (node.level - 1)])
                module = f"{base}.{module}" if module else base
            yield node.lineno, [module, *(f"{module}.{a.name}" for a in node.names if a.name != "*")]


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def violations(paths: list[Path], forbidden: str, root: Path = ROOT) -> list[str]:
    """``file:line imports name`` for every import statement of ``paths`` inside ``forbidden``."""
    found = []
    for path in paths:
        for line, names in _imports(path, root):
            hit = next((n for n in names if _within(n, forbidden)), None)
            if hit is not None:
                found.append(f"{path.relative_to(root)}:{line} imports {hit}")
    return sorted(found)


def _core_modules() -> list[Path]:
    paths = sorted(CORE.rglob("*.py"))
    assert paths, f"no module under {CORE}"
    return paths


def test_core_never_imports_dagster() -> None:
    bad = violations(_core_modules(), "dagster")
    assert not bad, "cryptorl_core must not import dagster:\n" + "\n".join(bad)


def test_agent_and_env_never_import_backtest() -> None:
    paths = [p for p in _core_modules() if p.relative_to(CORE).parts[0] in BELOW_BACKTEST]
    assert {p.relative_to(CORE).parts[0] for p in paths} == set(BELOW_BACKTEST)
    bad = violations(paths, "cryptorl_core.backtest")
    assert not bad, "cryptorl_core/agent and cryptorl_core/env must not import cryptorl_core.backtest:\n" + "\n".join(bad)


def test_the_check_sees_every_kind_of_import(tmp_path: Path) -> None:
    """Module-level, function-level, ``from package import module`` and relative imports."""
    src = tmp_path / "cryptorl_core" / "agent" / "bad.py"
    src.parent.mkdir(parents=True)
    src.write_text(
        "import dagster.core\n"
        "def f():\n"
        "    from cryptorl_core.backtest.baselines import buy_and_hold\n"
        "def g():\n"
        "    from cryptorl_core import backtest\n"
        "from ..backtest import collapse\n"
        "from ..vol_target import vol_target\n"
        "import cryptorl_core.backtesting\n",
        encoding="utf-8",
    )
    assert violations([src], "dagster", root=tmp_path) == ["cryptorl_core/agent/bad.py:1 imports dagster.core"]
    assert violations([src], "cryptorl_core.backtest", root=tmp_path) == [
        "cryptorl_core/agent/bad.py:3 imports cryptorl_core.backtest.baselines",
        "cryptorl_core/agent/bad.py:5 imports cryptorl_core.backtest",
        "cryptorl_core/agent/bad.py:6 imports cryptorl_core.backtest",
    ]
