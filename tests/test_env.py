"""Tests of the batched trading environment."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest
import torch

from cryptorl_core.env import (
    BatchCryptoEnv,
    EnvConfig,
    ReferenceCryptoEnv,
    SegmentMarket,
    gather_rows,
    gather_windows,
)
from cryptorl_core.schema import PRICE_CLOSE_COL, PRICE_OPEN_COL, SPLIT_COL, WINDOW

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])

# Segment layout of the synthetic frame: train | purged | eval | purged | test.
N_ROWS = 1000
LAYOUT = (("train", 600), ("purged", 10), ("eval", 190), ("purged", 10), ("test", 190))
EVAL_FIRST, EVAL_LAST = 610, 799


def _prices(
    n: int, seed: int, vol: float = 0.01, gap_vol: float = 0.002
) -> tuple[np.ndarray, np.ndarray]:
    """I.i.d. log-normal intrabar and overnight-gap returns around a random walk."""
    rng = np.random.default_rng(seed)
    gap, intrabar = rng.normal(0.0, gap_vol, n), rng.normal(0.0, vol, n)
    log_close = np.log(100.0) + np.cumsum(gap + intrabar)
    return np.exp(log_close - intrabar), np.exp(log_close)


def _segment_frame(seed: int = 0) -> pd.DataFrame:
    open_, close = _prices(N_ROWS, seed)
    index = pd.date_range("2021-01-01", periods=N_ROWS, freq="h", tz="UTC", name="timestamp")
    splits = np.concatenate([[name] * size for name, size in LAYOUT])
    rng = np.random.default_rng(seed + 1)
    return pd.DataFrame(
        {
            "BTC_ret_1h": rng.normal(size=N_ROWS).astype(np.float32),
            SPLIT_COL: splits,
            PRICE_OPEN_COL: open_,
            PRICE_CLOSE_COL: close,
        },
        index=index,
    )


def _random_actions(rng: np.random.Generator, n: int, previous: np.ndarray | None) -> np.ndarray:
    """Uniform actions slightly beyond [-1, 1] (exercise clipping); 30% repeat the last one (no trade)."""
    actions = rng.uniform(-1.3, 1.3, size=(n, 1)).astype(np.float32)
    if previous is not None:
        keep = rng.random(n) < 0.3
        actions[keep] = previous[keep]
    return actions


# ---------------------------------------------------------------------------- construction


def test_from_segment_frame_uses_only_split_rows() -> None:
    frame = _segment_frame()
    env = BatchCryptoEnv.from_segment_frame(frame, split="eval", n_envs=256, seed=0)
    starts = env.market.start_rows
    # last row has no next bar in the split
    assert starts[0] == EVAL_FIRST and starts[-1] == EVAL_LAST - 1
    obs = env.reset()
    rows = obs["market"][:, 0]
    assert rows.min() >= EVAL_FIRST and rows.max() <= EVAL_LAST - 1
    train = BatchCryptoEnv.from_segment_frame(frame, split="train", n_envs=512, seed=0)
    assert train.reset()["market"].min() >= WINDOW - 1
    assert env.market.timestamps is not None and len(env.market.timestamps) == N_ROWS
    with pytest.raises(ValueError):
        BatchCryptoEnv.from_segment_frame(frame, split="eval", n_envs=2, mode="sequential")


# ---------------------------------------------------------------------------- reference equality


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"execution_lag": 0},
        {"long_only": True, "position_step": 0.25},
        {"bankrupt_nav": 0.985, "position_step": 0.0},
        {"action_gain": 2.5},
        {"risk_aversion": 8.0, "action_gain": 1.5},
        {"timing_bonus_scale": 0.7, "timing_bonus_horizon": 3},
        {"timing_bonus_scale": 1.0, "timing_bonus_horizon": 1},
        {"sizing": "vol_target", "action_gain": 2.0},
        {"sizing": "vol_target", "long_only": True, "timing_bonus_scale": 0.5, "timing_bonus_horizon": 4},
        {"sizing": "vol_scaled", "action_gain": 1.5, "risk_aversion": 4.0},
        {"sizing": "vol_scaled", "action_gain": 1.5, "risk_aversion": 4.0, "hold_cost_bps": 50.0},
    ],
    ids=["lag1", "lag0", "long_only", "bankrupt_continuous", "action_gain", "risk_aversion", "timing_bonus",
         "timing_bonus_same_step", "vol_target", "vol_target_long_only_timing_bonus", "vol_scaled", "hold_cost"],
)
def test_batched_env_matches_scalar_reference(overrides: dict, device: str) -> None:
    """Rewards, components, NAV, positions and episode ends agree step by step, across auto-resets."""
    open_, close = _prices(400, seed=3, vol=0.02)
    valid = np.arange(40, 160)  # short split: random starts near its end are truncated by it
    cfg = EnvConfig(
        episode_length=15,
        churn_coef=0.3,
        smooth_coef=0.2,
        curriculum_lambda=0.7,
        step_info=True,  # also check the per-step info copy of the reward components
        **overrides,
    )
    n_envs = 6
    size = _vol_target_column(close) if cfg.sizing != "agent" else None
    env = BatchCryptoEnv.from_arrays(
        open_, close, valid, cfg, n_envs=n_envs, dtype=torch.float64, device=device, seed=5, size=size
    )
    refs = [ReferenceCryptoEnv(open_, close, valid, cfg, size=size) for _ in range(n_envs)]
    obs = env.reset()
    for i, ref in enumerate(refs):
        ref.reset(int(obs["market"][i, 0]), env.w_cost[i].item())

    rng = np.random.default_rng(11)
    actions = None
    n_ends = {"terminated": 0, "truncated": 0}
    n_bonuses = 0
    for _ in range(120):
        actions = _random_actions(rng, n_envs, actions)
        obs, rewards, dones, infos = env.step(actions)
        env_reward = env.reward.cpu().numpy()
        env_perf, env_cost = env.reward_perf.cpu().numpy(), env.reward_cost.cpu().numpy()
        env_churn, env_smooth = env.reward_churn.cpu().numpy(), env.reward_smooth.cpu().numpy()
        env_timing = env.reward_timing.cpu().numpy()
        n_bonuses += int(np.count_nonzero(env_timing))
        for i, ref in enumerate(refs):
            ref_obs, ref_reward, terminated, truncated, ref_info = ref.step(float(actions[i, 0]))
            assert env_reward[i] == pytest.approx(ref_reward, rel=1e-10, abs=1e-12)
            # float32 copy for SB3
            assert rewards[i] == pytest.approx(ref_reward, rel=1e-5, abs=1e-5)
            assert env_perf[i] == pytest.approx(ref_info["reward_perf"], rel=1e-10, abs=1e-12)
            assert env_cost[i] == pytest.approx(ref_info["reward_cost"], rel=1e-10, abs=1e-12)
            assert env_churn[i] == pytest.approx(ref_info["reward_churn"], rel=1e-10, abs=1e-12)
            assert env_smooth[i] == pytest.approx(ref_info["reward_smooth"], rel=1e-10, abs=1e-12)
            assert env_timing[i] == ref_info["reward_timing"]
            for key in ("reward_perf", "reward_cost"):
                assert infos[i][key] == pytest.approx(ref_info[key], rel=1e-10, abs=1e-12)
            assert bool(dones[i]) == (terminated or truncated)
            if dones[i]:
                n_ends["terminated" if terminated else "truncated"] += 1
                info = infos[i]
                assert info["TimeLimit.truncated"] == truncated
                term_obs = info["terminal_observation"]
                assert term_obs["market"][0] == ref_obs["market"]
                assert term_obs["position"][0] == pytest.approx(ref_obs["position"], abs=1e-6)
                assert info["nav"] == pytest.approx(ref.nav, rel=1e-12)
                assert info["fees_paid"] == pytest.approx(ref.fees_paid, rel=1e-10, abs=1e-15)
                assert info["turnover"] == pytest.approx(ref.turnover, rel=1e-12)
                assert info["n_trades"] == ref.n_trades
                assert info["episode"]["r"] == pytest.approx(
                    ref.episode_reward, rel=1e-10, abs=1e-12
                )
                assert info["episode"]["l"] == ref.steps
                ref.reset(int(obs["market"][i, 0]), env.w_cost[i].item())
            else:
                assert obs["market"][i, 0] == ref_obs["market"]
                assert env.nav[i].item() == pytest.approx(ref.nav, rel=1e-12)
                assert env.position[i].item() == pytest.approx(ref.position, abs=1e-12)
            assert obs["position"][i, 0] == pytest.approx(ref.position, abs=1e-6)
    assert n_ends["truncated"] > 0
    if overrides.get("bankrupt_nav"):
        assert n_ends["terminated"] > 0
    assert (n_bonuses > 0) == bool(overrides.get("timing_bonus_scale"))


def _vol_target_column(close: np.ndarray, window: int = 20) -> np.ndarray:
    """The vol_target rule's size column over ``close`` (target: the median trailing volatility)."""
    from cryptorl_core.vol_target import trailing_volatility, vol_target

    vol = trailing_volatility(close, window)
    return vol_target(close, window, float(np.nanmedian(vol)))


