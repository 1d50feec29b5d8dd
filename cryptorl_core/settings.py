"""Environment variables and the storage layout, in one place (no Dagster import).

Every ``CRYPTORL_*`` variable the project reads is named here, with its default, so that
zero configuration works: with none set, the pipeline runs on the embedded synthetic market
with the ``quick`` profile and keeps all state under ``<repo>/storage``.

=====================  =====================================================  =====================
variable               what                                                   default
=====================  =====================================================  =====================
``CRYPTORL_STORAGE``   root of all local state (:class:`StorageLayout`)       ``<repo>/storage``
``CRYPTORL_PROFILE``   configuration profile (``cryptorl_core.profiles``)     ``quick``
``CRYPTORL_DATA_DIR``  folder of ``<SYMBOL>_1h.csv|parquet`` files            none: synthetic market
``CRYPTORL_DEDUP``     de-duplication policy for overlapping exports          none: overlaps fail
``CRYPTORL_DEVICE``    torch device for ``"auto"`` (set by the run launcher)  ``auto``
=====================  =====================================================  =====================

Series-coverage policy of a data folder (``cryptorl_core.data.coverage.SeriesCoverageConfig``
holds the defaults): ``CRYPTORL_ON_SHORT_SERIES`` (``truncate``, ``drop`` or ``fail``),
``CRYPTORL_MAX_GAP_CRYPTO_HOURS`` and ``CRYPTORL_MAX_GAP_MACRO_HOURS`` (whole hours).

An empty value counts as unset. Functions read the environment when called (not at import),
so a test's ``monkeypatch.setenv`` and a run worker's environment both take effect.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

STORAGE_ENV = "CRYPTORL_STORAGE"
PROFILE_ENV = "CRYPTORL_PROFILE"
DATA_DIR_ENV = "CRYPTORL_DATA_DIR"
DEDUP_ENV = "CRYPTORL_DEDUP"
DEVICE_ENV = "CRYPTORL_DEVICE"
ON_SHORT_SERIES_ENV = "CRYPTORL_ON_SHORT_SERIES"
MAX_GAP_CRYPTO_ENV = "CRYPTORL_MAX_GAP_CRYPTO_HOURS"
MAX_GAP_MACRO_ENV = "CRYPTORL_MAX_GAP_MACRO_HOURS"
COVERAGE_ENV_VARS = (ON_SHORT_SERIES_ENV, MAX_GAP_CRYPTO_ENV, MAX_GAP_MACRO_ENV)

#: Every variable above, for documentation and tests.
ENV_VARS = (STORAGE_ENV, PROFILE_ENV, DATA_DIR_ENV, DEDUP_ENV, DEVICE_ENV, *COVERAGE_ENV_VARS)

DEFAULT_PROFILE = "quick"
DEFAULT_DEVICE = "auto"
#: Name of the storage folder under the project root.
STORAGE_DIRNAME = "storage"

#: The source checkout holding this package (``cryptorl_core``'s parent).
PACKAGE_PARENT = Path(__file__).resolve().parents[1]


def env(name: str, default: str = "", environ: Mapping[str, str] | None = None) -> str:
    """The value of ``name``, stripped, or ``default`` when unset or empty."""
    value = (os.environ if environ is None else environ).get(name, "").strip()
    return value or default


def env_int(name: str, default: int, environ: Mapping[str, str] | None = None) -> int:
    """The whole number in ``name``, or ``default`` when unset or empty.

    :raises ValueError: the value is not a whole number (the variable is named).
    """
    raw = env(name, environ=environ)
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"${name}={raw!r} must be a whole number") from None


def is_set(name: str, environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``name`` has a non-empty value."""
    return bool(env(name, environ=environ))


def project_root() -> Path:
    """The repository root: the source checkout this package is imported from (it holds
    ``pyproject.toml``), else the current directory (a non-editable install)."""
    if (PACKAGE_PARENT / "pyproject.toml").is_file():
        return PACKAGE_PARENT
    return Path.cwd().resolve()


