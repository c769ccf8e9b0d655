"""PairScoringModule's masked logits as one numba pass over its weights, for inference.

Why: a plan is ~one forward per job placed, each at batch size 1 on a model of a few
thousand parameters. Torch spends ~60-100 us per such forward in dispatch (a dozen ops,
tensor wrapping, the TorchScript interpreter) for ~0.2 M multiply-adds of work; the same
arithmetic compiled by numba takes a few microseconds. Measured with pyinstrument on a
100-job x 16-node plan: the torch forward plus `torch.from_numpy` were ~80% of the plan.

It also skips work whose result the mask throws away: pair scores are computed only for
valid pairs, job rows only for real jobs, node rows only for usable nodes, and the WAIT
head only when WAIT is valid. Masked entries are `MASKED_LOGIT`, exactly as the module's
`apply_action_mask` makes them, so the returned array is the module's masked logits (up
to float32 rounding: the sums run in another order); tests/rl/test_fast_forward.py checks
it against `PairScoringModule.masked_logits`. The torch path stays available
(`PPOPolicy(..., backend="torch")`).

The weights are copied out of the module once (`ForwardWeights.from_module`); the module
must not be trained afterwards (inference modules are frozen by worker.rl.inference).
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from worker.rl.module import MASKED_LOGIT, PairScoringModule
from worker.sim.features import PRIOR_KEY

_MASKED = np.float32(MASKED_LOGIT)


def _f32(tensor) -> np.ndarray:  # type: ignore[no-untyped-def]
    return np.ascontiguousarray(tensor.detach().cpu().numpy(), dtype=np.float32)


@dataclass(frozen=True)
class ForwardWeights:
    """The module's parameters as contiguous float32 arrays, in torch's (out, in) layout."""

    job_w1: np.ndarray
    job_b1: np.ndarray
    job_w2: np.ndarray
    job_b2: np.ndarray
    node_w1: np.ndarray
    node_b1: np.ndarray
    node_w2: np.ndarray
    node_b2: np.ndarray
    wait_w1: np.ndarray
    wait_b1: np.ndarray
    wait_w2: np.ndarray
    wait_b2: np.ndarray
    pair_job_w: np.ndarray
    pair_job_b: np.ndarray
    pair_node_w: np.ndarray
    pair_feat_w: np.ndarray
    pair_out_w: np.ndarray
    pair_out_b: np.ndarray
    embed_dim: int
    scale: float
    prior_weight: float | None = None
    """The module's learned weight of its teacher's action; None without a prior."""

    @classmethod
    def from_module(cls, module: PairScoringModule) -> ForwardWeights:
        d = module.embed_dim
        if module.pair_hidden > 0:
            pair = (
                _f32(module.pair_job.weight),
                _f32(module.pair_job.bias),
                _f32(module.pair_node.weight),
                _f32(module.pair_feat.weight),
                _f32(module.pair_out.weight)[0],
                _f32(module.pair_out.bias),
            )
        else:
            empty = np.zeros((0, d), np.float32)
            pair = (empty, np.zeros(0, np.float32), empty, np.zeros((0, 0), np.float32))
            pair += (np.zeros(0, np.float32), np.zeros(1, np.float32))
        return cls(
            _f32(module.job_net[0].weight),
            _f32(module.job_net[0].bias),
            _f32(module.job_net[2].weight),
            _f32(module.job_net[2].bias),
            _f32(module.node_net[0].weight),
            _f32(module.node_net[0].bias),
            _f32(module.node_net[2].weight),
            _f32(module.node_net[2].bias),
            _f32(module.wait_head[0].weight),
            _f32(module.wait_head[0].bias),
            _f32(module.wait_head[2].weight)[0],
            _f32(module.wait_head[2].bias),
            *pair,
            embed_dim=d,
            scale=float(module.scale),
            prior_weight=float(module.prior_weight.detach()) if module.prior else None,
        )


@numba.njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
def _mlp_rows(
    rows: np.ndarray,
    live: np.ndarray,
    glob: np.ndarray,
    w1: np.ndarray,
    b1: np.ndarray,
    w2: np.ndarray,
    b2: np.ndarray,
    out: np.ndarray,
) -> None:
    """out[r] = w2 @ relu(w1 @ [rows[r], glob] + b1) + b2 for the rows marked live."""
    hidden = w1.shape[0]
    features = rows.shape[1]
    base = b1.copy()
    for i in range(hidden):
        acc = base[i]
        for g in range(glob.shape[0]):
            acc += w1[i, features + g] * glob[g]
        base[i] = acc
    h = np.empty(hidden, np.float32)
    for r in range(rows.shape[0]):
        if not live[r]:
            continue
        for i in range(hidden):
            acc = base[i]
            for f in range(features):
                acc += w1[i, f] * rows[r, f]
            h[i] = acc if acc > 0.0 else 0.0
        for o in range(w2.shape[0]):
            acc = np.float32(0.0)
            for i in range(hidden):
                acc += w2[o, i] * h[i]
            out[r, o] = acc + b2[o]


@numba.njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
def _masked_logits(
    jobs: np.ndarray,
    nodes: np.ndarray,
    pairs: np.ndarray,
    glob: np.ndarray,
    mask: np.ndarray,
    job_w1: np.ndarray,
    job_b1: np.ndarray,
    job_w2: np.ndarray,
    job_b2: np.ndarray,
    node_w1: np.ndarray,
    node_b1: np.ndarray,
    node_w2: np.ndarray,
    node_b2: np.ndarray,
    wait_w1: np.ndarray,
    wait_b1: np.ndarray,
    wait_w2: np.ndarray,
    wait_b2: np.ndarray,
    pair_job_w: np.ndarray,
    pair_job_b: np.ndarray,
    pair_node_w: np.ndarray,
    pair_feat_w: np.ndarray,
    pair_out_w: np.ndarray,
    pair_out_b: np.ndarray,
    d: int,
    scale: float,
    masked: np.float32,
) -> np.ndarray:
    k_jobs, n_nodes, n_feat = pairs.shape
    logits = np.empty(k_jobs * n_nodes + 1, np.float32)
    wait_ok = mask[k_jobs * n_nodes] > 0.5

    job_live = np.zeros(k_jobs, np.bool_)
    row_any = np.zeros(k_jobs, np.bool_)
    node_live = np.zeros(n_nodes, np.bool_)
    for k in range(k_jobs):
        for n in range(n_nodes):
            if mask[k * n_nodes + n] > 0.5:
                row_any[k] = True
                node_live[n] = True
        job_live[k] = row_any[k] or (wait_ok and jobs[k, 0] != 0.0)
    if wait_ok:
        for n in range(n_nodes):
            if nodes[n, 0] != 0.0:
                node_live[n] = True

    job_out = np.zeros((k_jobs, job_w2.shape[0]), np.float32)
    node_out = np.zeros((n_nodes, node_w2.shape[0]), np.float32)
    _mlp_rows(jobs, job_live, glob, job_w1, job_b1, job_w2, job_b2, job_out)
    _mlp_rows(nodes, node_live, glob, node_w1, node_b1, node_w2, node_b2, node_out)

    ph = pair_job_w.shape[0]
    pj = np.zeros((k_jobs, ph), np.float32)
    pn = np.zeros((n_nodes, ph), np.float32)
    if ph > 0:
        for k in range(k_jobs):
            if row_any[k]:
                for i in range(ph):
                    acc = pair_job_b[i]
                    for e in range(d):
                        acc += pair_job_w[i, e] * job_out[k, e]
                    pj[k, i] = acc
        for n in range(n_nodes):
            if node_live[n]:
                for i in range(ph):
                    acc = np.float32(0.0)
                    for e in range(d):
                        acc += pair_node_w[i, e] * node_out[n, e]
                    pn[n, i] = acc

    s = np.float32(scale)
    for k in range(k_jobs):
        for n in range(n_nodes):
            a = k * n_nodes + n
            if not mask[a] > 0.5:
                logits[a] = masked
                continue
            dot = np.float32(0.0)
            for e in range(d):
                dot += job_out[k, d + e] * node_out[n, e]
            score = dot * s
            for f in range(n_feat):
                score += pairs[k, n, f] * (job_out[k, 2 * d + f] + node_out[n, d + f])
            if ph > 0:
                extra = pair_out_b[0]
                for i in range(ph):
                    acc = pj[k, i] + pn[n, i]
                    for f in range(n_feat):
                        acc += pair_feat_w[i, f] * pairs[k, n, f]
                    if acc > 0.0:
                        extra += pair_out_w[i] * acc
                score += extra
            logits[a] = score

    if not wait_ok:
        logits[k_jobs * n_nodes] = masked
        return logits
    context = np.zeros(2 * d + glob.shape[0], np.float32)
    weight = np.float32(0.0)
    for k in range(k_jobs):
        v = jobs[k, 0]
        if v != 0.0:
            weight += v
            for e in range(d):
                context[e] += job_out[k, e] * v
    weight = max(weight, np.float32(1.0))
    for e in range(d):
        context[e] /= weight
    weight = np.float32(0.0)
    for n in range(n_nodes):
        v = nodes[n, 0]
        if v != 0.0:
            weight += v
            for e in range(d):
                context[d + e] += node_out[n, e] * v
    weight = max(weight, np.float32(1.0))
    for e in range(d):
        context[d + e] /= weight
    for g in range(glob.shape[0]):
        context[2 * d + g] = glob[g]
    wait = wait_b2[0]
    for i in range(wait_w1.shape[0]):
        acc = wait_b1[i]
        for c in range(context.shape[0]):
            acc += wait_w1[i, c] * context[c]
        if acc > 0.0:
            wait += wait_w2[i] * acc
    logits[k_jobs * n_nodes] = wait
    return logits


def masked_logits(weights: ForwardWeights, obs: dict[str, np.ndarray]) -> np.ndarray:
    """Masked logits [K*N+1] of one (unbatched) observation, as the module computes them."""
    w = weights
    logits = _masked_logits(
        np.ascontiguousarray(obs["jobs"], np.float32),
        np.ascontiguousarray(obs["nodes"], np.float32),
        np.ascontiguousarray(obs["pairs"], np.float32),
        np.ascontiguousarray(obs["global"], np.float32),
        np.ascontiguousarray(obs["action_mask"], np.float32),
        w.job_w1, w.job_b1, w.job_w2, w.job_b2,
        w.node_w1, w.node_b1, w.node_w2, w.node_b2,
        w.wait_w1, w.wait_b1, w.wait_w2, w.wait_b2,
        w.pair_job_w, w.pair_job_b, w.pair_node_w, w.pair_feat_w, w.pair_out_w, w.pair_out_b,
        w.embed_dim, w.scale, _MASKED,
    )  # fmt: skip
    if w.prior_weight is not None:
        teacher = int(np.argmax(obs[PRIOR_KEY]))
        if obs["action_mask"][teacher] > 0.5:
            logits[teacher] += np.float32(w.prior_weight)
    return logits
