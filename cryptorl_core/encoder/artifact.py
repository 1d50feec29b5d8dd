"""Saving and loading a trained encoder (``encoder.pth``) with dimension validation.

The file is a plain dict that loads with ``torch.load(..., weights_only=True)``:
tensors, dicts, lists, strings and numbers only::

    {"format_version": 1, "state_dict": {...}, "config": MAEConfig.as_dict(),
     "n_features": 57, "feature_columns": [...], "norm_fingerprint": "d7d2...",
     "extra": {...}}

Loading checks the stored architecture and feature columns against what the caller
expects (the seed's ModelDimensionsValidator) and turns every failure into one of two
errors that name the problem instead of a stack trace from deep inside torch.
"""

from __future__ import annotations

import json
import os
import pickle
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from cryptorl_core.device import resolve_device
from cryptorl_core.encoder.config import ARCHITECTURE_FIELDS, MAEConfig
from cryptorl_core.encoder.model import CryptoMAE

ENCODER_FILENAME = "encoder.pth"
FORMAT_VERSION = 1
_REQUIRED_KEYS = ("format_version", "state_dict", "config", "n_features", "feature_columns",
                  "norm_fingerprint")


class EncoderCheckpointError(RuntimeError):
    """Base class of the encoder checkpoint errors."""


class EncoderDimensionError(EncoderCheckpointError, ValueError):
    """The checkpoint's architecture or feature columns differ from the expected ones."""


class CorruptCheckpointError(EncoderCheckpointError):
    """The file is truncated, corrupt, or not an encoder checkpoint."""


@dataclass
class LoadedEncoder:
    """An encoder read back from disk.

    :param model: the model, in ``eval()`` mode, on the requested device.
    :param config: its configuration.
    :param feature_columns: input columns, in order.
    :param norm_fingerprint: fingerprint of the feature normalisation it was trained on.
    :param extra: free-form metadata stored with it (metrics, seed, segment).
    :param path: the file (None for :meth:`in_memory`).
    """

    model: CryptoMAE
    config: MAEConfig
    feature_columns: list[str]
    norm_fingerprint: str
    extra: dict[str, Any]
    path: Path | None

    @classmethod
    def in_memory(cls, model: CryptoMAE, feature_columns: Sequence[str]) -> LoadedEncoder:
        """An encoder that was never saved (just trained, or untrained in a test or benchmark),
        in the form the agent's market tensors take.

        :param model: the model.
        :param feature_columns: its input columns, in order.
        :raises EncoderDimensionError: the column count differs from the model's input width.
        """
        columns = list(feature_columns)
        if len(columns) != model.n_features:
            raise EncoderDimensionError(
                f"feature columns: {len(columns)} names given, but the model's input width is {model.n_features}")
        return cls(model=model, config=model.config, feature_columns=columns, norm_fingerprint="", extra={},
                   path=None)


@dataclass
class EncoderArtifact:
    """What the ``mae_encoder`` stage hands downstream: a pointer to ``encoder.pth`` and
    a summary. Plain data (picklable by any IO manager).

    :param path: the published ``encoder.pth``.
    :param config: :meth:`MAEConfig.as_dict` of the encoder.
    :param feature_columns: input columns, in order.
    :param norm_fingerprint: fingerprint of the feature normalisation.
    :param metrics: best epoch, losses, parameter count, timings, device, seed.
    """

    path: str
    config: dict[str, Any]
    feature_columns: list[str]
    norm_fingerprint: str
    metrics: dict[str, Any] = field(default_factory=dict)

    def load(self, device: str | torch.device = "cpu") -> LoadedEncoder:
        """Load the encoder, checking it against this artifact's config and columns."""
        return load_encoder(self.path, expected_config=MAEConfig.from_dict(self.config),
                            expected_columns=self.feature_columns, device=device)


def _resolve_path(path: str | os.PathLike) -> Path:
    """A folder means the ``encoder.pth`` inside it."""
    p = Path(path)
    return p / ENCODER_FILENAME if p.is_dir() else p


def _plain(value: Any) -> Any:
    """``value`` reduced to JSON types, so the file stays ``weights_only``-loadable."""
    return json.loads(json.dumps(value, default=str))


