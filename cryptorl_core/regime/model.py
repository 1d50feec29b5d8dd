"""Fit a segment's regime HMM on its train rows and give every row causal regime context.

:func:`fit_regime_model` fits a Gaussian HMM (hmmlearn) with several seeded restarts on
the train rows only, keeps the restart with the best train log-likelihood, relabels the
states in a stable order and checks the fit. :class:`RegimeModel` holds the parameters
(plain numpy arrays, already in the stable order) and computes the forward-filtered
context of :mod:`cryptorl_core.regime.filtering` for any frame.

Warm-up rule: the filter starts at the first row of the frame it is given (for a segment
frame that is ``train_start``, about a year before the test window) from the stationary
distribution of the hourly transition matrix. Any prior is forgotten within days, and
the stationary one does not depend on where the fit window happened to start.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from hmmlearn.hmm import GaussianHMM
from threadpoolctl import threadpool_limits

from cryptorl_core.regime.config import N_STATES, HMMConfig
from cryptorl_core.regime.filtering import (
    context_frame,
    emission_log_density,
    forward_filter,
    stationary_distribution,
)
from cryptorl_core.schema import SPLIT_COL, TRAIN

#: Smallest transition probability kept after the stride conversion (keeps logs finite).
MIN_TRANSITION = 1e-12


class RegimeFitError(ValueError):
    """A fit that did not converge or has a degenerate state, with ``strict=True``."""


class RegimeFitWarning(UserWarning):
    """A fit that did not converge or has a degenerate state."""


@dataclass
class RegimeModel:
    """A fitted regime HMM with states in the stable order (see :func:`stable_order`).

    :param columns: input columns, return first and volatility second.
    :param transmat: hourly transition matrix, shape ``(4, 4)``.
    :param means: emission means, shape ``(4, d)``.
    :param covars: full emission covariances, shape ``(4, d, d)``.
    :param mapping: ``mapping[original_state] = stable_state`` for the winning restart.
    :param fit_window: first/last train timestamp, train row count, fit row count, stride.
    :param seeds: the restart seeds.
    :param best_seed: the seed of the kept restart.
    :param restarts: per restart: seed, log-likelihood per fit row, EM iterations, converged.
    :param diagnostics: convergence, occupancy, covariance conditioning and warnings.
    :param config: the :class:`HMMConfig` used, as a dict.
    """

    columns: tuple[str, ...]
    transmat: np.ndarray
    means: np.ndarray
    covars: np.ndarray
    mapping: tuple[int, ...]
    fit_window: dict
    seeds: tuple[int, ...]
    best_seed: int
    restarts: list[dict] = field(default_factory=list)
    diagnostics: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)

    @property
    def n_states(self) -> int:
        return self.transmat.shape[0]

    @property
    def initial_distribution(self) -> np.ndarray:
        """Prior of the first filtered row: the stationary distribution (warm-up rule)."""
        return stationary_distribution(self.transmat)

    def mean_durations(self) -> np.ndarray:
        """Expected hours per visit of each state, ``1 / (1 - p_ii)``."""
        return 1.0 / np.clip(1.0 - np.diag(self.transmat), MIN_TRANSITION, None)

    def filter(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Filtered probabilities and one-step predictive log-likelihood of every row.

        :param frame: rows in time order, starting where the filter should start.
        :return: ``(probs (n, 4), loglik (n,))``; row t uses rows <= t only.
        """
        log_b = emission_log_density(input_matrix(frame, self.columns), self.means, self.covars)
        return forward_filter(log_b, self.transmat, self.initial_distribution)

    def context(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The regime context columns (``HMM_COLUMNS``) on ``frame``'s index."""
        return context_frame(self.filter(frame)[0], frame.index)

    def to_hmmlearn(self) -> GaussianHMM:
        """An equivalent hmmlearn model (hourly, stable order), for comparisons only."""
        hmm = GaussianHMM(n_components=self.n_states, covariance_type="full")
        hmm.n_features = self.means.shape[1]
        hmm.startprob_ = self.initial_distribution
        hmm.transmat_ = self.transmat
        hmm.means_ = self.means
        hmm.covars_ = self.covars
        return hmm

    def to_dict(self) -> dict:
        """JSON-ready form (arrays as nested lists); :meth:`from_dict` inverts it."""
        return {
            "columns": list(self.columns),
            "transmat": self.transmat.tolist(),
            "means": self.means.tolist(),
            "covars": self.covars.tolist(),
            "mapping": list(self.mapping),
            "fit_window": dict(self.fit_window),
            "seeds": list(self.seeds),
            "best_seed": self.best_seed,
            "restarts": [dict(r) for r in self.restarts],
            "diagnostics": dict(self.diagnostics),
            "config": dict(self.config),
        }

    @classmethod
    def from_dict(cls, d: dict) -> RegimeModel:
        return cls(
            columns=tuple(d["columns"]),
            transmat=np.asarray(d["transmat"], dtype=np.float64),
            means=np.asarray(d["means"], dtype=np.float64),
            covars=np.asarray(d["covars"], dtype=np.float64),
            mapping=tuple(int(m) for m in d["mapping"]),
            fit_window=dict(d["fit_window"]),
            seeds=tuple(int(s) for s in d["seeds"]),
            best_seed=int(d["best_seed"]),
            restarts=list(d.get("restarts", [])),
            diagnostics=dict(d.get("diagnostics", {})),
            config=dict(d.get("config", {})),
        )


def input_matrix(frame: pd.DataFrame, columns: tuple[str, ...]) -> np.ndarray:
    """The HMM input columns as float64, with a clear error for missing or non-finite values."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise KeyError(f"HMM input columns missing from the frame: {missing}")
    x = frame[list(columns)].to_numpy(dtype=np.float64)
    if not np.isfinite(x).all():
        raise ValueError(f"HMM input columns {columns} contain NaN or inf")
    return x


def train_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows labelled train, with a clear error when there are none."""
    rows = frame.loc[frame[SPLIT_COL].to_numpy() == TRAIN]
    if rows.empty:
        raise ValueError("the frame has no train rows: the HMM is fitted on train rows only")
    return rows


def hourly_transmat(strided: np.ndarray, stride: int) -> np.ndarray:
    """Hourly transition matrix from one fitted on rows ``stride`` hours apart.

    ``A = I + (A_s - I) / stride`` is the first-order root of ``A^stride = A_s``: it keeps
    each state's mean duration in hours (``stride / (1 - p_ii)``) and its exit
    destinations, and is always a valid stochastic matrix (unlike a matrix root).
    """
    eye = np.eye(strided.shape[0])
    hourly = np.clip(eye + (strided - eye) / stride, MIN_TRANSITION, None)
    return hourly / hourly.sum(axis=1, keepdims=True)


def stable_order(means: np.ndarray, ret_idx: int = 0, vol_idx: int = 1) -> np.ndarray:
    """Original state indices in the stable order.

    The state with the highest mean volatility goes last (the stress / crash state);
    the others are sorted by mean return, descending, ties by lower volatility first.
    On the synthetic market this gives 0 bull, 1 range, 2 bear, 3 crash.

    :param means: emission means, shape ``(k, d)``.
    :return: ``order`` with ``order[stable] = original``.
    """
    stress = int(np.argmax(means[:, vol_idx]))
    rest = sorted((s for s in range(len(means)) if s != stress),
                  key=lambda s: (-means[s, ret_idx], means[s, vol_idx]))
    return np.array([*rest, stress])


def _full_covars(hmm: GaussianHMM) -> np.ndarray:
    """Covariances as ``(k, d, d)`` whatever the covariance type (hmmlearn expands them)."""
    return np.asarray(hmm.covars_, dtype=np.float64)


def _converged(hmm: GaussianHMM, tol: float) -> bool:
    """EM stopped on the tolerance. hmmlearn's own ``converged`` is also True at the cap."""
    hist = hmm.monitor_.history
    return len(hist) >= 2 and (hist[-1] - hist[-2]) < tol


def _fit_restart(x: np.ndarray, config: HMMConfig, seed: int) -> tuple[GaussianHMM, dict]:
    hmm = GaussianHMM(
        n_components=N_STATES, covariance_type=config.covariance_type, min_covar=config.min_covar,
        n_iter=config.n_iter, tol=config.tol, random_state=seed,
    )
    hmm.fit(x)
    record = {"seed": seed, "loglik_per_row": float(hmm.score(x) / len(x)),
              "n_iter": int(hmm.monitor_.iter), "converged": _converged(hmm, config.tol)}
    return hmm, record


def fit_window(rows: pd.DataFrame, n_fit_rows: int, stride: int) -> dict:
    """Where the parameters came from: the first and last train bar and row counts."""
    return {"start": str(rows.index[0]), "end": str(rows.index[-1]), "n_train_rows": len(rows),
            "n_fit_rows": n_fit_rows, "stride_hours": stride}


def check_fit(model: RegimeModel, train_probs: np.ndarray, converged: bool, config: HMMConfig) -> dict:
    """Convergence, state occupancy and covariance conditioning of a fit.

    :param train_probs: filtered probabilities of the train rows.
    :return: diagnostics with a ``warnings`` list (empty for a healthy fit).
    """
    occupancy = train_probs.mean(axis=0)
    eig = np.linalg.eigvalsh(model.covars)
    condition = eig.max(axis=1) / np.clip(eig.min(axis=1), np.finfo(float).tiny, None)
    problems = []
    if not converged:
        problems.append(f"EM did not converge within {config.n_iter} iterations (tol {config.tol})")
    for s in np.flatnonzero(occupancy < config.min_occupancy):
        problems.append(f"state {s} is degenerate: train occupancy {occupancy[s]:.4f} < {config.min_occupancy}")
    for s in np.flatnonzero(condition > config.max_condition):
        problems.append(f"state {s} covariance is near-singular: condition {condition[s]:.3g} > {config.max_condition:.3g}")
    return {"converged": converged, "occupancy": occupancy.round(6).tolist(),
            "covariance_condition": condition.round(3).tolist(),
            "mean_duration_hours": model.mean_durations().round(2).tolist(), "warnings": problems}


def fit_regime_model(frame: pd.DataFrame, config: HMMConfig | None = None) -> RegimeModel:
    """Fit the regime HMM of one segment on its train rows only.

    :param frame: a segment frame (needs ``split`` and the config's input columns).
    :param config: the HMM configuration.
    :return: the model; a non-converged or degenerate fit warns (:class:`RegimeFitWarning`)
        and is recorded in ``diagnostics["warnings"]``, or raises :class:`RegimeFitError`
        when ``config.strict``.
    """
    config = config or HMMConfig()
    rows = train_rows(frame)
    x = input_matrix(rows, config.columns)[:: config.fit_stride]
    if len(x) < 10 * N_STATES:
        raise ValueError(f"only {len(x)} fit rows: too few for a {N_STATES}-state HMM")

    best: tuple[GaussianHMM, dict] | None = None
    restarts = []
    # hmmlearn logs "not converging" per EM step; the diagnostics report convergence once.
    hmm_log = logging.getLogger("hmmlearn")
    level = hmm_log.level
    hmm_log.setLevel(logging.ERROR)
    try:
        with threadpool_limits(limits=config.blas_threads):
            for seed in config.seeds:
                hmm, record = _fit_restart(x, config, seed)
                restarts.append(record)
                if best is None or record["loglik_per_row"] > best[1]["loglik_per_row"]:
                    best = (hmm, record)
    finally:
        hmm_log.setLevel(level)
    hmm, record = best

    means = np.asarray(hmm.means_, dtype=np.float64)
    order = stable_order(means)
    mapping = np.empty(N_STATES, dtype=int)
    mapping[order] = np.arange(N_STATES)
    transmat = hourly_transmat(np.asarray(hmm.transmat_, dtype=np.float64), config.fit_stride)
    model = RegimeModel(
        columns=config.columns,
        transmat=transmat[np.ix_(order, order)],
        means=means[order],
        covars=_full_covars(hmm)[order],
        mapping=tuple(int(m) for m in mapping),
        fit_window=fit_window(rows, len(x), config.fit_stride),
        seeds=config.seeds,
        best_seed=record["seed"],
        restarts=restarts,
        config=config.as_dict(),
    )
    train_probs, _ = model.filter(rows)
    model.diagnostics = check_fit(model, train_probs, record["converged"], config)
    _report_problems(model.diagnostics["warnings"], config.strict)
    return model


def _report_problems(problems: list[str], strict: bool) -> None:
    if not problems:
        return
    message = "regime HMM fit: " + "; ".join(problems)
    if strict:
        raise RegimeFitError(message)
    warnings.warn(message, RegimeFitWarning, stacklevel=3)


def parameter_difference(a: RegimeModel, b: RegimeModel) -> float:
    """Largest absolute difference between two models' parameters (inf if shapes or
    state mappings differ): 0.0 means the same fit."""
    if a.columns != b.columns or a.mapping != b.mapping:
        return float("inf")
    diffs = []
    for name in ("transmat", "means", "covars"):
        pa, pb = getattr(a, name), getattr(b, name)
        if pa.shape != pb.shape:
            return float("inf")
        diffs.append(float(np.max(np.abs(pa - pb))))
    return max(diffs)


def fit_window_inside(model: RegimeModel, start: pd.Timestamp, end: pd.Timestamp) -> bool:
    """Whether the recorded fit window lies in ``[start, end)`` (the segment's train window)."""
    first, last = pd.Timestamp(model.fit_window["start"]), pd.Timestamp(model.fit_window["end"])
    return bool(start <= first <= last < end)
