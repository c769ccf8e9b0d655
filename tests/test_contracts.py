"""The contracts module is the app's only window on the worker: it must agree with the
simulator and stay light enough for the API process and Temporal's sandbox."""

from __future__ import annotations

import subprocess
import sys

import pytest
from pydantic import ValidationError

from worker.contracts import (
    HEURISTIC_POLICIES,
    ROUND_SEARCH_OPTIONS,
    TRACE_WORKLOADS,
    WORKLOAD_PRESETS,
    Deployment,
    DeployRequest,
    EvaluateSearchInput,
    EvaluationEvidence,
    EvaluationResult,
    IterationProgress,
    LearnerMetrics,
    NodeSpec,
    PlanInput,
    PlanMetrics,
    PolicyMetrics,
    PolicyRef,
    PPOParams,
    SearchOptions,
    TrainingRunSettings,
    WorkloadConfig,
    class_workload,
    deploy_problem,
    deployed_note,
    search_evidence,
)


def test_names_match_the_simulator() -> None:
    from worker.sim.heuristics import HEURISTICS
    from worker.sim.traces import TRACE_NAMES
    from worker.sim.workloads import PRESETS

    assert set(WORKLOAD_PRESETS) == set(PRESETS)
    assert set(HEURISTIC_POLICIES) == set(HEURISTICS)
    assert set(TRACE_WORKLOADS) == set(TRACE_NAMES)


def test_the_app_and_the_simulator_carry_every_metric_the_contracts_name() -> None:
    """The mirror types convert by the contract's field names (history.record_iterations,
    convert.plan_metrics): a metric added to the contract must exist on both sides, or it
    would be dropped (or fail a plan) silently."""
    from dataclasses import fields

    from app.models import IterationMetric, IterationMetricPublic
    from worker.sim.metrics import EpisodeMetrics

    learner = set(LearnerMetrics.model_fields)
    assert learner <= set(IterationMetric.model_fields) and learner <= set(IterationMetricPublic.model_fields)
    assert set(IterationProgress.model_fields) == learner | {"iteration", "checkpoint"}
    assert set(PlanMetrics.model_fields) <= {f.name for f in fields(EpisodeMetrics)}


