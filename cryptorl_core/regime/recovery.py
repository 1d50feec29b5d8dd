"""How well the filtered regimes recover the synthetic market's true regimes.

HMM state numbers are arbitrary with respect to the generator's, so accuracy is taken
under the best one-to-one matching of states to regimes (Hungarian algorithm on the
confusion matrix). The adjusted Rand index needs no matching: 0 is chance, 1 is perfect.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score

from cryptorl_core.schema import SPLIT_COL, TEST, TRUE_REGIME_COL


def confusion(pred: np.ndarray, true: np.ndarray, n: int) -> np.ndarray:
    """Counts ``C[p, t]`` of rows predicted ``p`` whose true label is ``t``."""
    counts = np.zeros((n, n), dtype=np.int64)
    np.add.at(counts, (np.asarray(pred, dtype=int), np.asarray(true, dtype=int)), 1)
    return counts


def best_permutation_accuracy(pred: np.ndarray, true: np.ndarray, n: int) -> tuple[float, dict[int, int]]:
    """Accuracy under the best state -> regime matching.

    :param pred: predicted state per row.
    :param true: true regime per row.
    :param n: number of states (and regimes).
    :return: ``(accuracy, {state: regime})``.
    """
    counts = confusion(pred, true, n)
    states, regimes = linear_sum_assignment(counts, maximize=True)
    acc = counts[states, regimes].sum() / max(len(pred), 1)
    return float(acc), {int(s): int(r) for s, r in zip(states, regimes, strict=True)}


def regime_recovery(frame: pd.DataFrame, probs: np.ndarray) -> dict:
    """Recovery of ``true_regime`` by the filtered argmax, on test rows and on all rows.

    :param frame: segment frame with ``split`` and ``true_regime``.
    :param probs: filtered probabilities of every row of ``frame``, shape ``(n, k)``.
    :return: ``accuracy_{test,all}``, ``ari_{test,all}``, the matching found on all rows
        and the test row count.
    """
    if TRUE_REGIME_COL not in frame:
        raise KeyError(f"no {TRUE_REGIME_COL!r} column: regime recovery needs synthetic data")
    k = probs.shape[1]
    pred = probs.argmax(axis=1)
    true = frame[TRUE_REGIME_COL].to_numpy(dtype=int)
    test = frame[SPLIT_COL].to_numpy() == TEST
    out: dict = {}
    for name, mask in (("test", test), ("all", np.ones(len(frame), dtype=bool))):
        acc, mapping = best_permutation_accuracy(pred[mask], true[mask], k)
        out[f"accuracy_{name}"] = acc
        out[f"ari_{name}"] = float(adjusted_rand_score(true[mask], pred[mask]))
        if name == "all":
            out["state_to_regime"] = mapping
    out["n_test_rows"] = int(test.sum())
    return out
