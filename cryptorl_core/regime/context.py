"""The regime context of a segment as a plain array, from whatever form a caller holds it in.

The agent's market tensors and the regime-rule baselines both read the regime model's filtered
context (:data:`~cryptorl_core.schema.HMM_COLUMNS`: the four state probabilities, then the
entropy). :func:`context_array` is the one place that turns a context frame, an array, a tensor
or the regime model itself into the columns they need, with the same checks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd


@runtime_checkable
class RegimeContextSource(Protocol):
    """Anything with the regime stage's ``context(frame)`` (e.g. ``RegimeModel``)."""

    def context(self, frame: pd.DataFrame) -> Any: ...


#: What :func:`context_array` accepts (a torch tensor too, duck-typed to avoid the import).
RegimeContextLike = pd.DataFrame | np.ndarray | RegimeContextSource


def context_array(context: Any, columns: Sequence[str], frame: pd.DataFrame | None = None,
                  dtype: type = np.float64) -> np.ndarray:
    """The ``columns`` of a regime context, one row per segment-frame row.

    :param context: a frame holding ``columns``; an array or tensor whose leading columns are
        ``columns`` in :data:`~cryptorl_core.schema.HMM_COLUMNS` order; or a regime model
        (then ``frame`` is required).
    :param columns: the context columns wanted (a prefix of ``HMM_COLUMNS`` for arrays).
    :param frame: the segment frame the context must align with (row count, and index for a
        context frame); not checked when None.
    :param dtype: output dtype.
    :return: ``(n_rows, len(columns))``, finite, C-contiguous.
    :raises ValueError: a missing column, a wrong shape or row count, a different index, NaN/inf.
    """
    if isinstance(context, RegimeContextSource) and not isinstance(context, pd.DataFrame | np.ndarray):
        if frame is None:
            raise ValueError("a regime model needs the segment frame to compute its context")
        context = context.context(frame)
    if isinstance(context, pd.DataFrame):
        missing = [c for c in columns if c not in context.columns]
        if missing:
            raise ValueError(f"regime context lacks columns {missing}")
        if frame is not None and len(context) == len(frame) and not context.index.equals(frame.index):
            raise ValueError("regime context and segment frame have different indexes")
        array = context[list(columns)].to_numpy(dtype=dtype)
    else:
        if hasattr(context, "detach"):  # a torch tensor
            context = context.detach().cpu().float().numpy()
        array = np.asarray(context, dtype=dtype)
        if array.ndim != 2 or array.shape[1] < len(columns):
            raise ValueError(f"regime context must be (n_rows, >= {len(columns)}), got {array.shape}")
        array = array[:, : len(columns)]
    if frame is not None and len(array) != len(frame):
        raise ValueError(f"regime context has {len(array)} rows, the segment frame {len(frame)}")
    if not np.isfinite(array).all():
        raise ValueError("regime context contains NaN or inf")
    return np.ascontiguousarray(array)
