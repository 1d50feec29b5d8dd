"""The code location: every asset and check of ``cryptorl_dagster.assets``, the resources,
and the jobs a person launches."""

from __future__ import annotations

import warnings

import dagster as dg

# Partitioned asset checks are a preview feature in Dagster 1.13 (`AssetCheckSpec(partitions_def=...)`
# emits a PreviewWarning); the warning would repeat for every check at every load.
warnings.filterwarnings("ignore", category=dg.PreviewWarning)

from cryptorl_dagster import assets as assets_package  # noqa: E402
from cryptorl_dagster.resources import default_resources  # noqa: E402

all_assets = dg.load_assets_from_package_module(assets_package)
all_checks = dg.load_asset_checks_from_package_module(assets_package)

#: The unpartitioned assets that read every segment's published results (not GPU-tagged):
#: materialized after the per-segment lineage (``cli.py``'s backfill) or on their own.
CROSS_SEGMENT_ASSETS = ("hmm_wfo_metrics", "wfo_summary")

#: Materialize the whole lineage of one segment (pick the partition in the UI).
segment_job = dg.define_asset_job(
    "segment_pipeline",
    selection=dg.AssetSelection.all() - dg.AssetSelection.keys(*CROSS_SEGMENT_ASSETS),
    description="Every per-segment asset of one walk-forward segment, with its checks.",
)

defs = dg.Definitions(
    assets=all_assets,
    asset_checks=all_checks,
    jobs=[segment_job],
    resources=default_resources(),
)
