"""What a search may spend and how it decides: the options of `search:<base>`, a contract
since run settings (`ppo.distill`) and plan requests carry them (the search is worker/search).

Plain pydantic (no simulator import), so a request model can embed it and a bad value
is refused with the field's name. The defaults are the ones measured best on
training-side validation episodes (benchmarks/search_quality.py records that run).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from worker.contracts.names import heuristic_problem

Futures = Literal["none", "sampled"]
Runtimes = Literal["estimates", "calibrated", "sampled"]


class SearchOptions(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    candidates: int = Field(
        12,
        ge=1,
        le=64,
        description="Actions compared per decision: the base's choice first, then window jobs on "
        "the base's placement in the base's order, and WAIT where it is allowed. 1 is the base itself.",
    )
    wait: bool = Field(
        True,
        description="Offer WAIT as a candidate where the belief allows it (the base's own WAIT is "
        "always its first candidate).",
    )
    other_speeds: bool = Field(
        False,
        description="Also offer window jobs on the base's placement among the nodes of each other "
        "GPU speed they fit (after every job on its own node), within `candidates`.",
    )
    nodes_per_job: int = Field(
        1,
        ge=1,
        le=16,
        description="Nodes each window job is offered on, within `candidates`: the base placement's "
        "choice, then its next-best nodes (after every job on its first). A placement-only decision "
        "(one pod, no WAIT) has candidates only when this is above 1.",
    )
    portfolio: tuple[str, ...] = Field(
        (),
        max_length=8,
        description="Other heuristics (names as the league spells them) that also roll every "
        "candidate out; a candidate is worth the best of its rollouts by the base and by each of "
        "these, and each one's own choice is a candidate too. On a belief that is the truth the "
        "search is then never worse than the best of them (rollout with multiple heuristics).",
    )
    depth: int = Field(
        2,
        ge=1,
        le=3,
        description="Levels of search: with 1 the base plays the rollouts; with d > 1 the search "
        "of depth d - 1 over the base plays them (and makes the first candidate). Each level "
        "multiplies the cost per decision by about the candidates times the rollout length.",
    )
    rollouts: int = Field(
        1,
        ge=1,
        le=32,
        description="Sampled beliefs (futures and/or runtimes) each candidate is rolled out on, the "
        "same ones for every candidate; a belief with neither sampled is deterministic: one rollout.",
    )
    horizon: int | None = Field(
        None,
        ge=1,
        le=100_000,
        description="Decisions the base plays after a candidate before the rollout is scored; "
        "None plays to the end of the belief.",
    )
    budget_ms: float = Field(
        200.0,
        gt=0,
        le=60_000,
        description="Wall-clock time per decision. When it runs out the best candidate evaluated "
        "so far is played (the base's choice if no other one was).",
    )
    futures: Futures = Field(
        "none",
        description="Arrivals after now in the belief: 'none' (what a plan knows), or 'sampled' "
        "from the workload's own generator on seeds no evaluation uses.",
    )
    arrivals: int | None = Field(
        None,
        ge=1,
        le=100_000,
        description="With sampled futures, how many arrivals after now each sample keeps (the "
        "first ones): a lookahead counted in jobs, every one of them scored by a rollout to the end "
        "of its belief. None keeps the sampled episode to its end.",
    )
    runtimes: Runtimes = Field(
        "estimates",
        description="Runtimes in the belief: the estimates; 'calibrated': each estimate times the "
        "median runtime / estimate ratio of the jobs finished so far in the episode (a running job "
        "by the median of the ratios it has not yet outlived); or 'sampled': each rollout's ratios "
        "resampled from those finished jobs.",
    )
    margin: float = Field(
        1.0,
        ge=0,
        le=1_000,
        description="How much better (in the objective's raw units per decision: priority points "
        "for `deadline`) a candidate must look than the base's choice to be played instead.",
    )
    z: float = Field(
        2.0,
        ge=0,
        le=10,
        description="With several rollouts, the paired mean gain over the base's choice must also "
        "exceed z standard errors, so sampling noise does not buy spurious departures.",
    )

    @field_validator("portfolio")
    @classmethod
    def _known_heuristics(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        for name in names:
            if name != "tuned" and (problem := heuristic_problem(name, "portfolio heuristic")):
                raise ValueError(problem)
        return names
