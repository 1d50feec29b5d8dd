"""FiLM-conditioned feature extractor over the frozen encoder's embeddings.

Forward pass, for a batch of observations ``{market: t, position, w_cost}``::

    E     = embeddings[t]                      (B, tokens, d_model)  cache gather, or the
                                                                      frozen encoder (live)
    c     = hmm_context[t]                     (B, 5)
    g, b  = FiLM(c)                            (B, d_model) each; gamma = 1 + g, beta = b
    E'    = E * (1 + g)[:, None] + b[:, None]  per-channel modulation by the regime
    x     = [flatten(E'), position, w_cost]    (B, tokens * d_model + 2)
    f     = LeakyReLU(LayerNorm(Linear(x)))    (B, features_dim)
    out   = [f, c, position, w_cost]           (B, features_dim + 7)   with ``context_skip``

``context_skip`` hands the regime context (and the position and cost weight) to the actor and
critic heads as plain inputs too, beside the FiLM path: through FiLM alone the regime reaches
the heads only as a gain on the embedding, which the agent did not learn to read (see
``docs/EXPERIMENTS.md``). ``embedding=False`` drops the encoder's embedding (and FiLM) and
gives the heads ``[c, position, w_cost]`` only: the ablation of the encoder.

The market tensors are **not** part of the module's state: :func:`attach_market` hands them
to every extractor of a policy after construction (TQC and SAC build separate extractors for
the actor, the critic and the target critic; PPO shares one). So the SB3 zip holds only the
trainable weights, and ``policy_kwargs`` only small integers.

Re-attaching after loading a saved model::

    model = TQC.load("tqc.zip", device=device)            # extractors have no market yet
    market = MarketTensors.build(frame, hmm_model.context(frame), encoder, tokens=config.tokens, device=device)
    attach_market(model, market)                          # checks d_model / tokens / context
    action, _ = model.predict(obs, deterministic=True)

(:meth:`~cryptorl_core.agent.train.PolicyArtifact.load` does exactly this.)
"""

from __future__ import annotations

from typing import Any

import torch
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from cryptorl_core.agent.market_tensors import MarketTensors
from cryptorl_core.encoder.artifact import EncoderDimensionError
from cryptorl_core.schema import HMM_COLUMNS

#: Negative slope of the fusion projector's LeakyReLU.
LEAKY_SLOPE = 0.01


class ExtractorDimensionError(EncoderDimensionError):
    """The market tensors (encoder checkpoint or cache) do not fit the extractor's dimensions."""


class MarketNotAttachedError(RuntimeError):
    """The extractor ran before :func:`attach_market` gave it its market tensors."""


