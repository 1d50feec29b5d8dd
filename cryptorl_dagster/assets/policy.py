"""``tqc_policy``: the FiLM-conditioned TQC agent trained on one segment over the frozen encoder.

Checkpoints live in ``artifacts.checkpoint_dir("tqc_policy", key)``, so a cancelled run
(the step gets Dagster's interrupt: the trainer saves a checkpoint first) or a crashed one
resumes when the partition is materialized again. Final files are published through
``artifacts.publish``: a failed or cancelled run never replaces the previous policy.
"""


from typing import Any

import dagster as dg
import pandas as pd

from cryptorl_core.agent import (
    AgentConfig,
    PolicyArtifact,
    PolicyTrainResult,
    segment_market,
    train_policy,
)
from cryptorl_core.agent.plots import training_curves_png
from cryptorl_core.device import resolve_device
from cryptorl_core.encoder import EncoderArtifact
from cryptorl_core.regime.model import RegimeModel
from cryptorl_dagster.metadata import markdown_table, png_markdown
from cryptorl_dagster.partitions import segment_partitions
from cryptorl_dagster.resources import ArtifactStore, ProfileResource
from cryptorl_dagster.run_config import RunOverrides
from cryptorl_dagster.tags import GPU_TAGS

ASSET_NAME = "tqc_policy"
#: The run-config fields that belong to the env configuration only.
ENV_FIELDS = ("timing_bonus_scale", "sizing", "risk_aversion")


class PolicyRunConfig(RunOverrides):
    """Per-run overrides of the profile's agent configuration (launchpad / tests); unset
    fields keep the profile's values.

    :param total_timesteps: env transitions to train on.
    :param n_envs: parallel training envs.
    :param eval_freq: env transitions between evaluations.
    :param checkpoint_freq: env transitions between checkpoints.
    :param algo: ``tqc``, ``sac``, ``ppo`` (seed 004's entropy coefficient, gradient clip and
        KL target), or plan B's ``dqn`` (over the env's 0.1 position grid) or ``a2c``.
    :param seed: training seed.
    :param n_seeds: agents trained; the best live one on the eval window is kept.
    :param seed_workers: processes training those seeds at once (1: one after another).
    :param prefer_live_on_eval: rank policies live on the eval month itself above those live on
        the train probe only, then by eval reward.
    :param select_after_discipline: keep no checkpoint from before the end of the curriculum's
        Discipline phase.
    :param embedding: feed the frozen encoder's FiLM-modulated embedding to the heads (the
        seed's design; the profiles read the HMM context directly).
    :param timing_bonus_scale: weight of seed 004's delayed timing bonus in the reward (+5 for a
        good BUY, -2 for a bad one; 0: off).
    :param sizing: ``agent`` (the profiles'), ``vol_target`` (the agent sets direction and
        timing, the ``vol_target`` rule the size) or ``vol_scaled`` (the agent's target times the
        ``vol_target`` multiplier; the profiles' until backfill 14).
    :param risk_aversion: relative risk aversion of the step utility in the reward (1: log
        growth, the seed's).
    :param counterfactual_fraction: share of each sampled TQC/SAC batch replayed with a uniform
        action and held position, priced by the env's step formula (0: none).
    """

    total_timesteps: int | None = None
    n_envs: int | None = None
    eval_freq: int | None = None
    checkpoint_freq: int | None = None
    algo: str | None = None
    seed: int | None = None
    n_seeds: int | None = None
    seed_workers: int | None = None
    prefer_live_on_eval: bool | None = None
    select_after_discipline: bool | None = None
    embedding: bool | None = None
    timing_bonus_scale: float | None = None
    sizing: str | None = None
    risk_aversion: float | None = None
    counterfactual_fraction: float | None = None

    def apply(self, agent: AgentConfig) -> AgentConfig:
        """``agent`` with the fields this run sets; :data:`ENV_FIELDS` are the env's, and
        ``n_envs`` sets both the agent's and its env's."""
        changes = self.overrides()
        env_changes = {k: changes.pop(k) for k in ENV_FIELDS if k in changes}
        if "n_envs" in changes:
            env_changes["n_envs"] = changes["n_envs"]
        if env_changes:
            changes["env"] = agent.env.with_overrides(**env_changes)
        return agent.replace(**changes) if changes else agent


def agent_config_for(profile: ProfileResource, run: PolicyRunConfig | None = None) -> AgentConfig:
    """The profile's agent configuration with the run's overrides applied (seed 004's plan B
    ``simple`` profile is chosen with the ``profile`` resource, since it changes the features too)."""
    config = profile.pipeline().agent
    return config if run is None else run.apply(config)