def atomic_torch_save(obj: Any, path: Path) -> None:
    """``torch.save`` to a temporary file beside ``path``, then rename over it, so a crash
    mid-write never leaves a half-written file under the final name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def save_encoder(path: str | os.PathLike, model: CryptoMAE, config: MAEConfig,
                 feature_columns: Sequence[str], norm_fingerprint: str,
                 extra: dict[str, Any] | None = None) -> Path:
    """Write an encoder checkpoint.

    :param path: file, or folder to hold ``encoder.pth``.
    :param model: the trained model (weights are copied to the CPU).
    :param config: its configuration.
    :param feature_columns: input columns, in order (their count must equal the model's width).
    :param norm_fingerprint: :meth:`FeatureParams.fingerprint` of the training features.
    :param extra: JSON-like metadata (non-JSON values are stored as strings).
    :return: the file written.
    """
    columns = list(feature_columns)
    if len(columns) != model.n_features:
        raise EncoderDimensionError(
            f"feature columns: {len(columns)} names given, but the model's input width is {model.n_features}")
    target = _resolve_path(path)
    payload = {
        "format_version": FORMAT_VERSION,
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "config": config.as_dict(),
        "n_features": model.n_features,
        "feature_columns": columns,
        "norm_fingerprint": str(norm_fingerprint),
        "extra": _plain(extra or {}),
    }
    atomic_torch_save(payload, target)
    return target


def _read_payload(path: Path) -> dict[str, Any]:
    """``torch.load`` with every low-level failure turned into :class:`CorruptCheckpointError`."""
    if not path.exists():
        raise FileNotFoundError(f"encoder checkpoint {path} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError,
            zipfile.BadZipFile, KeyError, AttributeError, TypeError) as exc:
        raise CorruptCheckpointError(
            f"encoder checkpoint {path} is truncated or corrupt ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else 'no detail'})") from exc
    if not isinstance(payload, dict) or any(k not in payload for k in _REQUIRED_KEYS):
        have = sorted(payload) if isinstance(payload, dict) else type(payload).__name__
        raise CorruptCheckpointError(
            f"{path} is not an encoder checkpoint: expected keys {list(_REQUIRED_KEYS)}, found {have}")
    if payload["format_version"] != FORMAT_VERSION:
        raise CorruptCheckpointError(
            f"{path}: format version {payload['format_version']}, this code reads {FORMAT_VERSION}")
    return payload


def dimension_mismatches(stored: MAEConfig, stored_columns: Sequence[str],
                         expected: MAEConfig | None = None,
                         expected_columns: Sequence[str] | None = None) -> list[str]:
    """Human-readable differences between a checkpoint's dimensions and the expected ones.

    :return: one line per mismatch, naming the checkpoint's and the expected value; empty
        when everything matches.
    """
    problems = []
    if expected is not None:
        for name in ARCHITECTURE_FIELDS:
            have, want = getattr(stored, name), getattr(expected, name)
            if have != want:
                problems.append(f"{name}: checkpoint has {have}, expected {want}")
    if expected_columns is not None:
        have_cols, want_cols = list(stored_columns), list(expected_columns)
        if len(have_cols) != len(want_cols):
            problems.append(f"input width (n_features): checkpoint has {len(have_cols)}, "
                            f"expected {len(want_cols)}")
        elif have_cols != want_cols:
            diff = [(i, a, b) for i, (a, b) in enumerate(zip(have_cols, want_cols, strict=True)) if a != b]
            i, a, b = diff[0]
            problems.append(f"feature columns: {len(diff)} differ, first at position {i}: "
                            f"checkpoint has {a!r}, expected {b!r}")
    return problems


def load_encoder(path: str | os.PathLike, expected_config: MAEConfig | None = None,
                 expected_columns: Sequence[str] | None = None,
                 device: str | torch.device = "cpu") -> LoadedEncoder:
    """Read an encoder checkpoint, validate its dimensions and rebuild the model.

    :param path: ``encoder.pth`` or the folder holding it.
    :param expected_config: if given, the architecture fields (``window``, ``d_model``,
        ``n_heads``, ``n_layers``, ``dim_feedforward``, ``decoder_hidden``) must match.
    :param expected_columns: if given, the feature columns must match (count and order).
    :param device: where to put the model.
    :raises FileNotFoundError: no such file.
    :raises CorruptCheckpointError: truncated or corrupt file, or weights that do not fit
        the stored config; the message names the file.
    :raises EncoderDimensionError: a dimension or the columns differ; the message names the
        checkpoint's and the expected value of each.
    """
    file = _resolve_path(path)
    payload = _read_payload(file)
    try:
        config = MAEConfig.from_dict(payload["config"])
    except (TypeError, ValueError) as exc:
        raise CorruptCheckpointError(f"{file}: unreadable config ({exc})") from exc
    columns = list(payload["feature_columns"])
    problems = dimension_mismatches(config, columns, expected_config, expected_columns)
    if len(columns) != payload["n_features"]:
        problems.append(f"input width: checkpoint stores {len(columns)} column names "
                        f"but n_features={payload['n_features']}")
    if problems:
        raise EncoderDimensionError(f"encoder {file} does not fit: " + "; ".join(problems))
    model = CryptoMAE(int(payload["n_features"]), config)
    try:
        model.load_state_dict(payload["state_dict"], strict=True)
    except RuntimeError as exc:
        raise CorruptCheckpointError(
            f"{file}: weights do not match the stored config ({str(exc).splitlines()[0]})") from exc
    model.to(resolve_device(device)).eval()
    return LoadedEncoder(model=model, config=config, feature_columns=columns,
                         norm_fingerprint=str(payload["norm_fingerprint"]),
                         extra=dict(payload["extra"]), path=file)
