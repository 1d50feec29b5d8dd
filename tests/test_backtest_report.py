"""Backtest runner, report, execution-lag honesty, collapse audit and the compare CLI.

The random-walk segment frames, tiny encoder and tiny TQC policies come from
``helpers/backtest.py``, shared with the other backtest test modules.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers.backtest import (
    N_TEST,
    TOKENS,
    alternating,
    hmm_context_frame,
    random_walk_frame,
    save_tiny_encoder,
    train_tiny_tqc,
)

from cryptorl_core.agent import load_policy
from cryptorl_core.backtest.audit import GROUPS, audit_policy
from cryptorl_core.backtest.baselines import baseline_positions
from cryptorl_core.backtest.config import BacktestConfig
from cryptorl_core.backtest.exposure import EXPOSURE_MATCHED
from cryptorl_core.backtest.report import AGENT, PLOT_FILES, build_report, read_report_summary
from cryptorl_core.backtest.runner import run_backtest, run_baselines, run_targets
from cryptorl_core.compare import compare_policies, main
from cryptorl_core.env import EnvConfig, ReferenceCryptoEnv
from cryptorl_core.schema import (
    HMM_COLUMNS,
    PRICE_CLOSE_COL,
    PRICE_OPEN_COL,
    SPLIT_COL,
    TRUE_REGIME_COL,
)

PNG_MAGIC = b"\x89PNG"


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return random_walk_frame()


@pytest.fixture(scope="module")
def agent_files(frame: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Encoder, HMM context and two tiny TQC policies trained on ``frame``, on disk."""
    from cryptorl_core.agent.market_tensors import MarketTensors

    root = tmp_path_factory.mktemp("agents")
    encoder = save_tiny_encoder(frame, root / "encoder.pth")
    hmm = hmm_context_frame(frame)
    hmm.to_parquet(root / "hmm.parquet")
    from cryptorl_core.encoder.artifact import load_encoder

    market = MarketTensors.build(frame, hmm, load_encoder(encoder), tokens=TOKENS, device="cpu")
    return {
        "encoder": encoder,
        "hmm": root / "hmm.parquet",
        "a": train_tiny_tqc(frame, market, root / "tqc_a.zip", seed=0),
        "b": train_tiny_tqc(frame, market, root / "tqc_b.zip", seed=1),
        "context_only": train_tiny_tqc(frame, market, root / "tqc_context.zip", seed=0, embedding=False),
    }


def constant(value: float):
    return lambda obs: np.array([[value]], dtype=np.float32)


# ---------------------------------------------------------------------------------------
# Runner: bookkeeping equals the environment's definitions
# ---------------------------------------------------------------------------------------


def test_runner_matches_scalar_reference_env(frame: pd.DataFrame) -> None:
    """Per-bar NAV, position and fee equal the scalar reference env's, step by step."""
    rng = np.random.default_rng(3)
    actions = rng.uniform(-1.2, 1.2, size=len(frame))
    policy = lambda obs: actions[int(obs["market"][0, 0])]  # noqa: E731
    cfg = EnvConfig()
    run = run_backtest(policy, frame, "test", env_config=cfg)
    steps = run.steps
    rows = np.flatnonzero(frame[SPLIT_COL].to_numpy() == "test")
    assert steps.index[0] == frame.index[rows[0]] and steps.index[-1] == frame.index[rows[-1]]
    assert len(steps) == N_TEST and steps["nav"].iloc[0] == 1.0 and steps["position"].iloc[0] == 0.0
    assert np.isnan(steps["action"].iloc[-1])  # the last row has no next bar to trade on

    ref = ReferenceCryptoEnv(frame[PRICE_OPEN_COL], frame[PRICE_CLOSE_COL], rows, cfg, max_steps=10**6)
    ref.reset(int(rows[0]), run.w_cost)
    for k in range(1, len(steps)):
        fees_before = ref.fees_paid
        ref.step(actions[rows[0] + k - 1])
        assert steps["nav"].iloc[k] == pytest.approx(ref.nav, rel=1e-12)
        assert steps["position"].iloc[k] == pytest.approx(ref.position, abs=1e-12)
        assert steps["fees"].iloc[k] == pytest.approx(ref.fees_paid - fees_before, rel=1e-9, abs=1e-15)
    assert not run.terminated


