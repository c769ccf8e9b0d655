"""PPO that also imitates a search: RLlib's PPO learner plus a distillation loss.

Expert iteration trains the policy towards the search's choices (worker/rl/labels.py).
Rather than a separate supervised phase, which PPO's next iterations would partly undo,
the imitation is a term of PPO's own loss, on every minibatch: PPO's loss (unchanged)
plus `distill_weight` x (cross-entropy of the policy's masked action distribution to
the search's soft target + `vf_loss_coeff` x squared error of the value to the labelled
discounted return), on `distill_batch_size` labelled decisions drawn at random (a CPU
generator of its own, seeded from the run's seed, so RLlib's and torch's global random
streams are untouched). With the weight at 0 nothing is loaded, drawn or computed: the
update is the stock `PPOTorchLearner`'s, bit for bit.

The labels are read once, when the learner is built, from a local directory named in
`learner_config_dict["distill"]` (`build_ppo_config` puts `PPOHyperparams`' distill
fields there); the training activity brings a store copy local first. The labels must
have been made with the round's env (window, nodes, objective, prior, backfilling).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from ray.rllib.algorithms.ppo.torch.ppo_torch_learner import PPOTorchLearner
from ray.rllib.core.columns import Columns

from worker.rl.labels import DistillData, distill_data, metadata_of, read_labels

LEARNER_CONFIG_KEY = "distill"
CROSS_ENTROPY_KEY = "distill_cross_entropy"
VALUE_LOSS_KEY = "distill_value_loss"
AGREEMENT_KEY = "distill_agreement"
EPISODES_KEY = "distill_episodes"
DECISIONS_KEY = "distill_decisions"


@dataclass(frozen=True)
class DistillTensors:
    obs: dict[str, torch.Tensor]
    target_actions: torch.Tensor
    target_probs: torch.Tensor
    returns: torch.Tensor

    @classmethod
    def of(cls, data: DistillData, device: torch.device | str = "cpu") -> DistillTensors:
        return cls(
            {k: torch.tensor(v, device=device) for k, v in data.obs.items()},
            torch.as_tensor(data.target_actions, device=device),
            torch.as_tensor(data.target_probs, device=device),
            torch.as_tensor(data.returns, device=device),
        )

    def __len__(self) -> int:
        return len(self.returns)

    def take(self, index: torch.Tensor) -> DistillTensors:
        return DistillTensors(
            {k: v[index] for k, v in self.obs.items()},
            self.target_actions[index],
            self.target_probs[index],
            self.returns[index],
        )


def distill_losses(module: Any, data: DistillTensors) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(cross-entropy to the soft targets, value MSE to the returns, share of decisions
    whose greedy action is the target's most likely one) of `module` on `data`. Rows
    without a target (a WAIT not imitated) count in the value loss only."""
    logits = module.masked_logits(data.obs)
    log_probs = torch.log_softmax(logits, dim=-1).gather(1, data.target_actions)
    imitated = data.target_probs.sum(-1) > 0
    count = imitated.sum().clamp(min=1)
    cross_entropy = -(data.target_probs * log_probs).sum(-1).sum() / count
    values = module.compute_values({Columns.OBS: data.obs})
    value_loss = F.mse_loss(values, data.returns)
    best = data.target_actions.gather(1, data.target_probs.argmax(-1, keepdim=True)).squeeze(1)
    agreement = ((logits.argmax(-1) == best) & imitated).sum() / count
    return cross_entropy, value_loss, agreement


class DistillPPOLearner(PPOTorchLearner):
    """PPO's learner with the distillation term (see the module docstring)."""

    def build(self) -> None:
        super().build()
        settings = dict(self.config.learner_config_dict.get(LEARNER_CONFIG_KEY) or {})
        self._distill_weight = float(settings.get("weight", 0.0))
        self._distill_batch_size = int(settings.get("batch_size", 256))
        self._distill: DistillTensors | None = None
        if self._distill_weight > 0:
            labels = settings.get("labels")
            if not labels:
                raise ValueError(
                    "distillation with a weight above 0 needs labelled data (ppo.distill_labels)"
                )
            table = read_labels(labels)
            self._distill = DistillTensors.of(distill_data(table), self._device)
            self._distill_episodes = len(metadata_of(table)["seeds"])
            self._distill_generator = torch.Generator().manual_seed(int(self.config.seed or 0))

    def compute_loss_for_module(
        self, *, module_id: str, config: Any, batch: dict[str, Any], fwd_out: dict[str, Any]
    ) -> torch.Tensor:
        total = super().compute_loss_for_module(
            module_id=module_id, config=config, batch=batch, fwd_out=fwd_out
        )
        if self._distill is None:
            return total
        size = min(self._distill_batch_size, len(self._distill))
        index = torch.randint(len(self._distill), (size,), generator=self._distill_generator)
        module = self.module[module_id].unwrapped()
        cross_entropy, value_loss, agreement = distill_losses(
            module, self._distill.take(index.to(self._device))
        )
        self.metrics.log_dict(
            {
                CROSS_ENTROPY_KEY: cross_entropy,
                VALUE_LOSS_KEY: value_loss,
                AGREEMENT_KEY: agreement,
                EPISODES_KEY: self._distill_episodes,
                DECISIONS_KEY: len(self._distill),
            },
            key=module_id,
            window=1,
        )
        return total + self._distill_weight * (cross_entropy + config.vf_loss_coeff * value_loss)
