"""Module-only inference: load a trained policy without Ray and act greedily.

Why module-only: a schedule request must not start Ray or build an Algorithm (~1.5 s and
two CPU-hungry actors). `RLModule.from_checkpoint` on the module's own sub-directory
takes ~0.1 s, and the module's observation needs no connector (see module.py), so the
hot path is one forward + argmax. The forward runs the module's weights in numba
(worker.rl.fast_forward, a few us per decision) rather than torch (~60-100 us of
dispatch overhead per batch-1 call); the torch path stays for checking and as an option.

Loaded modules are kept in a small LRU keyed by the resolved checkpoint path (and the
state file's mtime, so a checkpoint rewritten in place is reloaded): the inference
worker serves many requests for the same few checkpoints from many threads. A checkpoint
from a remote artifact store reaches this module as its local cache directory, whose
name carries a signature of the objects behind the URI (worker/artifacts.py), so an
object replaced at the same URI arrives under a new path and is loaded anew.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from worker.rl.fast_forward import ForwardWeights
from worker.rl.fast_forward import masked_logits as fast_masked_logits
from worker.rl.module import PairScoringModule
from worker.settings import get_settings
from worker.sim.features import PRIOR_KEY
from worker.sim.policy import DecisionView

logger = logging.getLogger(__name__)

MODULE_SUBDIR = Path("learner_group") / "learner" / "rl_module" / "default_policy"
"""Where an Algorithm checkpoint keeps the (single-agent) policy module."""
_CTOR_FILE = "class_and_ctor_args.pkl"


class CheckpointError(ValueError):
    """A checkpoint that is missing, corrupt or not one of ours; the message names the
    problem and the path."""


def module_dir(checkpoint: str | Path) -> Path:
    """The RLModule directory of `checkpoint`: an Algorithm checkpoint or the module
    directory itself."""
    path = Path(checkpoint).expanduser()
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}")
    if not path.is_dir():
        raise CheckpointError(f"checkpoint is not a directory: {path}")
    path = path.resolve()
    for candidate in (path / MODULE_SUBDIR, path):
        if (candidate / _CTOR_FILE).is_file():
            return candidate
    raise CheckpointError(
        f"not an RLlib policy checkpoint (no {MODULE_SUBDIR / _CTOR_FILE} or {_CTOR_FILE}): {path}"
    )


def validate_algorithm_checkpoint(checkpoint: str | Path) -> Path:
    """Raise CheckpointError unless `checkpoint` looks like a full Algorithm checkpoint
    (what resuming training needs, not just the module)."""
    path = Path(checkpoint).expanduser()
    if not path.is_dir():
        raise CheckpointError(f"checkpoint not found: {path}")
    for required in ("rllib_checkpoint.json", "learner_group"):
        if not (path / required).exists():
            raise CheckpointError(f"not a full training checkpoint (missing {required}): {path.resolve()}")
    module_dir(path)
    return path.resolve()


def _state_mtime(directory: Path) -> int:
    stamps = [p.stat().st_mtime_ns for p in directory.iterdir() if p.is_file()]
    return max(stamps, default=0)


def _load(directory: Path) -> PairScoringModule:
    from ray.rllib.core.rl_module.rl_module import RLModule

    try:
        module = RLModule.from_checkpoint(str(directory), inference_only=True)
    except Exception as error:  # pickle, pyarrow, torch and RLlib all raise their own
        raise CheckpointError(
            f"cannot load policy checkpoint {directory}: {type(error).__name__}: {error}"
        ) from error
    if not isinstance(module, PairScoringModule):
        raise CheckpointError(
            f"incompatible checkpoint {directory}: holds a {type(module).__name__}, "
            f"expected {PairScoringModule.__module__}.{PairScoringModule.__name__}"
        )
    module.eval()
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    return module


class _ModuleCache:
    """Thread-safe LRU of loaded modules."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple[str, int], PairScoringModule] = OrderedDict()

    def get(self, checkpoint: str | Path, capacity: int) -> PairScoringModule:
        directory = module_dir(checkpoint)
        key = (str(directory), _state_mtime(directory))
        with self._lock:
            module = self._entries.get(key)
            if module is not None:
                self._entries.move_to_end(key)
                return module
            module = _load(directory)
            self._entries[key] = module
            while len(self._entries) > max(capacity, 1):
                self._entries.popitem(last=False)
            return module

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


