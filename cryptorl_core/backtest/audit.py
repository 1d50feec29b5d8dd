"""Policy-collapse audit of a trained SB3 actor-critic (TQC, SAC) over a backtest window.

A collapsed policy keeps taking the same action whatever the market does (the most common
complaint in FinRL and freqtrade's RL). The audit looks at it from four sides:

1. **Actions** (:class:`~cryptorl_core.policy_stats.CollapseRule`): histogram, entropy, modal share and
   number of trades of the deterministic actions over the window.
2. **Exploration noise**: the policy's log standard deviation (gSDE's ``log_std`` matrix, or the
   state-dependent one without gSDE) and the resulting pre-squash action std at the sampled
   states. A std near 0 means exploration has died out.
3. **Critic flatness**: the critic's Q-value (TQC: mean of every critic's quantiles; SAC: mean
   of the critics) at a grid of actions in [-1, 1] for sampled states. If Q barely varies
   across actions, the actor has no gradient to leave its corner.
4. **Feature attribution** (gradient x input, for the deterministic action): how much of the
   action's sensitivity comes from the technical embeddings (the frozen encoder's view of the
   technical features), the HMM context, the position and ``w_cost``. A policy that only
   looks at its own position is collapsed in disguise.

Attribution needs the agent's :class:`~cryptorl_core.agent.extractor.FoundationFeatureExtractor`:
for the sampled rows the audit gathers the embeddings and context once, attaches them to the
actor's extractor as small leaf tensors that require grad (rows re-indexed ``0..k-1``), and
restores the original market tensors afterwards. Without that extractor only ``position`` and
``w_cost`` are attributed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from cryptorl_core.backtest.config import BacktestConfig
from cryptorl_core.backtest.runner import BacktestRun
from cryptorl_core.policy_stats import CollapseStats, collapse_stats

#: Attribution groups, in display order.
GROUPS = ("technical", "hmm", "position", "w_cost")


@dataclass
class PolicyAudit:
    """Result of :func:`audit_policy`.

    :param collapse: action statistics over the window.
    :param collapsed: any collapse criterion failed.
    :param reasons: the failed criteria.
    :param log_std: ``mean``, ``min``, ``max`` of the policy's log std (None without an actor).
    :param action_std: ``mean``, ``min``, ``max`` of the pre-squash action std at the states.
    :param q_spread: ``mean_range``, ``mean_std``, ``mean_abs_q``, ``relative_range``,
        ``argmax_modal_share`` over the states (None without an action-value critic).
    :param attribution: group to share of the total |gradient x input| (sums to 1).
    :param n_states: states sampled for 2-4.
    """

    collapse: CollapseStats
    collapsed: bool
    reasons: list[str]
    log_std: dict[str, float] | None = None
    action_std: dict[str, float] | None = None
    q_spread: dict[str, float] | None = None
    attribution: dict[str, float] = field(default_factory=dict)
    n_states: int = 0

    def as_dict(self) -> dict[str, Any]:
        """Plain dict for metadata and JSON."""
        return {
            "collapsed": self.collapsed,
            "reasons": self.reasons,
            "actions": self.collapse.as_dict(),
            "log_std": self.log_std,
            "action_std": self.action_std,
            "q_spread": self.q_spread,
            "attribution": self.attribution,
            "n_states": self.n_states,
        }


def _summary(x: torch.Tensor | np.ndarray) -> dict[str, float]:
    a = np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x, dtype=float).reshape(-1)
    return {"mean": float(a.mean()), "min": float(a.min()), "max": float(a.max())}


def sample_states(run: BacktestRun, n_states: int) -> dict[str, np.ndarray]:
    """Evenly spaced decision states of a run, as an SB3 observation batch.

    :param run: the agent's run (its rows, the position held when deciding, its ``w_cost``).
    :param n_states: at most this many states (all decisions when fewer).
    :return: ``{"market", "position", "w_cost"}``, each ``(k, 1)`` float32.
    """
    decided = run.steps.dropna(subset=["action"])
    pick = np.unique(np.linspace(0, len(decided) - 1, min(n_states, len(decided))).round().astype(int))
    rows = decided.iloc[pick]
    k = len(rows)
    return {
        "market": rows["row"].to_numpy(np.float32).reshape(k, 1),
        "position": rows["position"].to_numpy(np.float32).reshape(k, 1),
        "w_cost": np.full((k, 1), run.w_cost, dtype=np.float32),
    }


def _obs_tensors(model: Any, obs: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {k: torch.as_tensor(v, device=model.device) for k, v in obs.items()}


def exploration_stats(model: Any, obs: dict[str, np.ndarray]) -> tuple[dict[str, float], dict[str, float]] | None:
    """Log std of the policy and the pre-squash action std at ``obs``.

    :param model: an SB3 TQC / SAC model (``model.actor``).
    :param obs: observation batch.
    :return: ``(log_std, action_std)`` summaries, or None without such an actor.
    """
    actor = getattr(model, "actor", None)
    if actor is None or not hasattr(actor, "get_action_dist_params"):
        return None
    with torch.no_grad():
        mean, log_std, kwargs = actor.get_action_dist_params(_obs_tensors(model, obs))
        dist = actor.action_dist.proba_distribution(mean, log_std, **kwargs)
        return _summary(log_std), _summary(dist.distribution.stddev)


def q_values(model: Any, obs: dict[str, np.ndarray], grid: np.ndarray) -> np.ndarray | None:
    """Critic value of every grid action at every state, ``(n_states, n_grid)``.

    TQC's critic returns quantiles ``(batch, n_critics, n_quantiles)``: averaged over both.
    SAC's returns one ``(batch, 1)`` tensor per critic: averaged.

    :param model: an SB3 TQC / SAC model (``model.critic``).
    :param obs: observation batch of ``k`` states.
    :param grid: actions in [-1, 1] (the action space's scale).
    :return: the values, or None without an action-value critic.
    """
    critic = getattr(model, "critic", None)
    if critic is None:
        return None
    k, g = len(obs["market"]), len(grid)
    tiled = {key: np.repeat(v, g, axis=0) for key, v in obs.items()}  # state-major
    actions = torch.as_tensor(np.tile(grid, k).reshape(-1, 1), dtype=torch.float32, device=model.device)
    with torch.no_grad():
        out = critic(_obs_tensors(model, tiled), actions)
        q = torch.stack(out, dim=1) if isinstance(out, tuple) else out
    return q.reshape(k * g, -1).mean(dim=1).reshape(k, g).cpu().numpy().astype(float)


def q_spread_stats(q: np.ndarray, grid: np.ndarray, modal_action: float) -> dict[str, float]:
    """How much Q varies across actions (per state, then averaged over states).

    :param q: ``(n_states, n_grid)`` values.
    :param grid: the grid actions.
    :param modal_action: the policy's modal action (for the share of states whose best grid
        action is that one).
    :return: ``mean_range`` (max - min), ``mean_std``, ``mean_abs_q``, ``relative_range``
        (mean range / mean |Q|) and ``argmax_modal_share``.
    """
    rng = q.max(axis=1) - q.min(axis=1)
    mean_abs = float(np.abs(q).mean())
    best = grid[q.argmax(axis=1)]
    return {
        "mean_range": float(rng.mean()),
        "mean_std": float(q.std(axis=1).mean()),
        "mean_abs_q": mean_abs,
        "relative_range": float(rng.mean() / mean_abs) if mean_abs > 0 else float("nan"),
        "argmax_modal_share": float(np.isclose(best, modal_action).mean()),
    }


@contextmanager
def _leaf_market(extractor: Any, rows: np.ndarray) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Temporarily attach the sampled rows' embeddings and context as grad-requiring leaves."""
    from cryptorl_core.agent.market_tensors import MarketTensors

    original = extractor.market
    index = torch.as_tensor(rows, device=original.device)
    with torch.no_grad():
        emb = original.embeddings_at(index).float().clone()
        ctx = original.context_at(index).float().clone()
    emb.requires_grad_(True)
    ctx.requires_grad_(True)
    extractor.attach(MarketTensors(context=ctx, embeddings=emb))
    try:
        yield emb, ctx
    finally:
        extractor.attach(original)


