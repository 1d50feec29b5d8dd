"""Agent experiments judged on the train and eval windows only (never the test window).

One experiment = one agent configuration trained on the train window of some segments and
scored on their eval windows (out of sample) and train windows (what it learned in sample)
against the rules that read the same inputs: the regime rule on
the HMM's filtered probabilities, and buy-and-hold. Everything upstream of the agent (features,
regime model, encoder) is built with the profile's own configuration and cached on disk, so a
grid over agent settings re-trains only the agent.

From a shell (the command each row of ``docs/EXPERIMENTS.md`` names)::

    python -m cryptorl_core.experiment --profile quick --segments 2021-Q1,2023-Q3 \\
        --set gamma=0.99 --set learning_rate=3e-4 --seeds 0,1

``--rescore LABEL`` trains nothing: it scores experiment ``LABEL``'s saved checkpoints again,
each seed's kept one (``--checkpoint best_model``) or its last (``final_model``), with the
actions of ``--average-seeds`` averaged, or the run's published policy (``kept``)
(:func:`rescore_checkpoints`)::

    python -m cryptorl_core.experiment --segments 2021-Q1,2023-Q3 --rescore ownsel \\
        --checkpoint final_model --average-seeds 0,1 --label ownsel_mean_final

The embedded synthetic market is the default; ``--data-dir`` reads a folder of market files
instead (the one ``$CRYPTORL_DATA_DIR`` names for the pipeline), with its encoders cached apart.

Test rows are in the segment frame (the split labels need them) but nothing here reads them:
training reads train rows, selection and scoring read eval rows.

``--nested`` judges choices made *on* the eval window, such as the checkpoint or the seed, or
the eval window's length (``--eval-hours``): each segment is moved one window back
(:func:`~cryptorl_core.segments.nested_segment`), so the run trains and selects before the
segment's eval month, and that month is scored as a held-out window (``heldout_`` keys) that
no choice of the run saw. The segment's test quarter is not even in the nested frame::

    python -m cryptorl_core.experiment --nested --eval-hours 1440 --segments 2021-Q1 --label nest_e1440
"""

from __future__ import annotations

import argparse
import ast
import json
import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cryptorl_core.agent.config import AgentConfig
from cryptorl_core.agent.loading import load_policy
from cryptorl_core.agent.market_tensors import MarketTensors
from cryptorl_core.agent.resume import BEST_MODEL_FILE
from cryptorl_core.agent.train import (
    FINAL_MODEL_FILE,
    policy_filename,
    seed_run_dir,
    segment_market,
    train_policy,
)
from cryptorl_core.backtest.baselines import buy_and_hold
from cryptorl_core.backtest.ensemble import MeanActionPolicy
from cryptorl_core.backtest.regime_baselines import regime_rule_positions
from cryptorl_core.backtest.runner import BacktestRun, PredictsActions, run_backtest, run_targets
from cryptorl_core.data.folder import load_market_folder
from cryptorl_core.data.market import MarketData
from cryptorl_core.data.synthetic import generate_synthetic_market
from cryptorl_core.encoder.artifact import load_encoder, save_encoder
from cryptorl_core.encoder.train import train_mae
from cryptorl_core.features.pipeline import build_segment_frame
from cryptorl_core.policy_stats import CollapseRule, collapse_stats
from cryptorl_core.profiles import PipelineConfig
from cryptorl_core.regime.model import RegimeModel, fit_regime_model
from cryptorl_core.schema import EVAL, PRICE_CLOSE_COL, REGIME_NAMES, TEST, TRAIN, TRUE_REGIME_COL
from cryptorl_core.segments import (
    Segment,
    WindowConfig,
    nested_segment,
    segment_by_key,
    segment_slice,
    walk_forward_segments,
)
from cryptorl_core.vol_target import log_returns

logger = logging.getLogger(__name__)

