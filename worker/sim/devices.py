"""GPU device bookkeeping of one node, compiled: which devices a job takes and gives back.

A node's devices are a row of types (-1 pads) and free shares. A whole-GPU job takes the
lowest-numbered wholly free devices of its type; a fractional job takes its share of the
fullest device it fits on (best fit), so shares pack together and whole devices stay
free. After each change the node's summary is refreshed: wholly free devices and the
largest free share per type, which is all a fit test needs. As plain numpy these were a
third of an env step; compiled they are noise.
"""

from __future__ import annotations

import math

import numba
import numpy as np

EPS = 1e-9


@numba.njit(cache=True, nogil=True)
def summarize(types: np.ndarray, free: np.ndarray, whole: np.ndarray, share: np.ndarray) -> None:
    """Fill `whole[t]` (wholly free devices) and `share[t]` (largest free share) per type."""
    whole[:] = 0.0
    share[:] = 0.0
    for d in range(types.shape[0]):
        t = types[d]
        if t < 0:
            continue
        if free[d] >= 1.0 - EPS:
            whole[t] += 1.0
        if free[d] > share[t]:
            share[t] = free[d]


@numba.njit(cache=True, nogil=True)
def summarize_all(types: np.ndarray, free: np.ndarray, whole: np.ndarray, share: np.ndarray) -> None:
    """`summarize` for every node (rows) in one call: a call per node was a tenth of a reset."""
    for n in range(types.shape[0]):
        summarize(types[n], free[n], whole[n], share[n])


@numba.njit(cache=True, nogil=True)
def take(
    types: np.ndarray,
    free: np.ndarray,
    gpu_type: int,
    need: float,
    whole: np.ndarray,
    share: np.ndarray,
    device: int = -1,
) -> np.ndarray:
    """Give a job of `need` GPUs its devices of `gpu_type` (the caller checked it fits);
    returns the device slots taken. `device` picks the device of a fractional job (FGD
    chooses it by fragmentation); -1 takes the fullest that fits."""
    if need >= 1.0 - EPS:
        count = math.ceil(need - EPS)
        chosen = np.empty(count, dtype=np.int64)
        k = 0
        for d in range(types.shape[0]):
            if k < count and types[d] == gpu_type and free[d] >= 1.0 - EPS:
                chosen[k] = d
                free[d] = 0.0
                k += 1
    else:
        chosen = np.empty(1, dtype=np.int64)
        best, room = device, np.inf
        for d in range(types.shape[0]):
            if device < 0 and types[d] == gpu_type and need - EPS <= free[d] < room:
                best, room = d, free[d]
        chosen[0] = best
        free[best] -= need
    summarize(types, free, whole, share)
    return chosen


@numba.njit(cache=True, nogil=True)
def give_back(
    types: np.ndarray,
    free: np.ndarray,
    cap: np.ndarray,
    chosen: np.ndarray,
    need: float,
    whole: np.ndarray,
    share: np.ndarray,
) -> None:
    """Return a finished (or killed) job's devices."""
    for d in chosen:
        if need >= 1.0 - EPS:
            free[d] = cap[d]
        else:
            free[d] += need
    summarize(types, free, whole, share)


@numba.njit(cache=True, nogil=True)
def fastest_type(
    allowed: np.ndarray, speed: np.ndarray, whole: np.ndarray, share: np.ndarray, need: float
) -> int:
    """The fastest allowed GPU type whose devices fit `need` GPUs (-1 if none): the type
    the engine gives a job on a node."""
    best, best_speed = -1, 0.0
    count = math.ceil(need - EPS) if need >= 1.0 - EPS else 0
    for t in range(allowed.shape[0]):
        if not allowed[t] or speed[t] <= best_speed:
            continue
        if (count > 0 and whole[t] >= count) or (count == 0 and share[t] >= need - EPS):
            best, best_speed = t, speed[t]
    return best
