"""PPO with the distillation term, real RLlib at tiny budgets: at weight 0 the update is
the stock learner's bit for bit; above 0 the policy moves towards the search's targets."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from worker.contracts.search import SearchOptions
from worker.rl.config import PPOHyperparams, TrainRoundConfig, build_ppo_config
from worker.rl.labels import LabelRequest, distill_data, label, label_seeds, read_labels, write_labels
from worker.settings import WorkerSettings
from worker.sim.workloads import WorkloadSpec

pytestmark = [pytest.mark.rl, pytest.mark.filterwarnings("ignore:.*Overriding environment:UserWarning")]

SPEC = WorkloadSpec("deadline-tight", nodes=4, jobs=40)
WINDOW = 8
TINY = PPOHyperparams(
    lr=3e-3,
    lr_final=None,
    train_batch_size=256,
    minibatch_size=64,
    num_epochs=2,
    num_envs_per_env_runner=4,
    embed_dim=8,
    hidden=16,
    distill_batch_size=128,
)


@pytest.fixture(scope="module")
def settings() -> Iterator[WorkerSettings]:
    import ray

    from worker.rl.runtime import ensure_ray

    started_here = not ray.is_initialized()
    root = Path(tempfile.mkdtemp(prefix="rld-", dir="/tmp"))
    settings = WorkerSettings(data_dir=root)
    ensure_ray(settings)
    yield settings
    if started_here:
        ray.shutdown()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def labels(settings: WorkerSettings) -> str:
    request = LabelRequest(
        SPEC,
        search="search:edf+fastest",
        options=SearchOptions(candidates=4, depth=1, budget_ms=60_000),
        window=WINDOW,
        gamma=TINY.gamma,
    )
    directory = settings.data_dir / "labels"
    write_labels(label(request, label_seeds(0, 4)), directory)
    return str(directory)


def _train(settings: WorkerSettings, ppo: PPOHyperparams, iterations: int, stock: bool = False) -> tuple:
    """(module weights, last learner results, the learner module) after `iterations`."""
    from ray.rllib.algorithms.ppo.torch.ppo_torch_learner import PPOTorchLearner
    from ray.rllib.core import DEFAULT_MODULE_ID
    from ray.rllib.utils.metrics import LEARNER_RESULTS

    config = TrainRoundConfig(
        workload=SPEC, window=WINDOW, ppo=ppo, seed=5, output_dir=str(settings.data_dir)
    )
    ppo_config = build_ppo_config(config)
    if stock:
        ppo_config.learners(learner_class=PPOTorchLearner)
    algo = ppo_config.build_algo()
    try:
        for _ in range(iterations):
            result = algo.train()
        module = algo.learner_group._learner.module[DEFAULT_MODULE_ID]
        weights = {k: v.detach().clone() for k, v in module.state_dict().items()}
        return weights, result[LEARNER_RESULTS][DEFAULT_MODULE_ID], module
    finally:
        algo.stop()


def test_weight_zero_is_the_stock_ppo_learner_bit_for_bit(settings: WorkerSettings, labels: str) -> None:
    stock_weights, stock_results, _ = _train(settings, TINY, 1, stock=True)
    weights, results, _ = _train(settings, replace(TINY, distill_labels=labels), 1)
    assert stock_weights.keys() == weights.keys()
    for name, value in stock_weights.items():
        assert torch.equal(value, weights[name]), name
    for key in ("total_loss", "policy_loss", "vf_loss", "entropy"):
        assert results[key] == stock_results[key], key
    assert "distill_cross_entropy" not in results


def test_distillation_moves_the_policy_towards_the_search(settings: WorkerSettings, labels: str) -> None:
    from worker.rl.distill import DistillTensors, distill_losses

    data = DistillTensors.of(distill_data(read_labels(labels)))
    _, plain_results, plain = _train(settings, TINY, 3)
    _, results, distilled = _train(settings, replace(TINY, distill_weight=2.0, distill_labels=labels), 3)
    with torch.no_grad():
        plain_ce, plain_vf, plain_agreement = distill_losses(plain, data)
        ce, vf, agreement = distill_losses(distilled, data)
    assert "distill_cross_entropy" in results and "distill_cross_entropy" not in plain_results
    assert (results["distill_episodes"], results["distill_decisions"]) == (4, len(data))
    assert float(ce) < 0.8 * float(plain_ce), (float(ce), float(plain_ce))
    assert float(vf) < float(plain_vf), (float(vf), float(plain_vf))
    assert float(agreement) > float(plain_agreement), (float(agreement), float(plain_agreement))


def test_rows_without_a_target_count_in_the_value_loss_only() -> None:
    """A WAIT the search chose but the labels do not imitate (an empty target) moves neither
    the cross-entropy nor the agreement; its return still trains the value."""
    from ray.rllib.core.columns import Columns

    from worker.rl.distill import DistillTensors, distill_losses

    class Scores:
        def masked_logits(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
            return obs["logits"]

        def compute_values(self, batch: dict) -> torch.Tensor:
            return batch[Columns.OBS]["value"]

    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 5.0]])
    data = DistillTensors(
        {"logits": logits, "value": torch.tensor([1.0, 3.0])},
        target_actions=torch.tensor([[0], [0]]),
        target_probs=torch.tensor([[1.0], [0.0]]),
        returns=torch.tensor([1.0, 1.0]),
    )
    cross_entropy, value_loss, agreement = distill_losses(Scores(), data)
    assert float(cross_entropy) == pytest.approx(-float(torch.log_softmax(logits[0], -1)[0]))
    assert float(agreement) == 1.0
    assert float(value_loss) == pytest.approx(2.0)