#: Eval-window figures reported per strategy.
SCORE_KEYS = ("sharpe", "total_return_pct", "n_trades")
#: Key prefix of the scores on a nested segment's held-out month (the outer eval window).
HELD_OUT_PREFIX = "heldout_"
#: The saved models of each seed run that ``--rescore`` reads, by ``--checkpoint`` name.
CHECKPOINT_FILES = {"best_model": BEST_MODEL_FILE, "final_model": FINAL_MODEL_FILE}

#: ``--checkpoint`` of the run's published policy (the chosen seed's kept model, in the run folder).
KEPT = "kept"
#: ``--checkpoint`` of each seed's own kept model (``seeds/<seed>``): the candidates the run chose among.
SEEDS_KEPT = "seeds_kept"

#: A decision at least this far from flat counts as holding a position (:func:`regime_exposure`).
HELD_POSITION = 0.5


@dataclass
class PreparedSegment:
    """Everything upstream of the agent for one segment.

    :param key: segment key.
    :param frame: the segment frame (features, split labels, prices).
    :param regime: the fitted regime model.
    :param context: the regime model's filtered context of every row.
    :param encoder_path: the cached ``encoder.pth``.
    :param held_out: the frame's test rows are a held-out month that runs may be scored on (a
        :func:`~cryptorl_core.segments.nested_segment`), not the segment's test quarter.
    """

    key: str
    frame: pd.DataFrame
    regime: RegimeModel
    context: pd.DataFrame
    encoder_path: Path
    held_out: bool = False

    @property
    def scored_splits(self) -> tuple[tuple[str, str], ...]:
        """``(split, key prefix)`` of every window scores are read on: eval and train, and the
        held-out month of a nested segment; never a segment's test quarter."""
        splits = ((EVAL, ""), (TRAIN, "train_"))
        return (*splits, (TEST, HELD_OUT_PREFIX)) if self.held_out else splits

    def market(self, config: AgentConfig, device: str = "cpu") -> MarketTensors:
        """The agent's market tensors for ``config`` (tokens, cache dtype)."""
        return segment_market(self.frame, self.context, load_encoder(self.encoder_path, device=device), config, device)


def segment_frame(market_frame: pd.DataFrame, segment: Segment, pipeline: PipelineConfig) -> pd.DataFrame:
    """Features of one segment from the whole market frame, sliced as the ``raw_market_data``
    asset slices it."""
    raw = segment_slice(market_frame, segment, pipeline.windows.warmup_hours)
    frame, _, _ = build_segment_frame(raw, segment, pipeline.features)
    return frame


def prepare_segment(market_frame: pd.DataFrame, segment: Segment, pipeline: PipelineConfig,
                    cache_dir: Path, held_out: bool = False) -> PreparedSegment:
    """Features, regime model and encoder of one segment (the encoder cached in ``cache_dir``).

    :param held_out: ``segment`` is a :func:`~cryptorl_core.segments.nested_segment`, whose test
        rows may be scored (:attr:`PreparedSegment.held_out`).
    """
    frame = segment_frame(market_frame, segment, pipeline)
    regime = fit_regime_model(frame, pipeline.hmm)
    encoder_path = cache_dir / f"{pipeline.name}-{segment.key}" / "encoder.pth"
    if not encoder_path.exists():
        result = train_mae(frame, pipeline.mae, None, device="cpu", progress=False)
        save_encoder(encoder_path, result.model, pipeline.mae, result.feature_columns,
                     result.norm_fingerprint)
    return PreparedSegment(segment.key, frame, regime, regime.context(frame), encoder_path, held_out)


def experiment_segment(segments: list[Segment], key: str, nested: WindowConfig | None) -> Segment:
    """The segment ``key`` of the walk-forward layout, or, with ``nested`` window lengths, that
    segment moved one window back (:func:`~cryptorl_core.segments.nested_segment`)."""
    segment = segment_by_key(segments, key)
    return segment if nested is None else nested_segment(segment, nested)