_cache = _ModuleCache()


def load_module(checkpoint: str | Path) -> PairScoringModule:
    """The inference-only policy module of `checkpoint` (cached); no Ray needed."""
    return _cache.get(checkpoint, get_settings().policy_cache_size)


def clear_cache() -> None:
    _cache.clear()


def obs_to_tensors(obs: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """A single observation as a batch of one, sharing memory with the numpy arrays."""
    return {key: torch.from_numpy(value).unsqueeze(0) for key, value in obs.items()}


OBS_KEYS = ("jobs", "nodes", "pairs", "global", "action_mask")
Scorer = Callable[[dict[str, torch.Tensor]], torch.Tensor]


def obs_keys(module: PairScoringModule) -> tuple[str, ...]:
    """What the module reads: the base observation, plus its teacher's choice."""
    return (*OBS_KEYS, PRIOR_KEY) if module.prior else OBS_KEYS


class _Positional(torch.nn.Module):
    """masked_logits with positional tensor arguments, the form torch.jit.trace takes."""

    def __init__(self, module: PairScoringModule) -> None:
        super().__init__()
        self.module = module
        self.keys = obs_keys(module)

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        return self.module.masked_logits(dict(zip(self.keys, tensors, strict=True)))


def _example(module: PairScoringModule) -> tuple[torch.Tensor, ...]:
    spaces = module.observation_space
    example = {key: torch.zeros((1, *spaces[key].shape)) for key in OBS_KEYS}
    example["action_mask"] = torch.ones_like(example["action_mask"])
    example[PRIOR_KEY] = torch.zeros_like(example["action_mask"])
    return tuple(example[key] for key in obs_keys(module))


def _build_scorer(module: PairScoringModule) -> Scorer:
    """TorchScript trace of the forward: ~60 us per decision instead of ~100 us eager
    (the ops are tiny, so Python dispatch is most of the cost). Sizes are read from the
    inputs at run time, so the trace works for any window and node count; if tracing
    fails for any reason, the eager forward is used."""
    try:
        with torch.inference_mode():
            traced = torch.jit.trace(_Positional(module).eval(), _example(module), check_trace=False)
    except Exception as error:  # a scorer is an optimisation, never a failure
        logger.warning("tracing the policy module failed, using eager mode: %s", error)
        return module.masked_logits
    keys = obs_keys(module)
    return lambda obs: traced(*(obs[key] for key in keys))


_scorers: weakref.WeakKeyDictionary[PairScoringModule, Scorer] = weakref.WeakKeyDictionary()
_scorers_lock = threading.Lock()


def scorer_for(module: PairScoringModule) -> Scorer:
    with _scorers_lock:
        scorer = _scorers.get(module)
        if scorer is None:
            scorer = _scorers[module] = _build_scorer(module)
        return scorer


def greedy_action(module: PairScoringModule, obs: dict[str, np.ndarray], scorer: Scorer | None = None) -> int:
    """Argmax of the module's masked logits through torch (see `choose`)."""
    with torch.inference_mode():
        logits = (scorer or module.masked_logits)(obs_to_tensors(obs))[0].numpy()
    return choose(logits, obs["action_mask"])


def choose(logits: np.ndarray, mask: np.ndarray) -> int:
    """Argmax of masked logits; falls back to the best valid action by the mask if the
    argmax is not valid (non-finite weights), so it never returns a masked action while
    any action is valid."""
    action = int(np.argmax(logits))
    if mask[action] > 0.5:
        return action
    valid = np.flatnonzero(mask > 0.5)
    if not len(valid):
        return len(mask) - 1
    scores = logits[valid]
    scores = np.where(np.isfinite(scores), scores, -np.inf)
    return int(valid[int(np.argmax(scores))])


def ranked_pairs(logits: np.ndarray, mask: np.ndarray, nodes: int) -> np.ndarray:
    """The (job, node) actions the mask allows, best first by logit (WAIT left out). Of a
    job's pairs whose logits tie exactly only the first is kept: the policy cannot tell
    those nodes apart (identical free nodes score identically), so to a search they are
    one candidate, not several."""
    pairs = np.flatnonzero(mask[:-1] > 0.5)
    scores = logits[pairs]
    scores = np.where(np.isfinite(scores), scores, -np.inf)
    ranked = np.argsort(-scores, kind="stable")
    slots, values = pairs[ranked] // nodes, scores[ranked]
    grouped = np.lexsort((np.arange(len(ranked)), values, slots))
    repeat = (slots[grouped][1:] == slots[grouped][:-1]) & (values[grouped][1:] == values[grouped][:-1])
    keep = np.ones(len(ranked), dtype=bool)
    keep[grouped[1:][repeat]] = False
    return pairs[ranked][keep]


_weights: weakref.WeakKeyDictionary[PairScoringModule, ForwardWeights] = weakref.WeakKeyDictionary()


def forward_weights(module: PairScoringModule) -> ForwardWeights:
    """The module's weights for the numba forward, copied once per loaded module."""
    with _scorers_lock:
        weights = _weights.get(module)
        if weights is None:
            weights = _weights[module] = ForwardWeights.from_module(module)
        return weights


Backend = Literal["numba", "torch"]


class PPOPolicy:
    """A trained PPO module as a worker.sim Policy: deterministic, greedy.

    `backend="numba"` (default) scores with worker.rl.fast_forward, the same weights
    without torch's per-call overhead (~10x faster per decision at batch size 1);
    `"torch"` runs the module's own (traced) forward. Both give the same logits up to
    float32 rounding (tests/rl/test_fast_forward.py)."""

    needs_observation = True

    def __init__(self, module: PairScoringModule, name: str = "ppo", backend: Backend = "numba") -> None:
        if backend not in ("numba", "torch"):
            raise ValueError(f"unknown inference backend {backend!r}; choose numba or torch")
        self.module = module
        self.name = name
        self.backend = backend
        self.env_options: dict[str, object] = {"prior": module.prior} if module.prior else {}
        """The env runs the module's teacher so observations carry its choice, and without
        backfilling if the policy was trained so."""
        if not module.backfilling:
            self.env_options["backfilling"] = False
        if backend == "numba":
            self._weights = forward_weights(module)
        else:
            self._scorer = scorer_for(module)

    @classmethod
    def from_checkpoint(
        cls, checkpoint: str | Path, name: str = "ppo", backend: Backend = "numba"
    ) -> PPOPolicy:
        return cls(load_module(checkpoint), name, backend)

    def reset(self, seed: int) -> None:
        """Greedy and stateless: nothing to reseed."""

    def logits(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """Masked logits [K*N+1] of one observation."""
        if self.backend == "numba":
            return fast_masked_logits(self._weights, obs)
        with torch.inference_mode():
            return self._scorer(obs_to_tensors(obs))[0].numpy()

    def act(self, view: DecisionView) -> int:
        obs = view.obs
        assert obs is not None, "PPOPolicy needs observations"
        return choose(self.logits(obs), obs["action_mask"])

    def ranked_actions(self, view: DecisionView) -> np.ndarray:
        """What a search over this policy compares after its choice: its top (job, node)
        pairs by logit under the mask (`ranked_pairs`; worker/search/candidates.py)."""
        obs = view.obs
        assert obs is not None, "PPOPolicy needs observations"
        return ranked_pairs(self.logits(obs), obs["action_mask"], view.fits.shape[1])