# ---------------------------------------------------------------------------- timing bonus, sizing


def _bonus_run(config: EnvConfig, frame: pd.DataFrame, actions: np.ndarray) -> tuple[list, np.ndarray, np.ndarray]:
    """Observations, rewards and paid bonuses of one sequential pass over the train split."""
    env = BatchCryptoEnv.from_segment_frame(frame, "train", config, mode="sequential", dtype=torch.float64, seed=0)
    observations = [env.reset()]
    rewards, paid = [], []
    for a in actions:
        obs, reward, _, _ = env.step(np.array([[a]], dtype=np.float32))
        observations.append(obs)
        rewards.append(float(env.reward[0]))
        paid.append(float(env.reward_timing[0]))
    return observations, np.array(rewards), np.array(paid)


def _held_position_utility(position: float, risk_aversion: float, drift: float, vol: float,
                           hold_cost_bps: float = 0.0) -> tuple[float, float]:
    """Mean performance reward of holding ``position`` through bars whose returns alternate
    ``drift + vol`` and ``drift - vol`` (mean ``drift``, variance ``vol ** 2``), with no costs;
    and the NAV at the end."""
    n = 200
    returns = drift + vol * np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    close = 100.0 * np.cumprod(1.0 + returns)
    open_ = np.concatenate([[100.0], close[:-1]])  # no overnight gap: a bar earns its return
    cfg = EnvConfig(fee_bps=0.0, slippage_bps=0.0, position_step=0.0, risk_aversion=risk_aversion,
                    hold_cost_bps=hold_cost_bps)
    env = ReferenceCryptoEnv(open_, close, range(n), cfg, max_steps=10**6)
    env.reset(WINDOW - 1, w_cost=0.0)
    env.step(position)  # enter; every later step holds the position over one bar
    rewards = [env.step(position)[1] for _ in range(100)]
    return float(np.mean(rewards)), env.nav