def nested_cache(cache: Path, windows: WindowConfig) -> Path:
    """Where a nested run's encoders and run folders are kept (so ``--rescore`` of a nested
    label needs ``--nested`` too): apart from the walk-forward segments' own, and per eval
    length, since the nested train window ends earlier the longer the eval window."""
    return cache / f"nested-eval{windows.eval_hours}h"


def eval_scores(run_metrics: dict[str, Any]) -> dict[str, float]:
    """The :data:`SCORE_KEYS` of one strategy's metrics."""
    return {k: float(run_metrics[k]) for k in SCORE_KEYS}


def quarters_collapsed(positions: pd.Series, rule: CollapseRule) -> tuple[int, int]:
    """``(failed, n)``: how many of the run's ``n`` whole consecutive quarter-length chunks
    (``rule.window_bars``) the collapse rule flags. On the train window (four quarters) it is the
    in-sample reading of the backtest's per-quarter verdict."""
    p, w = positions.to_numpy(), rule.window_bars
    n = len(p) // w
    return sum(rule.verdict(collapse_stats(p[i * w:(i + 1) * w]))[0] for i in range(n)), n


def strategy_scores(run: BacktestRun, rule: CollapseRule, true_regime: pd.Series | None = None) -> dict[str, float]:
    """:func:`eval_scores` of a run, plus its modal position share, its collapse verdict over
    the whole run, and its collapsed quarters (:func:`quarters_collapsed`), all on its held
    positions, or on its own targets under a sizing overlay (the backtest verdict's reading).
    With the synthetic market's ``true_regime`` column, also :func:`regime_log_growth`."""
    own = run.own_targets
    decisions = run.positions if own is None else pd.Series(own)
    stats = collapse_stats(decisions)
    scores = {**eval_scores(run.metrics()), "modal_share": stats.modal_share,
              "collapsed": float(rule.verdict(stats)[0]), "quarters_collapsed": quarters_collapsed(decisions, rule)[0]}
    return scores if true_regime is None else {**scores, **regime_log_growth(run, true_regime)}


def regime_log_growth(run: BacktestRun, true_regime: pd.Series) -> dict[str, float]:
    """Per true regime (:data:`~cryptorl_core.schema.REGIME_NAMES`), the run's log NAV growth
    over that regime's bars in percentage points, ``100 · Σ log(nav_t / nav_{t-1})``, keyed
    ``<regime>_log_growth`` (0 for a regime absent from the run). The terms add up to the run's
    whole log growth, so two strategies' differences say in which regime one gains on the other.

    :param run: a backtest run; bar t's NAV change is earned by the position held over bar t.
    :param true_regime: the synthetic market's regime code per bar, indexed like the run's steps.
    """
    growth = 100.0 * log_returns(run.nav)[1:]  # bar 0 has no previous NAV
    regime = true_regime.reindex(run.nav.index[1:]).to_numpy()
    return {f"{name}_log_growth": float(growth[regime == code].sum()) for code, name in enumerate(REGIME_NAMES)}


def baseline_scores(prepared: PreparedSegment, config: AgentConfig, split: str) -> dict[str, dict[str, float]]:
    """Regime rule and buy-and-hold over one split, with the agent's env and costs."""
    env, regime = config.env, prepared.frame.get(TRUE_REGIME_COL)
    rule = run_targets(regime_rule_positions(prepared.context), prepared.frame, split, name="regime_rule", env_config=env)
    hold = run_targets(buy_and_hold(prepared.frame[PRICE_CLOSE_COL]), prepared.frame, split, name="buy_and_hold",
                       env_config=env)
    return {"regime_rule": strategy_scores(rule, config.collapse, regime),
            "buy_and_hold": strategy_scores(hold, config.collapse, regime)}


def run_dir(cache: Path, label: str, key: str, seed: int) -> Path:
    """One experiment run's folder: ``<cache>/runs/<label>/<segment>-seed<seed>`` (``run`` for an
    empty label), where :func:`run_experiment` trains and :func:`rescore_checkpoints` reads."""
    return cache / "runs" / (label or "run") / f"{key}-seed{seed}"


