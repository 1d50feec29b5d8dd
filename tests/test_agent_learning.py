"""Can the agent learn what its inputs carry? A short seeded run on the synthetic market, whose
regimes carry drift by construction, must beat flat on the eval window (out of sample)."""

from __future__ import annotations

import pandas as pd
import pytest
from helpers.agent import hmm_context, in_memory_encoder

from cryptorl_core.agent import AgentConfig, MarketTensors, load_policy, train_policy
from cryptorl_core.backtest.runner import run_backtest
from cryptorl_core.encoder import MAEConfig
from cryptorl_core.policy_stats import CollapseRule
from cryptorl_core.schema import EVAL


@pytest.mark.slow
def test_short_seeded_run_beats_flat_on_the_eval_window(tmp_path, segment_frame: pd.DataFrame):
    """The quick profile's agent, trained for a fraction of its steps, earns a positive return on
    the eval window of the latest synthetic segment (bull, bear and range spells). The model
    scored is the last one, never selected on eval, so the figure is honestly out of sample."""
    encoder = in_memory_encoder(segment_frame, MAEConfig.quick())
    # Learning, not the collapse rule, is under test here: every evaluation may be kept.
    cfg = AgentConfig.quick().replace(total_timesteps=24_000, eval_freq=8_000, collapse=CollapseRule.off(), n_seeds=1)
    market = MarketTensors.build(segment_frame, hmm_context(segment_frame), encoder, tokens=cfg.tokens, device="cpu")
    res = train_policy(segment_frame, market, cfg, tmp_path, device="cpu", seed=0)
    last = load_policy(res.final_model_path, market, algo=cfg.algo, device="cpu")
    run = run_backtest(last, segment_frame, EVAL, env_config=cfg.env, w_cost=cfg.eval_w_cost)
    metrics = run.metrics()
    print(f"eval window, last model: return {metrics['total_return_pct']:.2f} %, Sharpe {metrics['sharpe']:.2f}, "
          f"{metrics['n_trades']:.0f} trades")
    assert metrics["total_return_pct"] > 0.0 and metrics["n_trades"] >= 1