def test_action_gain_scales_the_agent_actions_but_not_a_rules_targets(frame: pd.DataFrame) -> None:
    """With ``action_gain`` 2 an action of 0.3 holds 0.6; a rule's target of 0.3 still holds 0.3."""
    cfg = EnvConfig(action_gain=2.0)
    agent = run_backtest(constant(0.3), frame, "test", env_config=cfg)
    assert agent.steps["position"].iloc[1:].to_numpy() == pytest.approx(0.6)
    rule = run_targets(np.full(len(frame), 0.3), frame, "test", name="rule", env_config=cfg)
    assert rule.steps["position"].iloc[1:].to_numpy() == pytest.approx(0.3)
    # Saturation: a gain-scaled action past the range holds the full position, no more.
    assert run_backtest(constant(0.8), frame, "test", env_config=cfg).steps["position"].max() == pytest.approx(1.0)


def test_buy_and_hold_run_hand_computed(frame: pd.DataFrame) -> None:
    """Buy-and-hold through the env: one fill at the second bar's open, one fee, then the price."""
    cfg = EnvConfig(fee_bps=10.0, slippage_bps=2.0)
    runs = run_baselines(frame, "test", env_config=cfg)
    bh = runs["buy_and_hold"].steps
    close = bh["price_close"].to_numpy()
    cost = 12e-4
    # Decision on the first test row, filled at the next open (= that close), held to the end.
    assert bh["nav"].iloc[-1] == pytest.approx((1 - cost) * close[-1] / close[0], rel=1e-12)
    assert bh["fees"].iloc[1] == pytest.approx(cost, rel=1e-12) and bh["fees"].iloc[2:].sum() == 0
    assert list(bh["position"].iloc[:2]) == [0.0, 1.0]
    m = runs["buy_and_hold"].metrics()
    assert m["n_trades"] == 1 and m["total_return_pct"] == pytest.approx(100 * ((1 - cost) * close[-1] / close[0] - 1))
    flat = runs["flat"].metrics()
    assert flat["total_return_pct"] == 0 and flat["n_trades"] == 0 and flat["fees_paid"] == 0


def test_baselines_get_warmup_history_before_the_window() -> None:
    """On a steady uptrend the momentum and SMA rules are long from the window's first decision."""
    frame = random_walk_frame(seed=5, drift=0.002, vol=0.001)
    cfg = BacktestConfig(sma_fast=24, sma_slow=168, momentum_lookback_h=168)
    runs = run_baselines(frame, "test", config=cfg)
    first_row = int(runs["momentum"].steps["row"].iloc[0])
    expected = baseline_positions(frame[PRICE_CLOSE_COL].to_numpy(), cfg)
    for name in ("momentum", "sma_crossover"):
        assert runs[name].steps["target"].iloc[0] == expected[name][first_row] == 1.0
        assert runs[name].steps["position"].iloc[1] == 1.0  # filled on the window's second bar


# ---------------------------------------------------------------------------------------
# Execution lag: a policy that peeks at the bar it will be paid on cannot profit
# ---------------------------------------------------------------------------------------


def _own_bar_return_policy(frame: pd.DataFrame):
    """Long after an up bar, short after a down bar: uses bar t's own close-to-close return.

    Honest (lag 1): known at t's close, filled at t+1's open, paid t+1's return, which is
    independent of t's on a random walk. Cheat mode (lag 0): paid bar t's return itself.
    """
    close = frame[PRICE_CLOSE_COL].to_numpy()
    signal = np.sign(np.concatenate([[0.0], close[1:] / close[:-1] - 1.0]))
    return lambda obs: signal[int(obs["market"][0, 0])]


def _t_stat(run) -> float:
    r = run.nav.pct_change().dropna().to_numpy()
    return float(r.mean() / r.std(ddof=1) * np.sqrt(len(r)))


def test_peeking_policy_cannot_profit_with_execution_lag() -> None:
    frame = random_walk_frame(seed=11, n_test=2000)
    cheater = _own_bar_return_policy(frame)
    free = EnvConfig(fee_bps=0.0, slippage_bps=0.0)
    honest = run_backtest(cheater, frame, env_config=free)
    honest_costly = run_backtest(cheater, frame, env_config=EnvConfig())
    peeking = run_backtest(cheater, frame, env_config=free.with_overrides(execution_lag=0))

    # Lag 1: no edge (the mean hourly return is within noise of 0), and a loss after costs.
    assert abs(_t_stat(honest)) < 3.0
    assert honest_costly.nav.iloc[-1] < 1.0
    # Lag 0 (the env's documented cheat): it collects |r| every bar, a huge profit.
    assert _t_stat(peeking) > 30.0 and peeking.nav.iloc[-1] > 100.0
    # Positive control: a policy that really reads bar t+1 profits under lag 1 too, so the
    # runner wires rows and fills correctly (the lag, not a bug, kills the cheater's edge).
    close = frame[PRICE_CLOSE_COL].to_numpy()
    future = np.sign(np.concatenate([close[1:] / close[:-1] - 1.0, [0.0]]))
    oracle = run_backtest(lambda obs: future[int(obs["market"][0, 0])], frame, env_config=free)
    assert oracle.nav.iloc[-1] > 100.0