def policy_scores(policy: PredictsActions, prepared: PreparedSegment, config: AgentConfig) -> dict[str, Any]:
    """One policy's scores and the baselines' on the eval window (no prefix), the train window
    (``train_`` prefix) and a nested segment's held-out month (``heldout_``):
    :func:`strategy_scores` per strategy (with its log growth per true regime on synthetic data),
    and the agent's mean position."""
    row: dict[str, Any] = {}
    for split, prefix in prepared.scored_splits:
        agent = run_backtest(policy, prepared.frame, split, env_config=config.env, w_cost=config.eval_w_cost)
        # Saturation shows as one position held most of the window (the backtest's collapse rule).
        scores = {"agent": strategy_scores(agent, config.collapse, prepared.frame.get(TRUE_REGIME_COL)),
                  **baseline_scores(prepared, config, split)}
        for name, values in scores.items():
            row.update({f"{prefix}{name}_{k}": v for k, v in values.items()})
        # Under-sizing shows as a small mean |position| beside a Sharpe close to the rule's.
        row[f"{prefix}agent_mean_position"] = float(agent.positions.mean())
        row[f"{prefix}agent_mean_abs_position"] = float(abs(agent.positions).mean())
        if TRUE_REGIME_COL in prepared.frame:
            row.update(regime_exposure_scores(agent, prepared, prefix))
    return row


def regime_exposure(decisions: np.ndarray, true_regime: np.ndarray) -> dict[str, float]:
    """Per true regime of the synthetic market (:data:`~cryptorl_core.schema.REGIME_NAMES`):
    the mean decision (``<regime>_mean``) and the share of bars held at ``|decision| >=``
    :data:`HELD_POSITION` (``<regime>_held``); NaN for a regime absent from the window.

    Why: the regime rule goes flat in the driftless range regime; a policy that holds a position
    there has learned a drift its train window happened to show, and holds one position through
    bull-and-range stretches (the collapse rule's verdict).
    """
    out: dict[str, float] = {}
    for code, name in enumerate(REGIME_NAMES):
        d = decisions[true_regime == code]
        out[f"{name}_mean"] = float(d.mean()) if d.size else float("nan")
        out[f"{name}_held"] = float((np.abs(d) >= HELD_POSITION).mean()) if d.size else float("nan")
    return out


def regime_exposure_scores(agent: BacktestRun, prepared: PreparedSegment, prefix: str = "train_") -> dict[str, float]:
    """:func:`regime_exposure` of the agent's own targets (its decisions, under a sizing overlay)
    and of the regime rule's targets over the agent's run, keyed ``<prefix>agent_<regime>_*`` and
    ``<prefix>regime_rule_<regime>_*`` (``train_`` on the train window, none on the eval window,
    ``heldout_`` on a nested held-out month): whether a sizing learned in sample holds out of
    sample. Synthetic data only: it reads the true regime, which no policy or rule ever sees."""
    rows = agent.steps["action"].dropna().index
    regime = prepared.frame.loc[rows, TRUE_REGIME_COL].to_numpy()
    own = agent.own_targets if agent.own_targets is not None else agent.actions
    rule = regime_rule_positions(prepared.context)[prepared.frame.index.get_indexer(rows)]
    row = {f"{prefix}agent_{k}": v for k, v in regime_exposure(np.asarray(own), regime).items()}
    row.update({f"{prefix}regime_rule_{k}": v for k, v in regime_exposure(rule, regime).items()})
    return row


