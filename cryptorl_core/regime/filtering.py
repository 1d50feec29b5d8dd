"""Causal regime probabilities: the HMM forward (filtering) recursion in log space.

``P(state_t | x_1..x_t)`` uses bars up to ``t`` only, unlike the forward-backward
posteriors of hmmlearn's ``predict_proba`` / ``score_samples``, whose value at ``t``
depends on every later bar (the look-ahead the field notes warn about).

Recursion, with ``a_t`` the normalised log filtered distribution::

    a_1 = log pi + log b_1(.)                      (normalised)
    a_t = log(exp(a_{t-1}) @ A) + log b_t(.)       (normalised)

``exp(a_{t-1})`` is a probability vector, so the log-sum-exp over previous states is the
log of a plain matrix product, exact and free of overflow. Each step's normaliser is the
one-step predictive density ``log p(x_t | x_1..x_{t-1})``, summed into the likelihood.
The state math is vectorised; only the loop over time is Python (~12k rows in tens of ms).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from cryptorl_core.schema import HMM_COLUMNS

LOG_2PI = math.log(2.0 * math.pi)


def emission_log_density(x: np.ndarray, means: np.ndarray, covars: np.ndarray) -> np.ndarray:
    """Gaussian log density of every row under every state.

    :param x: observations, shape ``(n, d)``.
    :param means: state means, shape ``(k, d)``.
    :param covars: full state covariances, shape ``(k, d, d)``.
    :return: ``log N(x_t; mu_k, Sigma_k)``, shape ``(n, k)``.
    """
    chol = np.linalg.cholesky(covars)                               # (k, d, d)
    chol_inv = np.linalg.inv(chol)
    diff = x[None, :, :] - means[:, None, :]                        # (k, n, d)
    z = np.einsum("kij,knj->kni", chol_inv, diff)
    log_det = 2.0 * np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(axis=1)
    d = x.shape[1]
    return (-0.5 * ((z**2).sum(axis=2) + log_det[:, None] + d * LOG_2PI)).T


def stationary_distribution(transmat: np.ndarray) -> np.ndarray:
    """Stationary distribution ``pi = pi A`` of a transition matrix (left eigenvector of 1)."""
    k = transmat.shape[0]
    # Solve (A^T - I) pi = 0 with sum(pi) = 1 by least squares: robust to a
    # nearly reducible chain, where the eigen-decomposition is ill-conditioned.
    lhs = np.vstack([transmat.T - np.eye(k), np.ones((1, k))])
    rhs = np.concatenate([np.zeros(k), [1.0]])
    pi = np.linalg.lstsq(lhs, rhs, rcond=None)[0]
    pi = np.clip(pi, 0.0, None)
    return pi / pi.sum()


def forward_filter(
    log_b: np.ndarray, transmat: np.ndarray, initial: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Filtered state probabilities and one-step predictive log-likelihoods.

    :param log_b: emission log densities, shape ``(n, k)``.
    :param transmat: transition matrix ``A[i, j] = P(s_t = j | s_{t-1} = i)``.
    :param initial: state distribution before the first row (the prior of row 0).
    :return: ``(probs, loglik)``: ``probs[t] = P(s_t | x_1..x_t)`` of shape ``(n, k)``
        and ``loglik[t] = log p(x_t | x_1..x_{t-1})`` of shape ``(n,)``.
    """
    n, k = log_b.shape
    probs = np.empty((n, k))
    loglik = np.empty(n)
    if n == 0:
        return probs, loglik
    exp, log = np.exp, np.log
    with np.errstate(divide="ignore"):  # log(0) = -inf is a valid log-probability
        log_prior = log(initial)
        for t in range(n):
            a = log_prior + log_b[t]
            m = a.max()
            e = exp(a - m)
            s = e.sum()
            p = e / s
            probs[t] = p
            loglik[t] = m + math.log(s)
            log_prior = log(p @ transmat)
    return probs, loglik


def normalised_entropy(probs: np.ndarray) -> np.ndarray:
    """Shannon entropy of each row divided by ``log k``: 0 certain, 1 uniform.

    :param probs: probabilities, shape ``(n, k)``.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        plogp = np.where(probs > 0.0, probs * np.log(probs), 0.0)
    return np.clip(-plogp.sum(axis=1) / math.log(probs.shape[1]), 0.0, 1.0)


def context_frame(probs: np.ndarray, index: pd.Index) -> pd.DataFrame:
    """The :data:`~cryptorl_core.schema.HMM_COLUMNS` frame: probabilities and entropy.

    :param probs: filtered probabilities in the stable state order, shape ``(n, 4)``.
    :param index: the segment frame's index.
    """
    values = np.column_stack([probs, normalised_entropy(probs)]).astype(np.float32)
    return pd.DataFrame(values, index=index, columns=list(HMM_COLUMNS))