# ---------------------------------------------------------------------------------------
# Report and collapse audit
# ---------------------------------------------------------------------------------------


def test_report_table_files_and_plots(frame: pd.DataFrame, tmp_path: Path) -> None:
    cfg = BacktestConfig.quick()
    report = build_report(alternating, frame, key="T-Q1", config=cfg)
    table = report.table()
    # No HMM context given and no true_regime column: no regime rules and no oracle.
    assert list(table.columns) == [AGENT, "buy_and_hold", "flat", "sma_crossover", "momentum", "vol_target",
                                   "exposure_matched"]
    agent = report.metrics[AGENT]
    positions = report.agent.steps["position"].to_numpy()
    assert agent["n_trades"] == int((np.diff(positions) != 0).sum()) == N_TEST - 1  # every bar
    assert agent["turnover"] == pytest.approx(N_TEST - 1)
    # Fees: 12 bps of the traded notional at each fill; in NAV units they sum to fees_paid.
    assert agent["fees_paid"] == pytest.approx(cfg.initial_capital * report.agent.steps["fees"].sum())
    assert agent["timing_horizon_h"] == cfg.timing_horizon_h
    assert agent["n_buys"] + agent["n_sells"] > 0 and 0 <= agent["buy_good_pct"] <= 100
    timing = report.timing_table()
    assert set(timing.index) == set(table.columns) and "buy_good_pct" in timing.columns
    assert "| Sharpe (ann.) |" in report.markdown()
    assert "| Timing alpha (return pp) |" in report.markdown()
    compact = report.compact_markdown()
    assert compact.startswith("| Strategy | Total return % | Sharpe (ann.) |")
    assert all(f"| {name} |" in compact for name in table.columns)

    paths = report.save(tmp_path / "rep")
    for name in ("metrics", "steps", "strategies", "table", *PLOT_FILES):
        assert paths[name].is_file()
    for name in PLOT_FILES:
        assert paths[name].read_bytes()[:4] == PNG_MAGIC
    saved = read_report_summary(tmp_path / "rep")
    assert saved["metrics"]["flat"]["total_return_pct"] == 0.0
    assert saved["metrics"][AGENT]["n_trades"] == agent["n_trades"] and saved["collapsed"] is False
    json.dumps(saved, allow_nan=False)  # NaN were written as null
    strategies = pd.read_parquet(paths["strategies"])
    assert {"nav_agent", "nav_buy_and_hold", "position_momentum", "nav_vol_target",
            "nav_exposure_matched"} <= set(strategies.columns)
    assert paths["table"].read_text().count("| Strategy |") == 1


# ---------------------------------------------------------------------------------------
# New yardsticks: regime rules, oracle, exposure-matched line and timing alpha
# ---------------------------------------------------------------------------------------


def test_report_runs_the_regime_rules_and_the_oracle_through_the_same_env(frame: pd.DataFrame) -> None:
    cfg = EnvConfig(fee_bps=10.0, slippage_bps=2.0)
    hmm = hmm_context_frame(frame, seed=4)
    synthetic = frame.copy()
    synthetic[TRUE_REGIME_COL] = np.random.default_rng(1).integers(0, 4, len(frame)).astype(np.int8)
    report = build_report(alternating, synthetic, env_config=cfg, regime_context=hmm)
    assert list(report.runs) == [AGENT, "buy_and_hold", "flat", "sma_crossover", "momentum", "vol_target",
                                 "regime_rule", "regime_rule_long_only", "regime_oracle", "exposure_matched"]
    # Each line is its targets played through the same env: identical to run_targets by hand.
    p = hmm[list(HMM_COLUMNS[:4])].to_numpy()
    rule = run_targets(p[:, 0] - p[:, 2] - p[:, 3], synthetic, "test", name="rule", env_config=cfg)
    pd.testing.assert_frame_equal(report.runs["regime_rule"].steps, rule.steps)
    oracle_targets = np.array([1.0, -1.0, 0.0, -1.0])[synthetic[TRUE_REGIME_COL].to_numpy()]
    oracle = run_targets(oracle_targets, synthetic, "test", name="oracle", env_config=cfg)
    pd.testing.assert_frame_equal(report.runs["regime_oracle"].steps, oracle.steps)
    # One-bar lag: the position held over bar t is the decision (true regime) of bar t-1.
    held = report.runs["regime_oracle"].steps["position"].to_numpy()[1:]
    rows = report.runs["regime_oracle"].steps["row"].to_numpy()[:-1]
    np.testing.assert_array_equal(held, oracle_targets[rows])
    long_only = report.runs["regime_rule_long_only"].positions
    assert long_only.min() >= 0.0 and report.runs["regime_rule"].positions.min() < 0.0
    assert report.runs["regime_rule"].env_config == report.agent.env_config