@pytest.mark.parametrize(("risk_aversion", "best"), [(1.0, 1.0), (20.0, 0.5)])
def test_risk_aversion_moves_the_best_position_inside_the_range(risk_aversion: float, best: float) -> None:
    """Log growth (gamma 1) rewards the full position whenever Kelly's mu / sigma^2 exceeds 1;
    with gamma the best held position is mu / (gamma * (sigma^2 + mu^2)), here 0.495."""
    drift, vol = 1e-3, 1e-2  # Kelly fraction 10
    grid = np.round(np.arange(0.0, 1.01, 0.1), 1)
    utility = [_held_position_utility(p, risk_aversion, drift, vol)[0] for p in grid]
    assert grid[int(np.argmax(utility))] == best


@pytest.mark.parametrize(("drift", "vol", "hold_cost_bps", "best"),
                         [(1e-4, 3e-3, 0.0, 1.0), (1e-4, 3e-3, 2.0, 0.2), (9e-4, 5.5e-3, 2.0, 1.0)])
def test_hold_cost_shrinks_a_calm_regimes_small_drift_and_not_a_trend(drift, vol, hold_cost_bps, best) -> None:
    """At gamma 4 a drift of 1 bp a bar at volatility 0.003 is worth the full position
    (mu / (gamma sigma^2) = 2.8); a hold cost of 2 bp makes it mu / (2 hold + gamma sigma^2) = 0.23,
    while a 9 bp trend at 0.0055 stays at the full position (1.7)."""
    grid = np.round(np.arange(0.0, 1.01, 0.1), 1)
    utility = [_held_position_utility(p, 4.0, drift, vol, hold_cost_bps)[0] for p in grid]
    assert grid[int(np.argmax(utility))] == best


def test_hold_cost_is_in_the_reward_only_never_in_the_nav() -> None:
    plain = _held_position_utility(0.6, 4.0, 1e-4, 3e-3)
    held = _held_position_utility(0.6, 4.0, 1e-4, 3e-3, hold_cost_bps=5.0)
    assert held[1] == plain[1]  # the same NAV
    assert plain[0] - held[0] == pytest.approx(100.0 * 5e-4 * 0.36)  # reward_scale * hold * position^2
    with pytest.raises(ValueError, match="hold_cost_bps"):
        EnvConfig(hold_cost_bps=-1.0)


def test_risk_aversion_below_one_is_rejected() -> None:
    with pytest.raises(ValueError, match="risk_aversion"):
        EnvConfig(risk_aversion=0.5)


def test_timing_bonus_is_paid_at_the_delayed_step_and_never_changes_observations() -> None:
    """A BUY decided on row s (dpos > 0, filled at open[s+1]) earns +5 if close[s+N] > open[s+1],
    else -2, in the reward of the step that consumes bar s+N: N - 1 steps after the BUY's own."""
    from cryptorl_core.backtest.config import BacktestConfig

    assert EnvConfig().timing_bonus_horizon == BacktestConfig().timing_horizon_h
    frame = _segment_frame(seed=4)
    horizon = 5
    rng = np.random.default_rng(0)
    actions = rng.choice([-0.5, 0.0, 0.3, 1.0], size=200)
    off = EnvConfig(position_step=0.1, fee_bps=0.0)
    on = off.with_overrides(timing_bonus_scale=2.0, timing_bonus_horizon=horizon)
    obs_off, reward_off, paid_off = _bonus_run(off, frame, actions)
    obs_on, reward_on, paid_on = _bonus_run(on, frame, actions)
    for a, b in zip(obs_off, obs_on, strict=True):  # identical observations, step by step
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    assert not paid_off.any()

    open_, close = frame[PRICE_OPEN_COL].to_numpy(), frame[PRICE_CLOSE_COL].to_numpy()
    start = int(obs_off[0]["market"][0, 0])
    positions = np.concatenate([[0.0], [float(o["position"][0, 0]) for o in obs_off[1:]]])
    expected = np.zeros(len(actions))
    for k in range(len(actions)):
        s = start + k
        if positions[k + 1] > positions[k] and k + horizon - 1 < len(actions):
            expected[k + horizon - 1] += 5.0 if close[s + horizon] > open_[s + 1] else -2.0
    np.testing.assert_array_equal(paid_on, expected)
    assert (expected == 5.0).any() and (expected == -2.0).any()
    np.testing.assert_allclose(reward_on - reward_off, 2.0 * expected, atol=1e-12)