def _foundation_extractor(actor: Any) -> Any | None:
    try:
        from cryptorl_core.agent.extractor import FoundationFeatureExtractor, MarketNotAttachedError
    except ImportError:  # the agent package is optional for callable policies
        return None
    fe = getattr(actor, "features_extractor", None)
    if not isinstance(fe, FoundationFeatureExtractor):
        return None
    try:
        fe.market  # noqa: B018 (raises when nothing is attached)
    except MarketNotAttachedError:
        return None
    return fe


def _grad_x_input(leaf: torch.Tensor) -> float:
    """Sum of |gradient x input| of a leaf tensor (0 when the action does not depend on it)."""
    return 0.0 if leaf.grad is None else float((leaf.grad * leaf.detach()).abs().sum())


def feature_attribution(model: Any, obs: dict[str, np.ndarray]) -> dict[str, float]:
    """Share of |gradient x input| of the deterministic action per input group.

    :param model: an SB3 TQC / SAC model.
    :param obs: observation batch (distinct rows).
    :return: group (:data:`GROUPS`) to share; empty without an actor.
    """
    actor = getattr(model, "actor", None)
    if actor is None or not hasattr(actor, "get_action_dist_params"):
        return {}
    t = _obs_tensors(model, obs)
    pos = t["position"].clone().requires_grad_(True)
    w = t["w_cost"].clone().requires_grad_(True)
    extractor = _foundation_extractor(actor)
    raw: dict[str, float] = {}
    with torch.enable_grad():
        if extractor is not None:
            rows = t["market"].reshape(-1).round().long().cpu().numpy()
            local = torch.arange(len(rows), device=model.device, dtype=torch.float32).reshape(-1, 1)
            with _leaf_market(extractor, rows) as (emb, ctx):
                mean, _, _ = actor.get_action_dist_params({"market": local, "position": pos, "w_cost": w})
                torch.tanh(mean).sum().backward()
                raw["technical"] = _grad_x_input(emb)  # 0 for a policy that reads no embedding
                raw["hmm"] = _grad_x_input(ctx)
        else:
            mean, _, _ = actor.get_action_dist_params({"market": t["market"], "position": pos, "w_cost": w})
            torch.tanh(mean).sum().backward()
    # The audit never trains: drop the gradients it left on the actor's parameters.
    actor.zero_grad(set_to_none=True)
    raw["position"] = float((pos.grad * pos.detach()).abs().sum())
    raw["w_cost"] = float((w.grad * w.detach()).abs().sum())
    total = sum(raw.values())
    return {g: (raw[g] / total if total > 0 else 0.0) for g in GROUPS if g in raw}