def test_exposure_matched_holds_the_agent_mean_position_with_the_same_costs(frame: pd.DataFrame) -> None:
    cfg = EnvConfig(fee_bps=10.0, slippage_bps=2.0)
    report = build_report(alternating, frame, env_config=cfg)
    agent, matched = report.agent.steps, report.runs[EXPOSURE_MATCHED].steps
    mean = float(agent["position"].iloc[1:].mean())
    assert 0.4 < mean < 0.6 and mean not in (0.4, 0.5, 0.6)  # alternating 1 / 0: about half
    # Off the 0.1 grid, the mean (to the env's float32 actions), from the first fill to the end.
    assert matched.index.equals(agent.index) and matched["position"].iloc[0] == 0.0
    np.testing.assert_allclose(matched["position"].iloc[1:], mean, rtol=0, atol=1e-7)
    m = report.metrics
    assert m[EXPOSURE_MATCHED]["n_trades"] == 1
    assert matched["fees"].sum() == pytest.approx(12e-4 * mean, rel=1e-6)  # one entry: 12 bp of the mean
    assert m[AGENT]["mean_position"] == pytest.approx(mean)
    assert m[EXPOSURE_MATCHED]["mean_position"] == pytest.approx(mean, abs=1e-7)
    # Timing alpha: agent minus exposure_matched, in points of return and of Sharpe.
    assert m[AGENT]["timing_alpha_return_pct"] == pytest.approx(
        m[AGENT]["total_return_pct"] - m[EXPOSURE_MATCHED]["total_return_pct"])
    assert m[AGENT]["timing_alpha_sharpe"] == pytest.approx(m[AGENT]["sharpe"] - m[EXPOSURE_MATCHED]["sharpe"])
    assert "timing_alpha_return_pct" not in m["buy_and_hold"]


def test_timing_alpha_is_zero_for_a_constant_agent_and_large_for_a_timer(frame: pd.DataFrame) -> None:
    """An agent that is merely 30 % invested times nothing; one that knows the next bar does."""
    free = EnvConfig(fee_bps=0.0, slippage_bps=0.0)
    still = build_report(constant(0.3), frame, env_config=free).metrics[AGENT]
    assert still["mean_position"] == pytest.approx(0.3)
    assert still["timing_alpha_return_pct"] == pytest.approx(0.0, abs=1e-5)  # float32 actions
    close = frame[PRICE_CLOSE_COL].to_numpy()
    up_next = np.concatenate([close[1:] > close[:-1], [False]]).astype(float)  # long before an up bar
    timer = build_report(lambda obs: up_next[int(obs["market"][0, 0])], frame, env_config=free).metrics[AGENT]
    assert timer["timing_alpha_return_pct"] > 50.0 and timer["timing_alpha_sharpe"] > 5.0


def test_collapse_audit_fires_on_constant_policy_only(frame: pd.DataFrame) -> None:
    cfg = BacktestConfig()
    stuck = audit_policy(constant(0.3), run_backtest(constant(0.3), frame), cfg)
    assert stuck.collapsed and stuck.collapse.modal_share == 1.0 and stuck.collapse.n_trades == 0
    assert any("position +0.3" in r for r in stuck.reasons) and any("trades" in r for r in stuck.reasons)
    varied = audit_policy(alternating, run_backtest(alternating, frame), cfg)
    assert not varied.collapsed and varied.reasons == [] and varied.collapse.modal_share == pytest.approx(0.5, abs=0.01)
    assert varied.q_spread is None and varied.attribution == {}  # callables: action statistics only


