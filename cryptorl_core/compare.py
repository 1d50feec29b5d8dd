"""Compare two saved policies on the same window with the same costs, side by side: a command-line
entry point (like :mod:`cryptorl_core.experiment`) over the backtest analytics.

Library use::

    comparison = compare_policies("a/tqc.zip", "b/tqc.zip", frame, "test",
                                  hmm_context=hmm_frame, encoder="encoder.pth")
    print(comparison.markdown())

Command line (``python -m cryptorl_core.compare``, or the ``cryptorl-compare`` script),
reading a segment's stored artifacts::

    python -m cryptorl_core.compare --a PATH --b PATH --segment 2025-Q4 [--split test]

Paths default to where the Dagster assets write under the storage root (``--storage``, else
``$CRYPTORL_STORAGE`` or ``<repo>/storage``: :class:`~cryptorl_core.settings.StorageLayout`):

- the segment frame: ``<storage>/frames/features/<key>.parquet`` (the frame IO manager);
- the encoder (``--encoder``): ``<storage>/artifacts/mae_encoder/<key>/encoder.pth``;
- the HMM context (``--hmm``: a parquet or CSV file holding the
  :data:`~cryptorl_core.schema.HMM_COLUMNS` for every frame row): the features frame itself
  when it carries them, else ``<storage>/artifacts/hmm_model/<key>/context.parquet`` (the regime
  stage publishes it there), else another parquet in that folder that holds them.

A policy built on the agent's :class:`~cryptorl_core.agent.extractor.FoundationFeatureExtractor`
needs the encoder and the HMM context to build its market tensors.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from cryptorl_core.agent.loading import load_policy
from cryptorl_core.backtest.config import BacktestConfig
from cryptorl_core.backtest.metrics import metrics_markdown, metrics_table
from cryptorl_core.backtest.runner import ActionFn, BacktestRun, PredictsActions, run_backtest
from cryptorl_core.env import EnvConfig
from cryptorl_core.profiles import PROFILES
from cryptorl_core.schema import HMM_COLUMNS, SPLITS, TEST
from cryptorl_core.settings import (
    PROFILE_ENV,
    STORAGE_ENV,
    StorageLayout,
    profile_name,
    storage_layout,
    storage_root,  # noqa: F401  (re-exported: cryptorl_core.compare.storage_root)
)

PolicyLike = str | os.PathLike | PredictsActions | ActionFn

#: Asset names and files the CLI reads (``cryptorl_dagster.assets``: features, encoder, regime).
FEATURES_ASSET = "features"
ENCODER_ASSET = "mae_encoder"
ENCODER_FILENAME = "encoder.pth"
HMM_ASSET = "hmm_model"
HMM_CONTEXT_FILENAME = "context.parquet"


@dataclass
class Comparison:
    """Two policies' runs over the same window.

    :param runs: name to run (two entries).
    :param config: analytics configuration.
    """

    runs: dict[str, BacktestRun]
    config: BacktestConfig

    def table(self) -> pd.DataFrame:
        """One row per metric, one column per policy."""
        return metrics_table({name: run.metrics(self.config) for name, run in self.runs.items()})

    def markdown(self) -> str:
        """The table as markdown."""
        return metrics_markdown(self.table())


def compare_policies(
    policy_a: PolicyLike,
    policy_b: PolicyLike,
    frame: pd.DataFrame,
    split: str = TEST,
    *,
    hmm_context: Any = None,
    encoder: Any = None,
    names: tuple[str, str] = ("A", "B"),
    env_config: EnvConfig | None = None,
    config: BacktestConfig | None = None,
    device: torch.device | str = "cpu",
) -> Comparison:
    """Run two policies (paths to saved models, models or callables) over the same window.

    Both run deterministically through the same sequential env (same lag, fees, slippage,
    position grid and fixed ``w_cost``).

    :param policy_a: first policy.
    :param policy_b: second policy.
    :param frame: segment frame.
    :param split: window.
    :param hmm_context: HMM context for models that use the agent's extractor.
    :param encoder: encoder (or its path, or an embedding cache) for those models.
    :param names: column names of the two policies.
    :param env_config: execution and costs (``EnvConfig()`` if None).
    :param config: analytics configuration.
    :param device: torch device.
    :return: the comparison.
    """
    cfg = config or BacktestConfig()
    runs = {}
    for name, policy in zip(names, (policy_a, policy_b), strict=True):
        if isinstance(policy, (str, os.PathLike)):
            policy = load_policy(policy, frame=frame, hmm_context=hmm_context, encoder=encoder, device=device)
        runs[name] = run_backtest(policy, frame, split, name=name, env_config=env_config,
                                  w_cost=cfg.eval_w_cost, device=device)
    return Comparison(runs=runs, config=cfg)


# ---------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------


def read_hmm_context(path: str | os.PathLike) -> pd.DataFrame:
    """A parquet or CSV file holding the HMM columns."""
    p = Path(path)
    frame = pd.read_csv(p, index_col=0) if p.suffix == ".csv" else pd.read_parquet(p)
    missing = [c for c in HMM_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{p} lacks the HMM columns {missing}")
    return frame


def default_hmm_context(root: Path | StorageLayout, key: str, frame: pd.DataFrame) -> pd.DataFrame | None:
    """The segment's HMM context from the usual places (see the module docstring), or None.

    :param root: storage root (or its layout).
    """
    if all(c in frame.columns for c in HMM_COLUMNS):
        return frame
    layout = root if isinstance(root, StorageLayout) else StorageLayout(Path(root))
    folder = layout.artifact(HMM_ASSET, key)
    published = folder / HMM_CONTEXT_FILENAME
    candidates = [published, *(p for p in sorted(folder.glob("*.parquet")) if p != published)]
    for path in candidates:
        if path.is_file():
            try:
                return read_hmm_context(path)
            except ValueError:
                continue
    return None


def training_env_config(profile: str, fee_bps: float | None = None,
                        slippage_bps: float | None = None) -> EnvConfig:
    """The policy stage's env configuration of a profile (lag, costs, position grid), with
    optional cost overrides.

    :param profile: a pipeline profile name (``quick``, ``full``, ...).
    :param fee_bps: fee override.
    :param slippage_bps: slippage override.
    """
    from cryptorl_core.agent.config import AgentConfig

    env = AgentConfig.profile(profile).env
    changes = {k: v for k, v in (("fee_bps", fee_bps), ("slippage_bps", slippage_bps)) if v is not None}
    return env.with_overrides(**changes) if changes else env


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cryptorl-compare",
        description="Run two saved policies on one segment's window with the same costs; "
                    "print their metrics side by side.")
    parser.add_argument("--a", required=True, help="first policy (SB3 .zip, or a published tqc_policy folder)")
    parser.add_argument("--b", required=True, help="second policy (SB3 .zip, or a published tqc_policy folder)")
    parser.add_argument("--segment", required=True, help="segment key, e.g. 2025-Q4")
    parser.add_argument("--split", default=TEST, choices=[s for s in SPLITS if s != "purged"])
    parser.add_argument("--storage", help=f"storage root (default ${STORAGE_ENV} or <repo>/storage)")
    parser.add_argument("--frame", help="segment frame parquet (default <storage>/frames/features/<key>.parquet)")
    parser.add_argument("--encoder", help="encoder.pth (default <storage>/artifacts/mae_encoder/<key>/encoder.pth)")
    parser.add_argument("--hmm", help="parquet/CSV with the HMM columns of every frame row")
    parser.add_argument("--fee-bps", type=float, help="override the training env's fee")
    parser.add_argument("--slippage-bps", type=float, help="override the training env's slippage")
    parser.add_argument("--profile", default=profile_name(), choices=PROFILES,
                        help=f"pipeline profile: the training env's costs and the analytics settings "
                             f"(default ${PROFILE_ENV} or quick)")
    parser.add_argument("--device", default="cpu")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``cryptorl-compare``: print the two policies' metrics as a markdown table.

    :param argv: arguments (``sys.argv[1:]`` when None).
    :return: exit status.
    """
    args = build_parser().parse_args(argv)
    layout = StorageLayout(Path(args.storage).resolve()) if args.storage else storage_layout()
    frame_path = Path(args.frame) if args.frame else layout.frame(FEATURES_ASSET, args.segment)
    if not frame_path.is_file():
        print(f"no segment frame at {frame_path}: materialize `features` for {args.segment} first",
              file=sys.stderr)
        return 2
    frame = pd.read_parquet(frame_path)
    encoder = Path(args.encoder) if args.encoder else layout.artifact(ENCODER_ASSET, args.segment) / ENCODER_FILENAME
    hmm = read_hmm_context(args.hmm) if args.hmm else default_hmm_context(layout, args.segment, frame)
    env_config = training_env_config(args.profile, args.fee_bps, args.slippage_bps)
    config = BacktestConfig.profile(args.profile)
    try:
        comparison = compare_policies(
            args.a, args.b, frame, args.split, hmm_context=hmm,
            encoder=encoder if encoder.is_file() else None,
            names=(Path(args.a).stem + " (A)", Path(args.b).stem + " (B)"),
            env_config=env_config, config=config, device=args.device,
        )
    except (ValueError, FileNotFoundError) as err:
        print(f"cryptorl-compare: {err}", file=sys.stderr)
        return 2
    run = next(iter(comparison.runs.values()))
    print(f"Segment {args.segment}, {args.split} window {run.steps.index[0]} .. {run.steps.index[-1]} "
          f"({len(run.steps) - 1} h), fee {env_config.fee_bps} bps + slippage {env_config.slippage_bps} bps, "
          f"lag {env_config.execution_lag} bar, w_cost {run.w_cost}")
    print(f"A = {args.a}\nB = {args.b}\n")
    print(comparison.markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main())