def test_timing_bonus_hand_computed() -> None:
    """Prices rise then fall: the first BUY is good (+5), the second bad (-2), each paid N - 1
    steps later; a BUY whose judging bar does not exist earns nothing. (BUYs cut off by an
    episode's end are dropped: the reference-equality cases with auto-resets cover that.)"""
    close = np.array([100.0] * 64 + [101, 102, 103, 104, 103, 102, 101, 100, 99, 98])
    open_ = np.concatenate([[100.0], close[:-1]])
    config = EnvConfig(timing_bonus_scale=1.0, timing_bonus_horizon=2, position_step=0.1, fee_bps=0.0,
                       slippage_bps=0.0, episode_length=100)
    env = BatchCryptoEnv.from_arrays(open_, close, np.arange(len(close)), config, n_envs=1, mode="sequential",
                                     dtype=torch.float64)
    env.reset()  # row 63
    paid = []
    # rows 63..72: buy 0.5 on row 63 (fill open[64]=100, close[65]=102 > 100: good), hold, sell, buy
    # 0.5 on row 67 (fill open[68]=104, close[69]=102: bad), hold, buy 1.0 on row 72 (no bar 74:
    # never paid)
    for a in (0.5, 0.5, 0.5, 0.0, 0.5, 0.5, 0.5, 0.5, 0.5, 1.0):
        env.step(np.array([[a]], dtype=np.float32))
        paid.append(float(env.reward_timing[0]))
    assert paid == [0.0, 5.0, 0.0, 0.0, 0.0, -2.0, 0.0, 0.0, 0.0, 0.0]


def test_vol_target_sizing_needs_its_column_and_uses_sign_times_size() -> None:
    open_, close = _prices(300, seed=2)
    config = EnvConfig(sizing="vol_target", action_gain=2.0)
    with pytest.raises(ValueError, match="size column"):
        BatchCryptoEnv.from_arrays(open_, close, np.arange(300), config, n_envs=3)
    with pytest.raises(ValueError):
        EnvConfig(sizing="kelly")
    with pytest.raises(ValueError):
        EnvConfig(timing_bonus_scale=1.0, execution_lag=0)
    size = np.linspace(0.0, 1.0, 300)
    env = BatchCryptoEnv.from_arrays(open_, close, np.arange(300), config, n_envs=3, seed=0, size=size,
                                     dtype=torch.float64)
    obs = env.reset()
    rows = obs["market"][:, 0].astype(int)
    # +0.2 and -0.45 are directions (gain 2: 0.4 and -0.9 on the grid); 0.01 rounds to flat
    targets = env.target_position(torch.tensor([0.2, -0.45, 0.01], dtype=torch.float64)).numpy()
    expected = np.round(np.array([1.0, -1.0, 0.0]) * size[rows] / 0.1) * 0.1
    np.testing.assert_allclose(targets, expected, atol=1e-12)
    obs, _, _, _ = env.step(np.array([[0.2], [-0.45], [0.01]], dtype=np.float32))
    np.testing.assert_allclose(obs["position"][:, 0], expected, atol=1e-6)


def test_vol_scaled_sizing_multiplies_the_agents_own_target_by_the_size() -> None:
    open_, close = _prices(300, seed=2)
    config = EnvConfig(sizing="vol_scaled", action_gain=2.0)
    with pytest.raises(ValueError, match="size column"):
        BatchCryptoEnv.from_arrays(open_, close, np.arange(300), config, n_envs=3)
    size = np.linspace(0.0, 1.0, 300)
    env = BatchCryptoEnv.from_arrays(open_, close, np.arange(300), config, n_envs=3, seed=0, size=size,
                                     dtype=torch.float64)
    rows = env.reset()["market"][:, 0].astype(int)
    # gain 2: +0.2 -> 0.4 and -0.45 -> -0.9 on the grid keep their size (not just their sign)
    targets = env.target_position(torch.tensor([0.2, -0.45, 0.9], dtype=torch.float64)).numpy()
    expected = np.round(np.array([0.4, -0.9, 1.0]) * size[rows] / 0.1) * 0.1
    np.testing.assert_allclose(targets, expected, atol=1e-12)
    assert not np.allclose(expected, np.round(np.sign(expected) * size[rows] / 0.1) * 0.1)