class FoundationFeatureExtractor(BaseFeaturesExtractor):
    """Frozen-encoder embeddings at row ``t``, FiLM-modulated by the HMM context, fused with
    the position and the cost weight.

    :param observation_space: the ``BatchCryptoEnv`` dict space (``market``, ``position``, ``w_cost``).
    :param d_model: embedding width of the encoder (checked against the market tensors).
    :param tokens: embedding tokens per row (checked against the market tensors).
    :param features_dim: output width.
    :param n_context: HMM context columns (5).
    :param film_hidden: hidden width of the FiLM generator.
    :param film_init_std: std of the FiLM output layer's initial weights (bias 0): gamma starts
        near 1 and beta near 0.
    :param context_skip: also pass the HMM context, position and cost weight to the heads.
    :param embedding: use the encoder's embedding (FiLM + fusion); False: context only.
    """

    def __init__(
        self,
        observation_space: spaces.Dict,
        d_model: int,
        tokens: int,
        features_dim: int = 512,
        n_context: int = len(HMM_COLUMNS),
        film_hidden: int = 64,
        film_init_std: float = 0.05,
        context_skip: bool = False,
        embedding: bool = True,
    ) -> None:
        direct = n_context + 2 if (context_skip or not embedding) else 0
        super().__init__(observation_space, (features_dim if embedding else 0) + direct)
        self.context_skip, self.embedding = bool(context_skip or not embedding), bool(embedding)
        missing = {"market", "position", "w_cost"} - set(observation_space.spaces)
        if missing:
            raise ValueError(f"observation space lacks keys {sorted(missing)}")
        self.d_model, self.tokens, self.n_context = int(d_model), int(tokens), int(n_context)
        self.film = nn.Sequential(
            nn.Linear(n_context, film_hidden), nn.SiLU(), nn.Linear(film_hidden, 2 * d_model)
        )
        film_out = self.film[-1]
        nn.init.normal_(film_out.weight, std=film_init_std)
        nn.init.zeros_(film_out.bias)
        self.fusion = nn.Sequential(
            nn.Linear(tokens * d_model + 2, features_dim),
            nn.LayerNorm(features_dim),
            nn.LeakyReLU(LEAKY_SLOPE),
        )
        # A plain attribute, not a buffer or submodule: never in state_dict, never pickled.
        self._market: MarketTensors | None = None

    # ------------------------------------------------------------------ market tensors

    @property
    def market(self) -> MarketTensors:
        if self._market is None:
            raise MarketNotAttachedError(
                "FoundationFeatureExtractor has no market tensors: call "
                "cryptorl_core.agent.attach_market(model, MarketTensors.build(...)) after "
                "creating or loading the model")
        return self._market

    def check_market(self, market: MarketTensors) -> None:
        """Raise :class:`ExtractorDimensionError` naming both values of every mismatch."""
        problems = []
        if market.d_model != self.d_model:
            problems.append(f"embedding width d_model: the policy was built for {self.d_model}, "
                            f"the encoder checkpoint/cache gives {market.d_model}")
        if market.tokens != self.tokens:
            problems.append(f"tokens per row: the policy was built for {self.tokens}, "
                            f"the market tensors give {market.tokens}")
        if market.n_context != self.n_context:
            problems.append(f"HMM context columns: the policy was built for {self.n_context}, "
                            f"the market tensors give {market.n_context}")
        if problems:
            raise ExtractorDimensionError("market tensors do not fit the policy: " + "; ".join(problems))

    def attach(self, market: MarketTensors) -> None:
        """Use ``market`` (validated, and moved to this module's device if needed)."""
        self.check_market(market)
        self._market = market.to(self.fusion[0].weight.device)

    def __getstate__(self) -> dict[str, Any]:
        # Pickling (e.g. deepcopy) never drags the segment's tensors along.
        state = self.__dict__.copy()
        state["_market"] = None
        return state

    # ------------------------------------------------------------------ forward

    def film_params(self, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(gamma, beta)``, each ``(batch, d_model)``, from the HMM context ``(batch, 5)``."""
        delta, beta = self.film(context).chunk(2, dim=-1)
        return 1.0 + delta, beta

    def forward(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        market = self.market
        index = observations["market"]
        context = market.context_at(index)
        agent_state = [observations["position"].reshape(-1, 1), observations["w_cost"].reshape(-1, 1)]
        parts = []
        if self.embedding:
            gamma, beta = self.film_params(context)
            emb = market.embeddings_at(index) * gamma.unsqueeze(1) + beta.unsqueeze(1)
            parts.append(self.fusion(torch.cat([emb.flatten(1), *agent_state], dim=1)))
        if self.context_skip:
            parts.extend([context.to(agent_state[0].dtype), *agent_state])
        return torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]


def foundation_extractors(model_or_policy: BaseAlgorithm | nn.Module) -> list[FoundationFeatureExtractor]:
    """Every distinct :class:`FoundationFeatureExtractor` of a model or policy."""
    policy = model_or_policy.policy if isinstance(model_or_policy, BaseAlgorithm) else model_or_policy
    seen: dict[int, FoundationFeatureExtractor] = {}
    for module in policy.modules():
        if isinstance(module, FoundationFeatureExtractor):
            seen.setdefault(id(module), module)
    return list(seen.values())


def attach_market(model_or_policy: BaseAlgorithm | nn.Module, market: MarketTensors) -> int:
    """Give every feature extractor of a model (actor, critics, target critics) the market tensors.

    All extractors share the same tensors (moved at most once to the policy's device).

    :param model_or_policy: an SB3 model or its policy.
    :param market: the segment's tensors.
    :return: number of extractors attached.
    :raises ExtractorDimensionError: the tensors do not fit the extractors.
    """
    extractors = foundation_extractors(model_or_policy)
    if not extractors:
        raise ValueError("the policy has no FoundationFeatureExtractor")
    market = market.to(extractors[0].fusion[0].weight.device)
    for extractor in extractors:
        extractor.attach(market)
    return len(extractors)


def extractor_kwargs(d_model: int, tokens: int, features_dim: int, film_hidden: int,
                     film_init_std: float, n_context: int = len(HMM_COLUMNS), context_skip: bool = False,
                     embedding: bool = True) -> dict[str, Any]:
    """``features_extractor_kwargs`` for SB3: small plain values only, safe to pickle."""
    return {"d_model": int(d_model), "tokens": int(tokens), "features_dim": int(features_dim),
            "n_context": int(n_context), "film_hidden": int(film_hidden), "film_init_std": float(film_init_std),
            "context_skip": bool(context_skip), "embedding": bool(embedding)}
