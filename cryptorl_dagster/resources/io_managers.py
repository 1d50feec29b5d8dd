"""Parquet IO manager for DataFrame assets (market slices, segment frames)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import dagster as dg
import pandas as pd

from cryptorl_core.settings import storage_layout


class ParquetFrameIOManager(dg.ConfigurableIOManager):
    """Stores each partition of a DataFrame asset as ``<asset>/<partition>.parquet``.

    ``DataFrame.attrs`` (fitted parameters, segment boundaries) go to a JSON sidecar.
    Both files are written to a temporary name and renamed, so a crash mid-write never
    leaves a half-written partition in place of the previous one.

    :param base_dir: root folder; empty means ``<storage>/frames``.
    """

    base_dir: str = ""

    def _path(self, context: dg.OutputContext | dg.InputContext) -> Path:
        root = Path(self.base_dir) if self.base_dir else storage_layout().frames
        key = context.asset_partition_key if context.has_asset_partitions else "all"
        return root.joinpath(*context.asset_key.path) / f"{key}.parquet"

    def handle_output(self, context: dg.OutputContext, obj: pd.DataFrame) -> None:
        path = self._path(context)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".parquet.tmp")
        frame = obj.copy()
        frame.attrs = {}
        frame.to_parquet(tmp)
        meta_tmp = path.with_suffix(".json.tmp")
        meta_tmp.write_text(json.dumps(obj.attrs, default=str))
        os.replace(tmp, path)
        os.replace(meta_tmp, path.with_suffix(".json"))
        context.add_output_metadata({"path": dg.MetadataValue.path(str(path))})

    def load_input(self, context: dg.InputContext) -> pd.DataFrame:
        path = self._path(context)
        if not path.exists():
            raise FileNotFoundError(f"{path}: upstream partition not materialized yet")
        frame = pd.read_parquet(path)
        sidecar = path.with_suffix(".json")
        if sidecar.exists():
            frame.attrs = json.loads(sidecar.read_text())
        return frame