def test_importing_contracts_loads_no_heavy_modules() -> None:
    code = (
        "import sys, worker.contracts; "
        "print(sorted(m for m in ('numpy', 'pyarrow', 'ray', 'torch', 'worker.sim') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_bad_inputs_are_rejected_with_the_field_named() -> None:
    with pytest.raises(ValidationError, match="unknown workload 'nope'"):
        WorkloadConfig(name="nope")
    with pytest.raises(ValidationError, match="unknown GPU type 'h100'"):
        NodeSpec(id="n1", cpus=8, gpus={"h100": 8})
    assert NodeSpec(id="n1", cpus=8, gpus={"h100": 8}, gpu_speed={"h100": 2.0}).gpus == {"h100": 8}
    with pytest.raises(ValidationError, match="minibatch_size"):
        PPOParams(train_batch_size=128, minibatch_size=256)
    with pytest.raises(ValidationError, match="either nodes and jobs, or synthetic"):
        PlanInput(policy=PolicyRef(kind="heuristic", name="fifo"))


@pytest.mark.parametrize(
    ("distill", "field"),
    [
        ({"search": "search:nope"}, "search"),
        ({"search": "tuned"}, "search"),
        ({"search": "search:edf+nowhere"}, "search"),
        ({"weight": 0}, "weight"),
        ({"weight": 101}, "weight"),
        ({"weight": "1"}, "weight"),
        ({"episodes_per_round": 0}, "episodes_per_round"),
        ({"options": {"candidates": 0}}, "candidates"),
    ],
)
def test_a_bad_distill_block_is_refused_naming_the_field(distill: dict, field: str) -> None:
    with pytest.raises(ValidationError) as raised:
        TrainingRunSettings(ppo={"distill": distill})
    assert any(field in error["loc"] for error in raised.value.errors()), raised.value.errors()


def test_rounds_evaluate_a_search_row_by_default_only_when_they_distil() -> None:
    distilling = {"ppo": {"distill": {}}}
    assert TrainingRunSettings().round_search() is None
    assert TrainingRunSettings(**distilling).round_search() == ROUND_SEARCH_OPTIONS
    assert TrainingRunSettings(**distilling, eval_search={"enabled": False}).round_search() is None
    chosen = TrainingRunSettings(eval_search={"enabled": True, "options": {"candidates": 4}}).round_search()
    assert chosen is not None and (chosen.candidates, chosen.depth) == (4, 1)  # one level unless asked
    deeper = TrainingRunSettings(eval_search={"enabled": True, "options": {"depth": 2}}).round_search()
    assert deeper is not None and deeper.depth == 2


@pytest.mark.parametrize(
    ("eval_search", "field"),
    [
        ({"enabled": "yes"}, "enabled"),
        ({"options": {"budget_ms": 0}}, "budget_ms"),
        ({"options": {"candidates": 65}}, "candidates"),
        ({"on": True}, "on"),
    ],
)
def test_a_bad_eval_search_is_refused_naming_the_field(eval_search: dict, field: str) -> None:
    with pytest.raises(ValidationError) as raised:
        TrainingRunSettings(eval_search=eval_search)
    assert any(field in error["loc"] for error in raised.value.errors()), raised.value.errors()


def test_a_distill_block_names_a_search_over_a_heuristic_or_tuned() -> None:
    assert TrainingRunSettings().ppo.distill is None  # plain PPO unless asked
    for search in ("search:tuned", "search:easy:sjf+fastest", "search:packing"):
        distill = TrainingRunSettings(ppo={"distill": {"search": search}}).ppo.distill
        assert distill is not None and distill.search == search


@pytest.mark.parametrize(
    ("fields", "accepted"),
    [
        ({"name": "trace:lublin-1"}, False),  # the default 16 nodes
        ({"name": "trace:lublin-1", "nodes": 1}, True),
        ({"name": "trace:lublin-1", "nodes": 1, "load": 0.9}, False),
        ({"name": "trace:openb-inflation", "nodes": 8}, True),
        ({"name": "trace:openb-inflation", "nodes": 8, "load": 0.9}, False),
    ],
)
def test_fixed_shape_traces_are_refused_as_the_simulator_would(fields: dict, accepted: bool) -> None:
    """What the contract lets through must build an episode, and what it refuses the
    simulator refuses too: a request must not be accepted only to fail in the worker."""
    from worker.sim.traces import trace_scenario

    def simulate() -> object:
        merged = {"nodes": 16, "load": None} | fields
        return trace_scenario(fields["name"], nodes=merged["nodes"], load=merged["load"], jobs=64, seed=0)

    if accepted:
        WorkloadConfig(**fields)
        assert simulate() is not None
    else:
        with pytest.raises(ValidationError, match=fields["name"]):
            WorkloadConfig(**fields)
        with pytest.raises(ValueError, match=fields["name"]):
            simulate()


def _checkpoint(policy: str, margin: float, seed: int = 1, forced: bool = False) -> Deployment:
    evidence = EvaluationEvidence(
        run_id="r",
        round=1,
        workload=WorkloadConfig(name="steady"),
        seed=seed,
        episodes=5,
        ppo_value=0.9 + margin,
        best_heuristic="edf",
        best_heuristic_score=0.9,
        margin=margin,
        league={"edf": 0.9, "fifo": 0.8},
    )
    return Deployment(
        policy_class="steady",
        policy=policy,
        kind="checkpoint",
        checkpoint="/c",
        evidence=evidence,
        forced=forced,
    )


def test_deploy_rule_by_hand_needs_a_positive_margin_or_force() -> None:
    assert deploy_problem(DeployRequest(deployment=_checkpoint("a", 0.01)), None) is None
    problem = deploy_problem(DeployRequest(deployment=_checkpoint("a", 0.0)), None)
    assert problem is not None and "margin +0.0000" in problem and "force" in problem
    assert deploy_problem(DeployRequest(deployment=_checkpoint("a", -0.1, forced=True)), None) is None
    heuristic = Deployment(policy_class="steady", policy="edf+nope", kind="heuristic")
    assert "unknown placement" in (deploy_problem(DeployRequest(deployment=heuristic), None) or "")


def test_auto_deploy_rule_compares_on_the_same_seeds_only() -> None:
    def auto(new: Deployment, current: Deployment | None) -> str | None:
        return deploy_problem(DeployRequest(deployment=new, auto=True), current)

    assert auto(_checkpoint("a", 0.02), None) is None
    assert auto(_checkpoint("a", -0.1, forced=True), None) is not None  # never forced
    assert auto(_checkpoint("b", 0.03), _checkpoint("a", 0.02)) is None
    assert "does not beat" in (auto(_checkpoint("b", 0.01), _checkpoint("a", 0.02)) or "")
    assert "other seeds" in (auto(_checkpoint("b", 0.5), _checkpoint("a", 0.02, seed=2)) or "")
    fifo = Deployment(policy_class="steady", policy="fifo", kind="heuristic")
    assert auto(_checkpoint("b", 0.01), fifo) is None  # fifo is in the league, and beaten
    tuned = Deployment(policy_class="steady", policy="easy:sjf+fastest", kind="heuristic")
    assert "not in this evaluation's league" in (auto(_checkpoint("b", 0.01), tuned) or "")
    assert "already deployed" in (auto(_checkpoint("a", 0.02), _checkpoint("a", 0.02)) or "")


def _search(policy: str, margin: float | None, **extra: object) -> Deployment:
    evidence = _checkpoint("x", margin).evidence if margin is not None else None
    return Deployment(policy_class="steady", policy=policy, kind="search", evidence=evidence, **extra)


def test_deploy_rule_for_a_search_is_a_checkpoint_s_measured_margin() -> None:
    def by_hand(deployment: Deployment) -> str | None:
        return deploy_problem(DeployRequest(deployment=deployment), None)

    assert by_hand(_search("search:tuned", 0.01)) is None
    refused = by_hand(_search("search:tuned", -0.02)) or ""
    assert "search 'search:tuned' is not eligible: margin -0.0200" in refused and "force" in refused
    assert by_hand(_search("search:tuned", -0.02, forced=True)) is None
    assert "no held-out evaluation" in (by_hand(_search("search:tuned", None)) or "")
    assert "no stored checkpoint location" in (by_hand(_search("search:ckpt-1", 0.01)) or "")
    assert by_hand(_search("search:ckpt-1", 0.01, checkpoint="/c")) is None
    auto = DeployRequest(deployment=_search("search:tuned", 0.5), auto=True)
    assert "checkpoints only" in (deploy_problem(auto, None) or "")
    with pytest.raises(ValidationError, match="search base"):
        _search("search:no+such", 0.01)


def test_a_deployed_search_over_tuned_plans_over_what_tuned_ran_when_measured() -> None:
    deployed = _search("search:tuned", 0.01, runs="easy:sjf+fastest", search=SearchOptions(candidates=4))
    ref = deployed.ref()
    assert (ref.kind, ref.name) == ("search", "search:easy:sjf+fastest")
    assert "search 'search:tuned' (tuned runs easy:sjf+fastest), margin +0.0100" in deployed_note(
        "steady", deployed, "edf"
    )
    assert _search("search:edf", 0.01).ref().name == "search:edf"
    with pytest.raises(ValidationError, match="runs"):
        _search("search:tuned", 0.01, runs="nope")


def test_a_search_is_measured_on_the_class_s_workload_and_compares_with_a_run_s_checkpoints() -> None:
    assert class_workload("default") == WorkloadConfig()
    assert class_workload("trace:alibaba-default:train") == WorkloadConfig(name="trace:alibaba-default:train")
    assert class_workload("prod-a100") is None
    measured = EvaluateSearchInput(
        policy="search:tuned", workload=WorkloadConfig(name="steady"), seed=1, episodes=5
    )

    def metrics(policy: str, score: float) -> PolicyMetrics:
        zero = dict.fromkeys(PlanMetrics.model_fields, 0.0)
        return PolicyMetrics(**zero | {"policy": policy, "score": score})

    result = EvaluationResult(
        ppo=metrics("ppo", 0.93),
        heuristics=[metrics("edf", 0.9)],
        best_heuristic="edf",
        best_heuristic_score=0.9,
        gain=0.03,
        ppo_value=0.93,
        heuristic_values={"edf": 0.9, "fifo": 0.8},
    )
    evidence = search_evidence(measured, result)
    assert evidence.margin == pytest.approx(0.03) and evidence.eligible and evidence.run_id is None
    assert evidence.seeds_key() == _checkpoint("a", 0.01, seed=1).evidence.seeds_key()  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "name",
    ["trace:swf:/etc/passwd", "trace:swf:../secrets.swf", "trace:swf:swf/../../x", "trace:swf:/dev/zero",
     "trace:swf:a//b", "trace:swf:~/x.swf", "trace:swf:"],
)  # fmt: skip
def test_client_swf_names_never_reach_an_arbitrary_path(name: str) -> None:
    with pytest.raises(ValueError, match="under the traces directory"):
        WorkloadConfig(name=name)


def test_a_client_swf_name_is_pinned_under_the_traces_directory() -> None:
    from worker.convert import workload_spec
    from worker.sim.traces import traces_dir

    spec = workload_spec(WorkloadConfig(name="trace:swf:swf/lublin_256.swf"))
    assert spec.name == f"trace:swf:{(traces_dir() / 'swf' / 'lublin_256.swf').resolve()}"