def test_step_info_off_by_default_and_outputs_are_fresh_each_step() -> None:
    """Default infos are empty (components on the env as tensors); obs arrays are never reused."""
    frame = _segment_frame()
    env = BatchCryptoEnv.from_segment_frame(
        frame, config=EnvConfig(episode_length=5), n_envs=8, seed=0
    )
    assert not env.config.step_info
    obs = env.reset()
    previous = {key: value.copy() for key, value in obs.items()}
    perf_view = env.reward_perf  # a view, overwritten in place by every step
    for k in range(1, 11):
        new_obs, _, dones, infos = env.step(np.full((8, 1), 0.5, dtype=np.float32))
        assert len(infos) == 8 and infos is not env._empty_infos
        if k % 5:
            assert not dones.any() and all(info == {} for info in infos)
        else:  # every episode ends here: fresh dicts with the episode record
            assert dones.all() and all("episode" in info for info in infos)
            assert all(
                info is not shared for info, shared in zip(infos, env._empty_infos, strict=True)
            )
        assert env.reward_perf is perf_view
        assert all(new_obs[key] is not obs[key] for key in obs)
        for key in obs:  # the previous step's arrays are untouched (SB3 keeps _last_obs)
            np.testing.assert_array_equal(obs[key], previous[key])
        obs, previous = new_obs, {key: value.copy() for key, value in new_obs.items()}
    with pytest.raises(TypeError):
        env._empty_infos[0]["x"] = 1
    with pytest.raises(TypeError):
        env._empty_infos[0].update(x=1)


# ---------------------------------------------------------------------------- episodes and splits


def test_sequential_backtest_runs_whole_split_and_auto_resets() -> None:
    frame = _segment_frame()
    env = BatchCryptoEnv.from_segment_frame(frame, split="eval", mode="sequential", seed=0)
    obs = env.reset()
    assert obs["market"][0, 0] == EVAL_FIRST
    rewards, steps = [], 0
    while True:
        steps += 1
        assert obs["market"][0, 0] == EVAL_FIRST + steps - 1  # one bar per step, in order
        obs, reward, done, infos = env.step(np.array([[0.5]], dtype=np.float32))
        rewards.append(float(reward[0]))
        if done[0]:
            break
    info = infos[0]
    # the step from the last row would need a bar outside the split
    assert steps == EVAL_LAST - EVAL_FIRST
    assert info["terminal_observation"]["market"][0] == EVAL_LAST
    assert info["TimeLimit.truncated"] and info["episode"]["l"] == steps
    assert info["episode"]["r"] == pytest.approx(sum(rewards), rel=1e-4)
    assert info["n_trades"] == 1 and info["turnover"] == pytest.approx(0.5)
    assert obs["market"][0, 0] == EVAL_FIRST  # auto-reset restarts the backtest


def test_random_episodes_end_at_length_or_split_end_with_episode_info() -> None:
    frame = _segment_frame()
    cfg = EnvConfig(episode_length=25)
    train_last = LAYOUT[0][1] - 1
    env = BatchCryptoEnv.from_segment_frame(frame, split="train", config=cfg, n_envs=256, seed=1)
    obs = env.reset()
    starts = obs["market"][:, 0].astype(np.int64)
    expected_len = np.minimum(cfg.episode_length, train_last - starts)  # never step past the split
    # the seed draws some starts near the split end
    assert (expected_len < cfg.episode_length).any()
    ended = np.zeros(256, dtype=bool)
    for k in range(1, cfg.episode_length + 1):
        obs, _, dones, infos = env.step(np.zeros((256, 1), dtype=np.float32))
        np.testing.assert_array_equal(dones & ~ended, (expected_len == k) & ~ended)
        for i in np.flatnonzero(dones & ~ended):
            info = infos[i]
            assert info["TimeLimit.truncated"] and info["episode"]["l"] == k
            assert info["terminal_observation"]["market"][0] == starts[i] + k <= train_last
            assert info["nav"] == 1.0 and info["n_trades"] == 0  # flat the whole time
            assert obs["position"][i, 0] == 0 and env.steps[i] == 0  # auto-reset
        ended |= dones
    assert ended.all()


# ---------------------------------------------------------------------------- look-ahead


def test_observation_is_current_row_and_rewards_ignore_later_bars() -> None:
    """Freqtrade-style truncation: cutting every bar after T changes nothing before the step that needs T."""
    open_, close = _prices(600, seed=7)
    cut = 400
    cfg = EnvConfig()
    kwargs = {"mode": "sequential", "dtype": torch.float64, "seed": 0}
    full = BatchCryptoEnv.from_arrays(open_, close, np.arange(100, 600), cfg, **kwargs)
    short = BatchCryptoEnv.from_arrays(
        open_[: cut + 1], close[: cut + 1], np.arange(100, cut + 1), cfg, **kwargs
    )
    obs_full, obs_short = full.reset(), short.reset()
    rng = np.random.default_rng(0)
    for step in range(cut - 100):
        assert obs_full["market"][0, 0] == full.row[0].item() == 100 + step
        for key in obs_full:
            np.testing.assert_array_equal(obs_full[key], obs_short[key])
        action = rng.uniform(-1, 1, size=(1, 1)).astype(np.float32)
        obs_full, r_full, _, _ = full.step(action)
        obs_short, r_short, done_short, info_short = short.step(action)
        nav_short = info_short[0]["nav"] if done_short[0] else short.nav[0].item()
        assert r_full[0] == r_short[0] and full.nav[0].item() == nav_short
        # the short env ends exactly when its next bar would be past the cut
        assert done_short[0] == (step == cut - 101)