def audit_policy(
    model: Any,
    run: BacktestRun,
    config: BacktestConfig | None = None,
) -> PolicyAudit:
    """Collapse audit of ``model`` over the window of its backtest ``run``.

    :param model: the SB3 model that produced ``run`` (its market tensors attached), or any
        policy (callables get the action statistics only).
    :param run: the deterministic backtest of the model.
    :param config: thresholds, number of sampled states and of Q-grid actions.
    :return: the audit.
    """
    cfg = config or BacktestConfig()
    stats = collapse_stats(run.actions, cfg.action_bin_width)
    collapsed, reasons = cfg.collapse.verdict(stats)
    audit = PolicyAudit(collapse=stats, collapsed=collapsed, reasons=reasons)
    if not hasattr(model, "actor"):
        return audit
    obs = sample_states(run, cfg.audit_n_states)
    audit.n_states = len(obs["market"])
    exploration = exploration_stats(model, obs)
    if exploration is not None:
        audit.log_std, audit.action_std = exploration
    grid = np.linspace(-1.0, 1.0, cfg.audit_q_grid)
    q = q_values(model, obs, grid)
    if q is not None:
        audit.q_spread = q_spread_stats(q, grid, stats.modal_action)
    audit.attribution = feature_attribution(model, obs)
    return audit
