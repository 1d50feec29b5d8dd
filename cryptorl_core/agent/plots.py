"""Training charts of the agent."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cryptorl_core.agent.train import PolicyTrainResult
from cryptorl_core.plotting import figure_png, new_figure

#: Entropy of a uniform distribution over the 21 positions of the 0.1 grid, in bits.
MAX_ENTROPY_BITS = float(np.log2(21))


def training_curves_png(result: PolicyTrainResult) -> bytes:
    """Eval reward and NAV over training; training action std / entropy and ent_coef."""
    fig, ax = new_figure((7, 6.0), 80, 3)
    evals = pd.DataFrame(result.evals)
    curves = pd.DataFrame(result.curves)
    if not evals.empty:
        ax[0].plot(evals["step"], evals["reward"], marker="o", label="eval reward")
        if result.best_step >= 0:
            ax[0].axvline(result.best_step, color="grey", ls="--", label="kept")
        twin = ax[0].twinx()
        twin.plot(evals["step"], evals["nav"], color="tab:green", label="eval NAV")
        twin.set_ylabel("NAV")
        ax[0].legend(loc="upper left", fontsize=7)
    ax[0].set_title("evaluation on the eval window (deterministic)", fontsize=9)
    if not curves.empty:
        ax[1].plot(curves["step"], curves["action_std"], label="action std")
        ax[1].plot(curves["step"], curves["action_entropy_bits"] / MAX_ENTROPY_BITS, label="action entropy / max")
        ax[1].legend(fontsize=7)
        ax[1].set_title("training actions", fontsize=9)
        ax[2].plot(curves["step"], curves["ent_coef"], label="ent_coef")
        ax[2].axhline(result.config.min_ent_coef, color="grey", ls=":", label="floor")
        if curves["episode_nav"].notna().any():
            nav = curves.dropna(subset=["episode_nav"])
            twin = ax[2].twinx()
            twin.plot(nav["step"], nav["episode_nav"], color="tab:green", alpha=0.6, label="train episode NAV")
            twin.set_ylabel("NAV")
        ax[2].set_yscale("log")
        ax[2].legend(fontsize=7, loc="upper left")
        ax[2].set_xlabel("env transitions")
    return figure_png(fig)