def _metadata(result: PolicyTrainResult, artifact: PolicyArtifact, png: bytes, device: str) -> dict[str, Any]:
    m = result.metrics()
    ev = result.eval_stats
    evals = pd.DataFrame(result.evals)
    table = evals[["step", "reward", "nav", "n_trades", "modal_share", "eligible"]].set_index("step") if not evals.empty else None
    meta: dict[str, Any] = {
        "algo": result.config.algo,
        "device": device,
        "seed": result.seed,
        "num_timesteps": result.num_timesteps,
        "resumed_from_step": result.start_timesteps,
        "kept_checkpoint": result.kept_checkpoint,
        "stopped_early": result.stopped_early,
        "overfit_warning_at_step": result.overfit_warned_at,
        "env_steps_per_s": round(result.env_steps_per_s, 1),
        "eval_nav": ev.nav,
        "eval_action_std": ev.action_std,
        "eval_trades": ev.n_trades,
        "eval_modal_share": ev.modal_share,
        "collapsed": result.collapsed,
        "collapse_rule": dg.MetadataValue.json(result.config.collapse.as_dict()),
        "collapse_reasons": dg.MetadataValue.json(result.extra.get("collapse", {})),
        "model_path": dg.MetadataValue.path(artifact.model_path),
        "config": dg.MetadataValue.json(result.config.as_dict()),
        "training_environment": dg.MetadataValue.json(result.extra.get("environment", {})),
        "metrics": dg.MetadataValue.json({k: v for k, v in m.items() if isinstance(v, int | float | str | bool)}),
        "training_curves": png_markdown(png, "training curves"),
    }
    if table is not None:
        meta["evaluations"] = markdown_table(table)
    runs = result.extra.get("seed_runs", [])
    if runs:
        meta["seed_runs"] = markdown_table(pd.DataFrame(runs).set_index("seed"))
    rule = ("checkpoints live on the eval window first, then those live on the train probe only; the best "
            "eval reward within each" if result.config.prefer_live_on_eval else
            "best eval reward among checkpoints live on the eval window or the train probe")
    if result.config.select_after_discipline:
        rule += f"; none from before step {result.config.select_from_step:,} (the end of Discipline)"
    if result.config.keep_last_live:
        rule = f"each seed's last model when it is live, else its checkpoint by this rule: {rule}"
    meta["selection"] = f"{rule}; over {len(runs) or 1} seed(s); kept seed {result.seed}, {result.kept_checkpoint}"
    return meta


@dg.asset(partitions_def=segment_partitions, group_name="agent", op_tags=GPU_TAGS, kinds={"pytorch"})
def tqc_policy(
    context: dg.AssetExecutionContext,
    config: PolicyRunConfig,
    features: pd.DataFrame,
    hmm_model: RegimeModel,
    mae_encoder: EncoderArtifact,
    artifacts: ArtifactStore,
    profile: ProfileResource,
) -> dg.Output[PolicyArtifact]:
    """TQC (sb3-contrib) in the batched env on the segment's train window, over the frozen
    encoder's embedding cache FiLM-modulated by the HMM regime context; curriculum, entropy
    floor, evaluation on the eval window with best-model selection and early stopping.
    Resumes from its last checkpoint; publishes ``tqc.zip`` (best), ``final_model.zip``,
    ``config.json``, ``history.json`` and the training curves."""
    key = context.partition_key
    agent = agent_config_for(profile, config)
    device = resolve_device("auto")  # honours $CRYPTORL_DEVICE set by the run launcher
    context.log.info(f"training {agent.algo} for {key} on {device} ({profile.name} profile, "
                     f"{agent.total_timesteps} steps, {agent.n_envs} envs)")
    market = segment_market(features, hmm_model.context(features), mae_encoder.load(device), agent, device)
    checkpoint_dir = artifacts.checkpoint_dir(ASSET_NAME, key)
    with artifacts.publish(ASSET_NAME, key) as staging:
        result = train_policy(features, market, agent, out_dir=staging, checkpoint_dir=checkpoint_dir,
                              device=device, tensorboard_dir=checkpoint_dir.parent / f"{key}-tensorboard")
        png = training_curves_png(result)
        (staging / "training_curves.png").write_bytes(png)
    if result.resumed:
        context.log.info(f"resumed from the checkpoint at step {result.start_timesteps}")
    if result.collapsed:
        context.log.warning(f"policy looks collapsed on the eval window: action std {result.eval_stats.action_std:.3f}, "
                            f"{result.eval_stats.n_trades:.0f} trades")
    final = artifacts.path(ASSET_NAME, key)
    artifact = PolicyArtifact(
        path=str(final), model_path=str(final / result.model_path.name),
        final_model_path=str(final / result.final_model_path.name), config_path=str(final / result.config_path.name),
        algo=agent.algo, config=agent.as_dict(), metrics=result.metrics(),
        encoder_path=mae_encoder.path, d_model=int(result.extra["d_model"]),
        tokens=int(result.extra["tokens"]),
    )
    return dg.Output(artifact, metadata=_metadata(result, artifact, png, str(device)))
