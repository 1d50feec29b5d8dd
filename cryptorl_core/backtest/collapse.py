"""Policy-collapse audit: does the agent keep taking the same action?

The verdict on one run's action statistics (:func:`~cryptorl_core.policy_stats.collapse_stats`,
actions binned on the environment's grid) against the thresholds of :class:`BacktestConfig`.
"""

from __future__ import annotations

from cryptorl_core.backtest.config import BacktestConfig
from cryptorl_core.policy_stats import CollapseStats


def is_collapsed(
    stats: CollapseStats,
    max_modal_share: float | None = None,
    min_trades: int | None = None,
    min_entropy_frac: float | None = None,
    config: BacktestConfig | None = None,
) -> tuple[bool, list[str]]:
    """Flag a collapsed policy; any failed criterion flags it.

    :param stats: output of :func:`~cryptorl_core.policy_stats.collapse_stats`.
    :param max_modal_share: flag when the modal action's share is above this.
    :param min_trades: flag when there are fewer trades than this.
    :param min_entropy_frac: flag when the normalised entropy is below this.
    :param config: source of the thresholds left None (``BacktestConfig()`` when None).
    :return: ``(collapsed, reasons)``, one human-readable reason per failed criterion.
    """
    cfg = config or BacktestConfig()
    share = cfg.collapse_max_modal_share if max_modal_share is None else max_modal_share
    trades = cfg.collapse_min_trades if min_trades is None else min_trades
    ent = cfg.collapse_min_entropy_frac if min_entropy_frac is None else min_entropy_frac
    reasons: list[str] = []
    if stats.modal_share > share:
        reasons.append(
            f"modal action {stats.modal_action:+.1f} taken {stats.modal_share:.1%} of the time "
            f"(> {share:.1%})"
        )
    if stats.n_trades < trades:
        reasons.append(f"{stats.n_trades} trades (< {trades})")
    if stats.entropy_frac < ent:
        reasons.append(f"action entropy {stats.entropy_frac:.3f} of the maximum (< {ent:.3f})")
    return bool(reasons), reasons