def storage_root(environ: Mapping[str, str] | None = None) -> Path:
    """``$CRYPTORL_STORAGE`` (``~`` expanded, made absolute) or ``<repo>/storage``."""
    value = env(STORAGE_ENV, environ=environ)
    root = Path(value).expanduser() if value else project_root() / STORAGE_DIRNAME
    return root.resolve()


def profile_name(environ: Mapping[str, str] | None = None) -> str:
    """``$CRYPTORL_PROFILE`` or ``quick``."""
    return env(PROFILE_ENV, DEFAULT_PROFILE, environ)


def data_dir(environ: Mapping[str, str] | None = None) -> str:
    """``$CRYPTORL_DATA_DIR`` or ``""`` (the embedded synthetic market)."""
    return env(DATA_DIR_ENV, environ=environ)


def dedup_policy(environ: Mapping[str, str] | None = None) -> str:
    """``$CRYPTORL_DEDUP`` or ``""`` (no de-duplication: overlapping exports are an error)."""
    return env(DEDUP_ENV, environ=environ)


def device_request(environ: Mapping[str, str] | None = None) -> str:
    """``$CRYPTORL_DEVICE`` (lower case) or ``auto``."""
    return env(DEVICE_ENV, DEFAULT_DEVICE, environ).lower()


@dataclass(frozen=True)
class StorageLayout:
    """The folders under the storage root. ``make clean`` removes the Dagster ones.

    ===============  ==========================================================  =============
    folder           what                                                        written by
    ===============  ==========================================================  =============
    ``history/``     runs and event logs (``runs.db``, ``runs/*.db``)             Dagster sqlite
    ``schedules/``   schedule and sensor state                                   Dagster sqlite
    ``logs/``        compute logs (stdout/stderr of each step)                   Dagster
    ``dagster/``     Dagster's local artifact storage (run files)                Dagster
    ``artifacts/``   published per-partition folders (plots, models, reports)    ``ArtifactStore``
    ``checkpoints/`` resumable training state                                    ``ArtifactStore``
    ``frames/``      DataFrame assets: ``<asset>/<partition>.parquet`` + ``.json``  frame IO manager
    ``io/``          other asset outputs (pickles), e.g. ``hmm_model/<partition>``  Dagster IO manager
    ===============  ==========================================================  =============
    """

    root: Path

    HISTORY = "history"
    SCHEDULES = "schedules"
    LOGS = "logs"
    DAGSTER = "dagster"
    ARTIFACTS = "artifacts"
    CHECKPOINTS = "checkpoints"
    FRAMES = "frames"
    IO = "io"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> StorageLayout:
        """The layout under :func:`storage_root`."""
        return cls(storage_root(environ))

    @property
    def history(self) -> Path:
        return self.root / self.HISTORY

    @property
    def schedules(self) -> Path:
        return self.root / self.SCHEDULES

    @property
    def logs(self) -> Path:
        return self.root / self.LOGS

    @property
    def dagster(self) -> Path:
        return self.root / self.DAGSTER

    @property
    def artifacts(self) -> Path:
        return self.root / self.ARTIFACTS

    @property
    def checkpoints(self) -> Path:
        return self.root / self.CHECKPOINTS

    @property
    def frames(self) -> Path:
        return self.root / self.FRAMES

    @property
    def io(self) -> Path:
        return self.root / self.IO

    def frame(self, asset: str, partition: str | None = None) -> Path:
        """Where the frame IO manager stores a DataFrame asset's partition."""
        return self.frames / asset / f"{partition or 'all'}.parquet"

    def artifact(self, asset: str, partition: str | None = None) -> Path:
        """An asset's published folder (``ArtifactStore.path``)."""
        return self.artifacts / asset / (partition or "all")


def storage_layout(environ: Mapping[str, str] | None = None) -> StorageLayout:
    """The storage layout under ``$CRYPTORL_STORAGE`` or ``<repo>/storage``."""
    return StorageLayout.from_env(environ)