def test_gather_windows_only_touches_past_rows() -> None:
    n_rows, n_cols = 300, 3
    # value = row index
    table = torch.arange(n_rows, dtype=torch.float32)[:, None].repeat(1, n_cols)
    index = torch.tensor([[0.0], [5.0], [63.0], [200.0], [299.0]])  # float obs, shape (batch, 1)
    windows = gather_windows(table, index)
    assert windows.shape == (5, WINDOW, n_cols)
    rows = index[:, 0]
    assert torch.equal(windows[:, -1, 0], rows)  # newest row is t
    assert (windows.amax(dim=(1, 2)) <= rows).all()  # never after t
    expected = torch.arange(200 - WINDOW + 1, 201, dtype=torch.float32)
    assert torch.equal(windows[3, :, 1], expected)
    # short history pads with row 0
    assert torch.equal(windows[1, : WINDOW - 6, 0], torch.zeros(WINDOW - 6))
    cache = torch.randn(n_rows, 8)
    assert torch.equal(gather_rows(cache, index), cache[[0, 5, 63, 200, 299]])


# ---------------------------------------------------------------------------- actions, w_cost, curriculum


def test_discretisation_and_long_only() -> None:
    open_, close = _prices(300, seed=1)
    raw = torch.tensor([0.04, 0.06, -0.37, 1.7, -1.2, 0.96, -0.04])
    env = BatchCryptoEnv.from_arrays(
        open_, close, np.arange(300), EnvConfig(), n_envs=7, dtype=torch.float64
    )
    expected = torch.tensor([0.0, 0.1, -0.4, 1.0, -1.0, 1.0, 0.0], dtype=torch.float64)
    assert torch.allclose(env.target_position(raw.double()), expected, atol=1e-12)
    long_only = BatchCryptoEnv.from_arrays(
        open_, close, np.arange(300), EnvConfig(long_only=True), n_envs=7, dtype=torch.float64
    )
    long_only.reset()
    obs, *_ = long_only.step(raw.numpy()[:, None])
    assert np.allclose(obs["position"][:, 0], [0.0, 0.1, 0.0, 1.0, 0.0, 1.0, 0.0], atol=1e-6)
    assert (long_only.n_trades.cpu().numpy() == [0, 1, 0, 1, 0, 1, 0]).all()


def test_w_cost_distribution_change_applies_at_next_reset() -> None:
    open_, close = _prices(300, seed=2)
    env = BatchCryptoEnv.from_arrays(
        open_, close, np.arange(300), EnvConfig(episode_length=3), n_envs=4096, seed=0
    )
    before = env.reset()["w_cost"][:, 0]
    assert 0.45 < before.mean() < 0.55  # default uniform [0, 1]
    env.env_method("set_w_cost_distribution", 0.3, 0.3)
    obs, _, dones, _ = env.step(np.zeros((4096, 1), dtype=np.float32))
    # running episodes keep theirs
    np.testing.assert_array_equal(obs["w_cost"][~dones, 0], before[~dones])
    # the few that hit the split end restart with the new one
    assert np.allclose(obs["w_cost"][dones], 0.3)
    obs = env.reset()
    assert np.allclose(obs["w_cost"], 0.3)
    env.set_w_cost_distribution(0.0, 1.0, p_zero=1.0)
    for _ in range(3):  # episodes end at step 3 and auto-reset with the new distribution
        obs, *_ = env.step(np.zeros((4096, 1), dtype=np.float32))
    assert (obs["w_cost"] == 0).all()
    env.set_w_cost_distribution(0.0, 1.0, alpha=2.0, beta=5.0)
    w = env.reset()["w_cost"][:, 0]
    assert abs(w.mean() - 2 / 7) < 0.01 and w.min() >= 0 and w.max() <= 1
    with pytest.raises(ValueError):
        env.set_w_cost_distribution(0.5, 0.2)


def test_seed_makes_resets_reproducible() -> None:
    open_, close = _prices(300, seed=2)
    env = BatchCryptoEnv.from_arrays(open_, close, np.arange(300), EnvConfig(), n_envs=32)
    env.seed(123)
    first = env.reset()
    env.seed(123)
    second = env.reset()
    for key in first:
        np.testing.assert_array_equal(first[key], second[key])