def rescore_checkpoints(prepared: PreparedSegment, config: AgentConfig, folder: Path, checkpoint: str,
                        seeds: Sequence[int]) -> dict[str, Any]:
    """Score saved checkpoints of one experiment run again, without training: one seed's, or the
    mean action of several (:class:`~cryptorl_core.backtest.ensemble.MeanActionPolicy`).

    :param prepared: the run's segment.
    :param config: the run's agent configuration (env, costs, collapse rule).
    :param folder: the run's folder (:func:`run_dir`).
    :param checkpoint: ``best_model`` (each seed's best eval checkpoint) or ``final_model`` (its
        last, never selected on eval: an unbiased eval score), :data:`CHECKPOINT_FILES`;
        :data:`SEEDS_KEPT`, each seed's own kept model (its last when live, else its best); or
        :data:`KEPT`, the run's published policy (``seeds`` unused).
    :param seeds: the seeds under ``folder/seeds`` whose actions are averaged.
    :return: one row with :func:`policy_scores`' keys.
    """
    if checkpoint == KEPT:
        paths = [folder / policy_filename(config.algo)]
    elif checkpoint == SEEDS_KEPT:
        paths = [seed_run_dir(folder, s) / policy_filename(config.algo) for s in seeds]
    else:
        paths = [seed_run_dir(folder, s) / CHECKPOINT_FILES[checkpoint] for s in seeds]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"no saved checkpoint to re-score: {', '.join(missing)}")
    market = prepared.market(config)
    policy = MeanActionPolicy([load_policy(p, market, algo=config.algo, device="cpu") for p in paths])
    return {"segment": prepared.key, "checkpoint": checkpoint, "seeds": list(seeds),
            **policy_scores(policy, prepared, config)}


def rescore_or_skip(prepared: PreparedSegment, config: AgentConfig, folder: Path, checkpoint: str,
                    seeds: Sequence[int]) -> dict[str, Any] | None:
    """:func:`rescore_checkpoints`, or None, with a warning naming the missing files, when a seed
    saved no such checkpoint: a seed that never kept a live policy has no ``best_model``, and
    one such segment should not end a re-scoring of many."""
    try:
        return rescore_checkpoints(prepared, config, folder, checkpoint, seeds)
    except FileNotFoundError as err:
        logger.warning("skipping segment %s: %s", prepared.key, err)
        return None


