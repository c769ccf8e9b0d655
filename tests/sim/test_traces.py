"""Trace readers: real files parse, episodes are deterministic and honest to the trace."""

from __future__ import annotations

import csv
import itertools
from pathlib import Path

import pytest

from worker.sim.traces import (
    ALIBABA_DIR,
    GPU_SPEEDS,
    MAX_RUNTIME_S,
    QOS_PRIORITY,
    TRACE_NAMES,
    TRAIN_FRACTION,
    TraceError,
    is_trace_name,
    offered_load,
    trace_scenario,
    trace_stats,
    traces_dir,
)

LUBLIN = "trace:swf:swf/lublin_256.swf"
POD_HEADER = (
    "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,"
    "creation_time,deletion_time,scheduled_time"
)
NODE_CSV = "sn,cpu_milli,memory_mib,gpu,model\nn0,64000,262144,8,V100M32\nn1,32000,131072,2,T4\n"


def _pod_csv(name: str) -> list[dict[str, str]]:
    with (traces_dir() / ALIBABA_DIR / name).open(newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def default_pods() -> dict[str, dict[str, str]]:
    return {row["name"]: row for row in _pod_csv("openb_pod_list_default.csv")}


@pytest.fixture
def alibaba_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private traces dir with a tiny node list; tests write their own pod list."""
    base = tmp_path / ALIBABA_DIR
    base.mkdir()
    (base / "openb_node_list_gpu_node.csv").write_text(NODE_CSV)
    monkeypatch.setenv("RLSCHED_TRACES_DIR", str(tmp_path))
    return base


def test_real_traces_are_found() -> None:
    assert (traces_dir() / ALIBABA_DIR / "openb_node_list_gpu_node.csv").is_file()
    assert (traces_dir() / "swf" / "lublin_256.swf").is_file()


def test_trace_names() -> None:
    assert set(TRACE_NAMES) == {
        "trace:alibaba-default",
        "trace:alibaba-default:train",
        "trace:alibaba-default:heldout",
        "trace:alibaba-gpuspec33",
        "trace:alibaba-multigpu50",
        "trace:lublin-1",
        "trace:openb-inflation",
    }
    assert all(is_trace_name(n) for n in TRACE_NAMES)
    assert is_trace_name(LUBLIN)
    assert not is_trace_name("trace:swf:")
    assert not is_trace_name("steady")
    assert not is_trace_name("trace:alibaba-nope")


@pytest.mark.parametrize(
    "name", [*(n for n in TRACE_NAMES if n not in ("trace:lublin-1", "trace:openb-inflation")), LUBLIN]
)
def test_every_trace_gives_a_valid_episode(name: str) -> None:
    scenario = trace_scenario(name, nodes=32, load=None, jobs=150, seed=3)
    jobs = scenario.jobs
    assert scenario.name == name
    assert len(scenario.nodes) == 32
    assert len({n.id for n in scenario.nodes}) == 32
    assert len(jobs) == 150
    assert len({j.id for j in jobs}) == 150
    assert jobs[0].submit_s == 0.0
    assert all(a.submit_s <= b.submit_s for a, b in itertools.pairwise(jobs))
    assert all(j.runtime_s > 0 and j.runtime_estimate_s > 0 for j in jobs)
    assert all(j.deadline_s > j.submit_s for j in jobs)
    assert all(j.priority in (1, 2, 3) for j in jobs)
    assert scenario.horizon_s >= jobs[-1].submit_s + max(j.runtime_s for j in jobs)


def test_alibaba_nodes_come_from_the_node_list() -> None:
    with (traces_dir() / ALIBABA_DIR / "openb_node_list_gpu_node.csv").open(newline="") as f:
        rows = {r["sn"]: r for r in csv.DictReader(f)}
    scenario = trace_scenario("trace:alibaba-default", nodes=len(rows), load=None, jobs=10, seed=0)
    assert {n.id for n in scenario.nodes} == set(rows)
    for node in scenario.nodes:
        row = rows[node.id]
        assert node.cpus == int(row["cpu_milli"]) / 1000
        assert node.memory_gb == int(row["memory_mib"]) / 1024
        assert node.gpus == {row["model"]: float(row["gpu"])}
        assert node.gpu_speed == {row["model"]: GPU_SPEEDS[row["model"]]}


def test_alibaba_tasks_map_fields(default_pods: dict[str, dict[str, str]]) -> None:
    scenario = trace_scenario("trace:alibaba-default", nodes=1213, load=None, jobs=2000, seed=5)
    for job in scenario.jobs:
        row = default_pods[job.id.split("#")[0]]
        assert job.cpus == int(row["cpu_milli"]) / 1000
        assert job.memory_gb == int(row["memory_mib"]) / 1024
        runtime = int(row["deletion_time"]) - int(row["scheduled_time"])
        assert job.runtime_s == min(runtime, MAX_RUNTIME_S)
        assert job.priority == QOS_PRIORITY[row["qos"]]
        assert row["scheduled_time"] != ""


def test_fractional_gpus_follow_gpu_milli(default_pods: dict[str, dict[str, str]]) -> None:
    scenario = trace_scenario("trace:alibaba-default", nodes=1213, load=None, jobs=2000, seed=6)
    shares = 0
    for job in scenario.jobs:
        row = default_pods[job.id.split("#")[0]]
        num_gpu, milli = int(row["num_gpu"]), int(row["gpu_milli"])
        if num_gpu == 1 and milli < 1000:
            assert job.gpus == milli / 1000
            shares += 1
        else:
            assert job.gpus == num_gpu
    assert shares > 100


def test_gpu_type_constraints_are_carried() -> None:
    specs = {r["name"]: r["gpu_spec"] for r in _pod_csv("openb_pod_list_gpuspec33.csv")}
    scenario = trace_scenario("trace:alibaba-gpuspec33", nodes=1213, load=None, jobs=3000, seed=7)
    constrained = [j for j in scenario.jobs if j.gpu_types]
    assert len(constrained) > 300
    for job in scenario.jobs:
        spec = specs[job.id.split("#")[0]]
        assert job.gpu_types == (tuple(dict.fromkeys(spec.split("|"))) if spec else ())
    assert {t for j in constrained for t in j.gpu_types} <= set(GPU_SPEEDS)


def test_multigpu50_keeps_added_multi_gpu_tasks() -> None:
    default = trace_stats("trace:alibaba-default")
    multi = trace_stats("trace:alibaba-multigpu50")
    assert multi.tasks > default.tasks
    scenario = trace_scenario("trace:alibaba-multigpu50", nodes=1213, load=None, jobs=4000, seed=1)
    assert sum(j.gpus >= 2 for j in scenario.jobs) > 200


def test_same_arguments_same_scenario() -> None:
    for name in ("trace:alibaba-default:train", LUBLIN):
        a = trace_scenario(name, nodes=20, load=0.8, jobs=200, seed=11)
        b = trace_scenario(name, nodes=20, load=0.8, jobs=200, seed=11)
        c = trace_scenario(name, nodes=20, load=0.8, jobs=200, seed=12)
        assert a == b
        assert a != c


def test_train_and_heldout_split_by_creation_time(
    default_pods: dict[str, dict[str, str]],
) -> None:
    creation = sorted(float(r["creation_time"]) for r in default_pods.values())
    cut = creation[int(TRAIN_FRACTION * len(creation))]
    train = trace_stats("trace:alibaba-default:train")
    heldout = trace_stats("trace:alibaba-default:heldout")
    whole = trace_stats("trace:alibaba-default")
    assert train.last_submit_s < cut <= heldout.first_submit_s
    assert train.tasks + heldout.tasks == whole.tasks
    assert sum(t >= cut for t in creation) == pytest.approx(0.3 * len(creation), rel=0.02)
    for seed in range(5):
        for part, inside in (("train", lambda t: t < cut), ("heldout", lambda t: t >= cut)):
            scenario = trace_scenario(
                f"trace:alibaba-default:{part}", nodes=100, load=None, jobs=300, seed=seed
            )
            for job in scenario.jobs:
                assert inside(float(default_pods[job.id.split("#")[0]]["creation_time"]))


def test_never_run_tasks_are_counted_not_dropped_silently(
    default_pods: dict[str, dict[str, str]],
) -> None:
    pending = sum(1 for r in default_pods.values() if not r["scheduled_time"])
    stats = trace_stats("trace:alibaba-default")
    assert stats.skipped == pending > 0
    assert stats.tasks + stats.skipped == len(default_pods)


@pytest.mark.parametrize("load", [0.3, 0.9, 1.7])
@pytest.mark.parametrize("name", ["trace:alibaba-default:train", LUBLIN])
def test_load_rescaling_hits_the_offered_load(name: str, load: float) -> None:
    scenario = trace_scenario(name, nodes=24, load=load, jobs=300, seed=4)
    assert offered_load(scenario) == pytest.approx(load, rel=0.01)


def test_swf_cluster_and_jobs() -> None:
    scenario = trace_scenario(LUBLIN, nodes=16, load=None, jobs=500, seed=2)
    assert all(n.cpus == 16 and not n.gpus for n in scenario.nodes)
    assert all(j.gpus == 0 for j in scenario.jobs)
    assert any(j.cpus > 16 for j in scenario.jobs), "jobs wider than a node are kept"
    assert all(j.runtime_estimate_s == j.runtime_s for j in scenario.jobs)


def test_swf_fields_and_skips(tmp_path: Path) -> None:
    path = tmp_path / "small.swf"
    path.write_text(
        "; MaxNodes: 4\n; MaxProcs: 10\n"
        "1 0 5 100 2 -1 -1 3 400 -1 1 7 -1 -1 -1 -1 -1 -1\n"
        "2 10 5 50 4 -1 -1 -1 -1 -1 1 -1 -1 -1 -1 -1 -1 -1\n"
        "3 20 5 0 4 -1 -1 -1 -1 -1 5 1 -1 -1 -1 -1 -1 -1\n"
        "4 30 5 60 -1 -1 -1 -1 -1 -1 5 1 -1 -1 -1 -1 -1 -1\n"
    )
    name = f"trace:swf:{path}"
    assert trace_stats(name).skipped == 2
    scenario = trace_scenario(name, nodes=3, load=None, jobs=2, seed=0)
    assert [n.cpus for n in scenario.nodes] == [4.0, 4.0, 4.0]
    first, second = scenario.jobs
    assert (first.cpus, first.runtime_s, first.runtime_estimate_s) == (3.0, 100.0, 400.0)
    assert first.priority == 7 % 3 + 1
    assert first.deadline_s == first.submit_s + 2 * 400.0
    assert (second.cpus, second.runtime_estimate_s, second.priority) == (4.0, 50.0, 2)
    assert second.submit_s - first.submit_s == 10.0


def test_short_trace_wraps_around_with_fresh_ids(tmp_path: Path) -> None:
    path = tmp_path / "tiny.swf"
    path.write_text(
        "".join(f"{i} {10 * i} 0 30 1 -1 -1 1 60 -1 1 1 -1 -1 -1 -1 -1 -1\n" for i in range(1, 4))
    )
    scenario = trace_scenario(f"trace:swf:{path}", nodes=2, load=None, jobs=8, seed=1)
    assert len({j.id for j in scenario.jobs}) == 8
    submits = [j.submit_s for j in scenario.jobs]
    assert submits == sorted(submits) and len(set(submits)) == 8


def test_malformed_csv_line_names_file_and_line(alibaba_dir: Path) -> None:
    (alibaba_dir / "openb_pod_list_default.csv").write_text(
        f"{POD_HEADER}\np0,1000,1024,1,500,,LS,Running,0,100,10\np1,abc,1024,1,500,,LS,Running,5,100,10\n"
    )
    with pytest.raises(TraceError, match=r"openb_pod_list_default\.csv line 3: cpu_milli .*'abc'"):
        trace_scenario("trace:alibaba-default", nodes=1, load=None, jobs=1, seed=0)


def test_csv_line_with_missing_field_is_an_error(alibaba_dir: Path) -> None:
    (alibaba_dir / "openb_pod_list_default.csv").write_text(
        f"{POD_HEADER}\np0,1000,1024,1,500,,LS,Running,0,100,10\n\np1,1000,1024,1,500,,LS,0\n"
    )
    with pytest.raises(TraceError, match=r"openb_pod_list_default\.csv line 4: expected 11"):
        trace_scenario("trace:alibaba-default", nodes=1, load=None, jobs=1, seed=0)


def test_small_alibaba_files_map_and_skip(alibaba_dir: Path) -> None:
    (alibaba_dir / "openb_pod_list_gpuspec33.csv").write_text(
        f"{POD_HEADER}\n"
        "p0,2000,2048,1,250,T4|V100M32|T4,BE,Running,0,130,30\n"
        "p1,1000,1024,2,1000,,Burstable,Pending,5,,\n"
        "p2,4000,1024,0,0,,Guaranteed,Succeeded,7,80,70\n"
    )
    name = "trace:alibaba-gpuspec33"
    assert trace_stats(name).skipped == 1
    scenario = trace_scenario(name, nodes=2, load=None, jobs=2, seed=0)
    jobs = {j.id: j for j in scenario.jobs}
    assert set(jobs) == {"p0", "p2"}
    shared, cpu_only = jobs["p0"], jobs["p2"]
    assert (shared.cpus, shared.memory_gb, shared.gpus) == (2.0, 2.0, 0.25)
    assert shared.gpu_types == ("T4", "V100M32")
    assert (shared.priority, shared.runtime_s) == (1, 100.0)
    assert shared.deadline_s == pytest.approx(shared.submit_s + 5.0 * shared.runtime_estimate_s)
    assert 20.0 < shared.runtime_estimate_s < 500.0
    assert (cpu_only.gpus, cpu_only.priority, cpu_only.submit_s - shared.submit_s) == (0.0, 3, 7.0)


def test_malformed_swf_line_names_file_and_line(tmp_path: Path) -> None:
    good = "1 0 5 100 2 -1 -1 3 400 -1 1 7 -1 -1 -1 -1 -1 -1\n"
    short = tmp_path / "short.swf"
    short.write_text(f"; MaxProcs: 8\n{good}1 0 5 100 2\n")
    with pytest.raises(TraceError, match=r"short\.swf line 3: expected 18 fields, got 5"):
        trace_scenario(f"trace:swf:{short}", nodes=1, load=None, jobs=1, seed=0)
    word = tmp_path / "word.swf"
    word.write_text(f"{good}{good}{good.replace(' 100 ', ' ten ')}")
    with pytest.raises(TraceError, match=r"word\.swf line 3: field 4 \(run time\).*'ten'"):
        trace_scenario(f"trace:swf:{word}", nodes=1, load=None, jobs=1, seed=0)


def test_swf_relative_to_traces_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "swf").mkdir()
    (tmp_path / "swf" / "x.swf").write_text("1 0 5 100 2 -1 -1 3 400 -1 1 7 -1 -1 -1 -1 -1 -1\n")
    monkeypatch.setenv("RLSCHED_TRACES_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path / "swf")
    assert len(trace_scenario("trace:swf:swf/x.swf", nodes=1, load=None, jobs=1, seed=0).jobs) == 1


def test_missing_files_are_trace_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RLSCHED_TRACES_DIR", str(tmp_path))
    with pytest.raises(TraceError, match=r"openb_node_list_gpu_node\.csv"):
        trace_scenario("trace:alibaba-default", nodes=1, load=None, jobs=1, seed=0)
    with pytest.raises(TraceError, match=r"nowhere\.swf"):
        trace_scenario("trace:swf:nowhere.swf", nodes=1, load=None, jobs=1, seed=0)


def test_unknown_trace_lists_valid_names() -> None:
    with pytest.raises(TraceError, match="trace:alibaba-default:train"):
        trace_scenario("trace:alibaba-nope", nodes=1, load=None, jobs=1, seed=0)


def test_bad_arguments_are_rejected() -> None:
    with pytest.raises(ValueError, match="nodes"):
        trace_scenario("trace:alibaba-default", nodes=5000, load=None, jobs=10, seed=0)
    with pytest.raises(ValueError, match="load"):
        trace_scenario(LUBLIN, nodes=4, load=0.0, jobs=10, seed=0)
    with pytest.raises(ValueError, match="one job"):
        trace_scenario(LUBLIN, nodes=4, load=None, jobs=0, seed=0)