def test_curriculum_attributes_settable_through_vecenv_api() -> None:
    open_, close = _prices(300, seed=4)
    env = BatchCryptoEnv.from_arrays(
        open_, close, np.arange(200), EnvConfig(), n_envs=8, dtype=torch.float64, seed=0
    )
    env.reset()
    action = np.full((8, 1), 0.5, dtype=np.float32)
    env.set_attr("curriculum_lambda", 0.0)
    env.step(action)
    assert torch.allclose(env.reward, env.reward_perf)
    env.set_attr("curriculum_lambda", 1.0)
    env.set_attr("churn_coef", 2.0)
    env.set_attr("smooth_coef", 0.0)
    env.set_attr("w_cost", 1.0, indices=[0, 1])  # per-env tensor: a subset of envs is allowed
    env.step(-action)  # every env trades 1.0
    assert (env.steps == 2).all()  # premise: no env was reset in between
    assert torch.allclose(env.reward_churn, torch.full((8,), -2.0, dtype=torch.float64))
    assert torch.allclose(env.reward[:2], env.reward_perf[:2] - 2.0)
    assert env.get_attr("churn_coef", indices=[0, 1]) == [2.0, 2.0]
    with pytest.raises(ValueError):
        env.set_attr("churn_coef", 1.0, indices=[0])


# ---------------------------------------------------------------------------- execution lag


@pytest.mark.parametrize("lag", [1, 0])
def test_peeking_policy_profits_only_without_execution_lag(lag: int) -> None:
    """Position = sign(current bar's return) on i.i.d. returns: worthless with lag 1, a money machine with lag 0."""
    # long enough that the envs rarely share bars, so their rewards are ~independent
    n_rows = 50_000
    open_, close = _prices(n_rows, seed=9, vol=0.01, gap_vol=0.003)
    cfg = EnvConfig(
        execution_lag=lag, fee_bps=0.0, slippage_bps=0.0, churn_coef=0.0, smooth_coef=0.0
    )
    env = BatchCryptoEnv.from_arrays(
        open_, close, np.arange(n_rows), cfg, n_envs=64, dtype=torch.float64, seed=0
    )
    obs = env.reset()
    perf = []
    for _ in range(200):
        t = obs["market"][:, 0].astype(np.int64)
        seen_return = close[t] / close[t - 1] - 1.0  # known at bar t's close
        obs, _, _, _ = env.step(np.sign(seen_return)[:, None].astype(np.float32))
        perf.append(env.reward_perf.numpy().copy())
    perf = np.concatenate(perf)
    mean, stderr = perf.mean(), perf.std() / np.sqrt(len(perf))
    if lag == 1:
        assert abs(mean) < 4 * stderr and abs(mean) < 0.05
    else:
        assert mean > 50 * stderr and mean > 0.5  # ~100 * E|r| per step


# ---------------------------------------------------------------------------- SB3 integration


class _SingleEnvView(gym.Env):
    """A 1-env BatchCryptoEnv seen as a gymnasium Env, so SB3's ``check_env`` can inspect it."""

    def __init__(self, venv: BatchCryptoEnv) -> None:
        self.venv = venv
        self.observation_space = venv.observation_space
        self.action_space = venv.action_space

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        super().reset(seed=seed)
        if seed is not None:
            self.venv.seed(seed)
        return {k: v[0] for k, v in self.venv.reset().items()}, {}

    def step(self, action: np.ndarray) -> tuple[dict, float, bool, bool, dict]:
        obs, reward, done, infos = self.venv.step(np.asarray(action, dtype=np.float32)[None])
        info = dict(infos[0])  # a gym Env owns its info (DummyVecEnv writes into it)
        truncated = bool(done[0] and info["TimeLimit.truncated"])
        obs_i = info["terminal_observation"] if done[0] else {k: v[0] for k, v in obs.items()}
        return obs_i, float(reward[0]), bool(done[0]) and not truncated, truncated, info