def run_experiment(prepared: PreparedSegment, config: AgentConfig, seed: int, folder: Path) -> dict[str, Any]:
    """Train one agent; score its kept policy on the eval and train windows, and the kept
    seed's last (never selected) model and best eval checkpoint on the eval window.

    :param folder: the run's folder (:func:`run_dir`); each seed's run is under ``folder/seeds``.
    :return: one flat row: segment, seed, the agent's and the baselines' eval and train scores
        (``train_`` prefix), the last model's and the best checkpoint's eval scores (``final_``,
        ``best_``), the training summary (best step, whether the last model was kept and was
        live, collapsed, seconds). A nested segment adds the same on its held-out month.
    """
    t0 = time.perf_counter()
    market = prepared.market(config)
    result = train_policy(prepared.frame, market, config, out_dir=folder, device="cpu", seed=seed)
    row: dict[str, Any] = {"segment": prepared.key, "seed": seed, **policy_scores(result.model, prepared, config)}
    # The kept seed's last model, never selected on eval (an unbiased eval score), and its best
    # eval checkpoint (the kept model unless keep_last_live), on every window but train.
    best_file = seed_run_dir(folder, result.seed) / BEST_MODEL_FILE
    for name, path in (("final", result.final_model_path), ("best", best_file)):
        if path.is_file():
            row.update(model_scores(load_policy(path, market, algo=config.algo, device="cpu"), name, prepared, config))
    row.update(best_step=result.best_step, kept_last=result.kept_last,
               final_live=result.extra["last_model"]["live"],
               collapsed=result.collapsed, eval_reward=result.eval_stats.reward,
               seconds=round(time.perf_counter() - t0, 1))
    return row


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``key=value`` pairs (values as Python literals, else strings); ``env.key=value`` sets
    a field of the env config."""
    out: dict[str, Any] = {}
    for item in items:
        key, _, text = item.partition("=")
        try:
            out[key.strip()] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            out[key.strip()] = text
    return out


def model_scores(policy: PredictsActions, name: str, prepared: PreparedSegment, config: AgentConfig) -> dict[str, float]:
    """:func:`strategy_scores` of one more of a run's models, keyed ``<prefix><name>_``, on every
    scored window but train (the eval window, and a nested segment's held-out month)."""
    row: dict[str, float] = {}
    for split, prefix in prepared.scored_splits:
        if split != TRAIN:
            run = run_backtest(policy, prepared.frame, split, env_config=config.env, w_cost=config.eval_w_cost)
            row.update({f"{prefix}{name}_{k}": v for k, v in strategy_scores(run, config.collapse).items()})
    return row


def apply_overrides(config: AgentConfig, overrides: dict[str, Any]) -> AgentConfig:
    """``config`` with top-level and ``env.``-prefixed overrides applied."""
    env = {k.removeprefix("env."): v for k, v in overrides.items() if k.startswith("env.")}
    top = {k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items() if not k.startswith("env.")}
    if env:
        top["env"] = config.env.with_overrides(**env)
    return config.replace(**top)


def summarize(rows: list[dict[str, Any]]) -> dict[str, float | None]:
    """Medians over segments and seeds, and the share of runs at or above the regime rule; for
    nested runs, the same on the held-out month (:func:`summarize_held_out`)."""
    frame = pd.DataFrame(rows)
    return {**_summary(frame), **summarize_held_out(frame)}


def summarize_held_out(frame: pd.DataFrame) -> dict[str, float]:
    """The kept policy's and the last model's figures on nested runs' held-out months (empty
    for rows without them): what selection on the nested eval window bought out of sample."""
    p = HELD_OUT_PREFIX
    if f"{p}agent_sharpe" not in frame:
        return {}
    hold = frame[f"{p}buy_and_hold_sharpe"]
    out = {f"{p}median_rule_sharpe": float(frame[f"{p}regime_rule_sharpe"].median()),
           f"{p}share_rule_ge_hold": float((frame[f"{p}regime_rule_sharpe"] >= hold).mean())}
    # The kept policy, and the kept seed's last model and best eval checkpoint where scored.
    for name in ("agent", "final", "best"):
        if f"{p}{name}_sharpe" not in frame:
            continue
        tag = "" if name == "agent" else f"{name}_"
        out[f"{p}median_{name}_sharpe"] = float(frame[f"{p}{name}_sharpe"].median())
        out[f"{p}share_{name}_ge_hold"] = float((frame[f"{p}{name}_sharpe"] >= hold).mean())
        out[f"{p}median_{tag}alpha_pp"] = float((frame[f"{p}{name}_total_return_pct"]
                                                 - frame[f"{p}buy_and_hold_total_return_pct"]).median())
        if f"{p}{name}_collapsed" in frame:
            out[f"{p}n_{tag}collapsed"] = int(frame[f"{p}{name}_collapsed"].sum())
    return out


def _summary(frame: pd.DataFrame) -> dict[str, float | None]:
    """:func:`summarize` on the eval and train windows."""
    return {
        "median_agent_sharpe": float(frame["agent_sharpe"].median()),
        "median_rule_sharpe": float(frame["regime_rule_sharpe"].median()),
        "median_hold_sharpe": float(frame["buy_and_hold_sharpe"].median()),
        "median_train_agent_sharpe": float(frame["train_agent_sharpe"].median()),
        "median_train_rule_sharpe": float(frame["train_regime_rule_sharpe"].median()),
        "median_train_hold_sharpe": float(frame["train_buy_and_hold_sharpe"].median()),
        "share_agent_ge_hold": float((frame["agent_sharpe"] >= frame["buy_and_hold_sharpe"]).mean()),
        "share_agent_ge_0.8_rule": float((frame["agent_sharpe"] >= 0.8 * frame["regime_rule_sharpe"]).mean()),
        # Training's verdict (eval window and train probe); re-scored rows have only the eval one.
        "n_collapsed": int(frame["collapsed"].sum()) if "collapsed" in frame else None,
        "n_eval_collapsed": int(frame["agent_collapsed"].sum()),
        "train_agent_quarters_collapsed": int(frame["train_agent_quarters_collapsed"].sum()),
        "train_rule_quarters_collapsed": int(frame["train_regime_rule_quarters_collapsed"].sum()),
        "median_trades": float(frame["agent_n_trades"].median()),
    }


def experiment_market(data_dir: str, cache: Path) -> tuple[MarketData, Path]:
    """The market of an experiment and the folder its encoders are cached in: the synthetic
    market under ``cache``, or the files in ``data_dir`` under ``cache/data-<folder name>`` (an
    encoder trained on one market must never be reused on another's segment of the same key)."""
    if not data_dir:
        return generate_synthetic_market(), cache
    return load_market_folder(data_dir), cache / f"data-{Path(data_dir).resolve().name}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--segments", default="2025-Q4", help="comma-separated segment keys")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds")
    parser.add_argument("--set", action="append", default=[], help="agent override key=value (repeatable)")
    parser.add_argument("--cache", default="storage/experiments", help="encoder cache and outputs")
    parser.add_argument("--out", default=None, help="append result rows (JSON lines) to this file")
    parser.add_argument("--label", default="", help="name of the experiment in the output rows")
    parser.add_argument("--data-dir", default="", help="folder of market files (default: the synthetic market)")
    parser.add_argument("--rescore", default="", metavar="LABEL",
                        help="train nothing: score the saved checkpoints of experiment LABEL again")
    parser.add_argument("--checkpoint", default="best_model", choices=(*CHECKPOINT_FILES, SEEDS_KEPT, KEPT),
                        help="with --rescore: each seed's best eval checkpoint, its last model or its own "
                             "kept model (seeds_kept), or the run's published policy (kept)")
    parser.add_argument("--average-seeds", default="0,1",
                        help="with --rescore: the seeds whose actions are averaged (one seed: that seed alone)")
    parser.add_argument("--nested", action="store_true",
                        help="train and select one window back; score the segment's eval month as held out")
    parser.add_argument("--eval-hours", type=int, default=None,
                        help="with --nested: the nested eval window's length (default: the profile's)")
    args = parser.parse_args(argv)
    if args.eval_hours is not None and not args.nested:
        parser.error("--eval-hours needs --nested: the walk-forward eval month is the pipeline's own")
    logging.basicConfig(level=logging.WARNING)

    pipeline = PipelineConfig.profile(args.profile)
    config = apply_overrides(pipeline.agent, parse_overrides(args.set))
    market, cache = experiment_market(args.data_dir, Path(args.cache))
    all_segments = walk_forward_segments(market.start, market.end, pipeline.windows)
    nested = pipeline.windows.replace(eval_hours=args.eval_hours or pipeline.windows.eval_hours) if args.nested else None
    if nested is not None:
        cache = nested_cache(cache, nested)
    averaged = [int(s) for s in args.average_seeds.split(",")]
    rows: list[dict[str, Any]] = []
    skipped: list[str] = []
    for key in args.segments.split(","):
        segment = experiment_segment(all_segments, key, nested)
        prepared = prepare_segment(market.frame, segment, pipeline, cache, held_out=nested is not None)
        for seed in (int(s) for s in args.seeds.split(",")):
            if args.rescore:
                scores = rescore_or_skip(prepared, config, run_dir(cache, args.rescore, key, seed),
                                         args.checkpoint, averaged)
                if scores is None:
                    skipped.append(key)
                    continue
                row = {"label": args.label, "seed": seed, **scores}
            else:
                row = {"label": args.label, **run_experiment(prepared, config, seed, run_dir(cache, args.label, key, seed))}
            if nested is not None:
                row["nested_eval_hours"] = nested.eval_hours
            rows.append(row)
            print(json.dumps(row), flush=True)
            if args.out:
                with open(args.out, "a") as fh:
                    fh.write(json.dumps(row) + "\n")
    summary = {"label": args.label, "overrides": args.set, **(summarize(rows) if rows else {})}
    print(json.dumps({**summary, "skipped": skipped} if skipped else summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