def test_tqc_audit_std_q_spread_and_attribution(frame: pd.DataFrame, agent_files: dict[str, Path]) -> None:
    model = load_policy(agent_files["a"], frame=frame, hmm_context=pd.read_parquet(agent_files["hmm"]),
                        encoder=agent_files["encoder"])
    run = run_backtest(model, frame)
    before = model.predict(run.steps.iloc[:1].pipe(_obs), deterministic=True)[0]
    cfg = BacktestConfig(audit_n_states=32, audit_q_grid=11)
    audit = audit_policy(model, run, cfg)
    assert audit.n_states == 32
    assert audit.log_std is not None and audit.log_std["min"] <= audit.log_std["mean"] <= audit.log_std["max"]
    assert audit.action_std is not None and audit.action_std["min"] > 0
    q = audit.q_spread
    assert q is not None and q["mean_range"] >= q["mean_std"] >= 0 and 0 <= q["argmax_modal_share"] <= 1
    assert list(audit.attribution) == list(GROUPS)
    assert sum(audit.attribution.values()) == pytest.approx(1.0)
    assert all(v >= 0 for v in audit.attribution.values())
    assert audit.attribution["technical"] > 0 and audit.attribution["hmm"] > 0
    # The audit restored the segment's market tensors and left no gradients behind.
    after = model.predict(run.steps.iloc[:1].pipe(_obs), deterministic=True)[0]
    np.testing.assert_array_equal(before, after)
    assert all(p.grad is None for p in model.actor.parameters())
    json.dumps(audit.as_dict())


def test_audit_of_a_context_only_policy_attributes_nothing_to_the_embedding(
        frame: pd.DataFrame, agent_files: dict[str, Path]) -> None:
    model = load_policy(agent_files["context_only"], frame=frame, hmm_context=pd.read_parquet(agent_files["hmm"]),
                        encoder=agent_files["encoder"])
    audit = audit_policy(model, run_backtest(model, frame), BacktestConfig(audit_n_states=16, audit_q_grid=5))
    assert audit.attribution["technical"] == 0.0 and audit.attribution["hmm"] > 0
    assert sum(audit.attribution.values()) == pytest.approx(1.0)


def _obs(steps: pd.DataFrame) -> dict[str, np.ndarray]:
    return {"market": steps["row"].to_numpy(np.float32).reshape(-1, 1),
            "position": steps["position"].to_numpy(np.float32).reshape(-1, 1),
            "w_cost": np.full((len(steps), 1), 0.5, dtype=np.float32)}


# ---------------------------------------------------------------------------------------
# Model comparison
# ---------------------------------------------------------------------------------------


def test_compare_policies_same_window_same_costs(frame: pd.DataFrame, agent_files: dict[str, Path]) -> None:
    hmm = pd.read_parquet(agent_files["hmm"])
    cmp = compare_policies(agent_files["a"], agent_files["b"], frame, "test", hmm_context=hmm,
                           encoder=agent_files["encoder"], names=("a", "b"))
    table = cmp.table()
    assert list(table.columns) == ["a", "b"]
    a, b = cmp.runs["a"].steps, cmp.runs["b"].steps
    assert a.index.equals(b.index)  # same window
    assert cmp.runs["a"].env_config == cmp.runs["b"].env_config  # same costs and lag
    assert table.loc["bh_return_pct", "a"] == table.loc["bh_return_pct", "b"]
    # Same policy twice gives identical columns (deterministic actions).
    same = compare_policies(agent_files["a"], agent_files["a"], frame, hmm_context=hmm,
                            encoder=agent_files["encoder"])
    np.testing.assert_array_equal(same.runs["A"].nav, same.runs["B"].nav)


def test_compare_cli_on_two_saved_policies(frame: pd.DataFrame, agent_files: dict[str, Path], tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    storage = tmp_path / "storage"
    (storage / "frames" / "features").mkdir(parents=True)
    frame.to_parquet(storage / "frames" / "features" / "2099-Q1.parquet")
    (storage / "artifacts" / "mae_encoder" / "2099-Q1").mkdir(parents=True)
    (storage / "artifacts" / "mae_encoder" / "2099-Q1" / "encoder.pth").write_bytes(agent_files["encoder"].read_bytes())
    args = ["--a", str(agent_files["a"]), "--b", str(agent_files["b"]), "--segment", "2099-Q1",
            "--storage", str(storage), "--hmm", str(agent_files["hmm"])]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "tqc_a (A)" in out and "tqc_b (B)" in out and "| Sharpe (ann.) |" in out
    assert f"({N_TEST - 1} h)" in out
    # A missing segment frame is a clear error, not a traceback.
    assert main([*args[:4], "--segment", "1999-Q1", "--storage", str(storage)]) == 2
    assert "materialize `features`" in capsys.readouterr().err