def test_sb3_env_checker_and_nan_check() -> None:
    from stable_baselines3.common.env_checker import check_env
    from stable_baselines3.common.vec_env import VecCheckNan

    frame = _segment_frame()
    env = BatchCryptoEnv.from_segment_frame(
        frame, config=EnvConfig(episode_length=10), n_envs=1, seed=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any SB3 warning about the spaces fails the test
        check_env(_SingleEnvView(env), warn=True)
    checked = VecCheckNan(
        BatchCryptoEnv.from_segment_frame(frame, n_envs=16, config=EnvConfig(episode_length=10)),
        raise_exception=True,
    )
    checked.reset()
    for _ in range(30):
        checked.step(np.random.uniform(-1, 1, size=(16, 1)).astype(np.float32))


@pytest.mark.parametrize("algo", ["SAC", "TQC", "PPO"])
def test_sb3_algorithms_learn_on_env(algo: str) -> None:
    import sb3_contrib
    import stable_baselines3

    frame = _segment_frame()
    env = BatchCryptoEnv.from_segment_frame(
        frame, config=EnvConfig(episode_length=16), n_envs=8, seed=0
    )
    small = {"net_arch": [16, 16]}
    if algo == "PPO":
        model = stable_baselines3.PPO(
            "MultiInputPolicy",
            env,
            n_steps=16,
            batch_size=64,
            n_epochs=1,
            policy_kwargs=small,
            seed=0,
        )
    else:
        cls = stable_baselines3.SAC if algo == "SAC" else sb3_contrib.TQC
        model = cls(
            "MultiInputPolicy",
            env,
            learning_starts=64,
            batch_size=32,
            buffer_size=1000,
            policy_kwargs=small,
            seed=0,
        )
    model.learn(200)
    assert model.num_timesteps >= 200
    # the read-only empty infos shared across steps came back untouched from SB3
    assert all(type(info) is not dict and info == {} for info in env._empty_infos)
    assert len(model.ep_info_buffer) > 0 and all(ep["l"] == 16 for ep in model.ep_info_buffer)
    if algo != "PPO":
        buffer = model.replay_buffer
        stored = buffer.observations["market"][: buffer.pos]
        # only train rows reached the buffer
        assert stored.min() >= WINDOW - 1 and stored.max() < 600
        # obs and next_obs of each transition are one bar apart (a reused obs array would
        # make them equal), the terminal row included
        step = buffer.next_observations["market"][: buffer.pos] - stored
        np.testing.assert_array_equal(step, np.ones_like(step))
        assert model.replay_buffer.observations["market"].dtype == np.float32


def test_segment_market_validation() -> None:
    open_, close = _prices(100, seed=0)
    with pytest.raises(ValueError):
        SegmentMarket.from_arrays(open_, close, np.arange(0, 60))  # no row >= 63
    with pytest.raises(ValueError):
        SegmentMarket.from_arrays(-open_, close, np.arange(100))
    market = SegmentMarket.from_arrays(open_, close, np.r_[70:80, 90:95])
    assert market.run_end[75] == 79 and market.run_end[92] == 94 and market.run_end[85] == -1
    assert list(market.start_rows) == [*range(70, 79), *range(90, 94)]


# ---------------------------------------------------------------------------- counterfactual steps


@pytest.mark.parametrize(
    "overrides",
    [{}, {"execution_lag": 0}, {"long_only": True, "position_step": 0.25},
     {"sizing": "vol_scaled", "action_gain": 1.5, "risk_aversion": 4.0},
     {"sizing": "vol_scaled", "action_gain": 1.5, "risk_aversion": 4.0, "hold_cost_bps": 50.0}],
    ids=["lag1", "lag0", "long_only", "vol_scaled", "hold_cost"],
)
def test_counterfactual_step_reproduces_the_step_it_replays(overrides: dict) -> None:
    """From each env's state before a step, ``counterfactual_step`` gives the reward and next
    position the step then produces, and changes nothing in the env."""
    open_, close = _prices(400, seed=3, vol=0.02)
    cfg = EnvConfig(episode_length=15, churn_coef=0.3, smooth_coef=0.2, curriculum_lambda=0.7, **overrides)
    size = _vol_target_column(close) if cfg.sizing != "agent" else None
    env = BatchCryptoEnv.from_arrays(open_, close, np.arange(40, 160), cfg, n_envs=6, dtype=torch.float64,
                                     seed=5, size=size)
    obs = env.reset()
    rng = np.random.default_rng(1)
    for _ in range(60):
        actions = _random_actions(rng, 6, None)
        before = (torch.as_tensor(obs["market"][:, 0]), env.position.clone(), env.w_cost.clone(), env.prev_dpos.clone())
        reward, next_position = env.counterfactual_step(*before[:3], torch.as_tensor(actions[:, 0]), before[3])
        assert torch.equal(env.position, before[1]) and torch.equal(env.prev_dpos, before[3])
        obs, _, dones, infos = env.step(actions)
        np.testing.assert_allclose(reward.numpy(), env.reward.numpy(), rtol=1e-10, atol=1e-12)
        held = [infos[i]["terminal_observation"]["position"][0] if dones[i] else obs["position"][i, 0] for i in range(6)]
        np.testing.assert_allclose(next_position.numpy(), held, atol=1e-6)


def test_counterfactual_step_refuses_the_delayed_timing_bonus() -> None:
    open_, close = _prices(200, seed=3)
    env = BatchCryptoEnv.from_arrays(open_, close, np.arange(40, 160), EnvConfig(timing_bonus_scale=1.0), n_envs=2)
    zeros = torch.zeros(2)
    with pytest.raises(ValueError, match="timing bonus"):
        env.counterfactual_step(zeros + 50, zeros, zeros, zeros)


def test_random_positions_lie_on_the_grid_and_cover_the_range() -> None:
    open_, close = _prices(200, seed=3)
    for long_only, low in ((False, -1.0), (True, 0.0)):
        cfg = EnvConfig(position_step=0.25, long_only=long_only)
        env = BatchCryptoEnv.from_arrays(open_, close, np.arange(40, 160), cfg, n_envs=2, seed=0)
        drawn = env.random_positions(2_000, torch.Generator().manual_seed(0)).numpy()
        assert set(np.round(drawn / 0.25).astype(int)) == set(range(int(low / 0.25), 5))
