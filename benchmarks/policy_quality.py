"""Policy quality: train PPO for a wall-clock budget per training seed, then put every
seed's policy in one league with every standard heuristic (`tuned` included) and the
empty-cluster bound, on held-out episodes.

How to run: `.venv/bin/python benchmarks/policy_quality.py [--minutes 15 --seeds 3]`;
`--workload NAME` (repeatable) picks training workloads, `--overrides '{"warm_start":
"tuned"}'` changes PPOHyperparams fields, `--keep DIR` keeps the checkpoints,
`--validation` judges on training-side validation episodes instead (what settings may
be chosen on), `--select-every N` saves every N iterations and judges the checkpoint
that scores best on training-side selection episodes. Prints one
JSON line:
`{"workloads": [{"workload", "trained_on", "nodes", "ppo_scores": [per training seed],
"ppo_mean", "ppo_std", "best_heuristic", "best_heuristic_score", "bound", "gap_closed",
"beats_best_heuristic"}], "training": [...], "config": {...}}`.

Held out: training scenarios come from seeds >= 2**32 (worker.rl.config.TrainingEnv),
`tuned` and the warm start's demonstrations from their own training-seed ranges, and
evaluation uses worker.sim.evaluate's uint32 episode seeds, so no evaluation episode was
seen in training or tuning. `trace:alibaba-default:train` trains on the first 70% of the
trace and is judged on the later 30% and on the two held-out files. Each policy trained
on `--nodes` is also judged on a cluster twice that size.
"""

from __future__ import annotations

import json
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import typer
from provenance import provenance

from worker.rl.validation import VALIDATION_SEED_OFFSET

DEFAULT_WORKLOADS = ["steady", "bursty", "deadline-tight", "node-failures", "trace:alibaba-default:train"]
TRACE_LOAD = 0.9
EVALUATED_ON = {
    "trace:alibaba-default:train": [
        "trace:alibaba-default:heldout",
        "trace:alibaba-gpuspec33",
        "trace:alibaba-multigpu50",
    ]
}
SELECTION_SEED_OFFSET = VALIDATION_SEED_OFFSET + 2**30
"""Checkpoint-selection episodes: training-side too, apart from the validation ones."""


def workload_spec(name: str, nodes: int, jobs: int):  # -> WorkloadSpec (imported lazily)
    """Traces at `TRACE_LOAD`, presets at their own load."""
    from worker.sim.workloads import WorkloadSpec

    return WorkloadSpec(name, nodes, TRACE_LOAD if name.startswith("trace:") else None, jobs)


def select_checkpoint(spec: Any, run_dir: Path, window: int, episodes: int,
                      objective: str = "deadline") -> tuple[str, list[tuple[str, float]]]:  # fmt: skip
    """The run's saved checkpoint with the best mean `objective` on selection episodes of
    the training workload (early stopping on training-side data, never a held-out one)."""
    from worker.rl.inference import PPOPolicy, load_module
    from worker.sim.evaluate import evaluate_policies
    from worker.sim.heuristics.tuned import tuning_spec
    from worker.sim.objectives import get_objective

    spec = tuning_spec(spec)
    seeds = [SELECTION_SEED_OFFSET + i for i in range(episodes)]
    checkpoints = sorted(str(p) for p in run_dir.glob("iter-*") if not p.name.endswith(".partial"))
    policies = [PPOPolicy(load_module(c), Path(c).name) for c in checkpoints]
    results = evaluate_policies(policies, spec, window, episodes, 0, seeds=seeds)
    goal = get_objective(objective)
    scores = [(c, goal.value(r.metrics)) for c, r in zip(checkpoints, results, strict=True)]
    best = max(scores, key=lambda cs: cs[1])[0]
    return best, [(Path(c).name, round(v, 4)) for c, v in scores]


def train_and_select(spec: Any, objective: str, window: int, minutes: float, output_dir: Path, seed: int,
                     overrides: dict[str, Any], select_every: int, label: str, select_spec: Any = None,
                     select_episodes: int = 10) -> str:  # fmt: skip
    """A PPO run of `minutes` on `spec`; with `select_every`, the run's checkpoint with the
    best `objective` on `select_episodes` training-side selection episodes of `select_spec`
    (default `spec`: e.g. the whole cluster when training draws slices of it), else its
    last checkpoint."""
    from worker.rl.config import PPOHyperparams, TrainRoundConfig
    from worker.rl.train import IterationProgress, train_round
    from worker.settings import WorkerSettings

    config = TrainRoundConfig(
        workload=spec,
        objective=objective,
        window=window,
        iterations=1_000_000,
        ppo=replace(PPOHyperparams(seed=seed), **overrides),
        seed=seed,
        output_dir=str(output_dir / f"{label}-seed{seed}"),
        save_every=select_every or None,
        save_start=bool(select_every),
    )

    def on_iteration(progress: IterationProgress) -> None:
        if progress.iteration % 10 == 0:
            print(
                f"[{label} seed {seed}] iter {progress.iteration} steps {progress.env_steps} "
                f"return {progress.episode_return_mean}",
                file=sys.stderr,
                flush=True,
            )

    deadline = time.monotonic() + minutes * 60.0
    result = train_round(
        config,
        on_iteration=on_iteration,
        should_stop=lambda: time.monotonic() >= deadline,
        settings=WorkerSettings(data_dir=output_dir / "data"),
    )
    print(
        f"[{label} seed {seed}] {result.iteration} iterations, {result.env_steps} env steps", file=sys.stderr
    )
    if not select_every:
        return result.checkpoint
    checkpoint, scores = select_checkpoint(
        select_spec or spec, Path(config.output_dir), window, select_episodes, objective
    )
    print(f"[{label} seed {seed}] selected {Path(checkpoint).name} of {scores}", file=sys.stderr, flush=True)
    return checkpoint


def train_one(name: str, minutes: float, nodes: int, window: int, jobs: int, seed: int,
              overrides: dict[str, Any], output_dir: Path, select_every: int = 0,
              select_episodes: int = 10) -> dict[str, Any]:  # fmt: skip
    from worker.rl.config import PPOHyperparams, TrainRoundConfig
    from worker.rl.train import IterationProgress, train_round
    from worker.settings import WorkerSettings

    ppo = replace(PPOHyperparams(seed=seed), **overrides)
    config = TrainRoundConfig(
        workload=workload_spec(name, nodes, jobs),
        window=window,
        iterations=1_000_000,
        ppo=ppo,
        seed=seed,
        output_dir=str(output_dir / f"{name.replace(':', '_')}-seed{seed}"),
        save_every=select_every or None,
    )
    deadline = time.monotonic() + minutes * 60.0
    curve: list[tuple[int, float | None]] = []

    def on_iteration(progress: IterationProgress) -> None:
        curve.append((progress.env_steps, progress.episode_score_mean))
        if len(curve) % 10 == 0:
            print(
                f"[{name} seed {seed}] iter {progress.iteration} steps {progress.env_steps} "
                f"score {progress.episode_score_mean} {progress.env_steps_per_second:.0f} steps/s",
                file=sys.stderr,
                flush=True,
            )

    settings = WorkerSettings(data_dir=output_dir / "data")
    result = train_round(
        config, on_iteration=on_iteration, should_stop=lambda: time.monotonic() >= deadline, settings=settings
    )
    checkpoint, selection = result.checkpoint, None
    if select_every:
        run_dir = Path(config.output_dir)
        checkpoint, selection = select_checkpoint(config.workload, run_dir, window, select_episodes)
    return {
        "workload": name,
        "seed": seed,
        "checkpoint": checkpoint,
        "selection": selection,
        "iterations": result.iteration,
        "env_steps": result.env_steps,
        "train_score_last": result.episode_score_mean,
        "curve": curve[:: max(1, len(curve) // 20)],
        "hyperparams": asdict(ppo),
    }


def train_distilled(name: str, minutes: float, round_minutes: float, nodes: int, window: int, jobs: int,
                    seed: int, overrides: dict[str, Any], distill: dict[str, Any], output_dir: Path,
                    validation_episodes: int) -> dict[str, Any]:  # fmt: skip
    """Expert iteration for `minutes` (labelling included): each round labels training
    episodes with the search (`search:tuned` first, then the search over the latest
    checkpoint unless pinned), then trains PPO with the imitation term for
    `round_minutes`, resuming the previous round. Each round's checkpoint is scored on
    training-side validation episodes beside tuned (the round curve) and gated as in
    AlphaGo Zero: it becomes the current policy (what the next round's search runs over
    and its training resumes from) only if it scores at least as well as the current
    one; the current policy at the end is the run's."""
    from worker.contracts import DistillParams
    from worker.rl.config import PPOHyperparams, TrainRoundConfig, resolve_prior
    from worker.rl.inference import PPOPolicy, load_module
    from worker.rl.labels import LabelRequest, label, label_seeds, write_labels
    from worker.rl.train import train_round
    from worker.rl.validation import validate
    from worker.settings import WorkerSettings

    params = DistillParams.model_validate(distill)
    spec = workload_spec(name, nodes, jobs)
    ppo = replace(PPOHyperparams(seed=seed), **overrides)
    run_dir = output_dir / f"{name.replace(':', '_')}-distill-seed{seed}"
    base = resolve_prior(TrainRoundConfig(workload=spec, window=window, ppo=ppo, seed=seed))
    deadline = time.monotonic() + minutes * 60.0
    settings = WorkerSettings(data_dir=output_dir / "data")
    rounds: list[dict[str, Any]] = []
    checkpoint: str | None = None
    best_score = -float("inf")
    while not rounds or time.monotonic() + 30.0 * round_minutes < deadline:  # no round too short to train
        number = len(rounds) + 1
        search = params.search if checkpoint is None or params.pin else f"search:{checkpoint}"
        started = time.monotonic()
        request = LabelRequest(spec, search, params.options, window, "deadline", ppo.gamma, base.ppo.prior,
                               ppo.backfilling)  # fmt: skip
        table = label(request, label_seeds(seed * 1_000 + number, params.episodes_per_round))
        labels = write_labels(table, run_dir / f"labels-{number:03d}")
        labelled_s = time.monotonic() - started
        round_end = min(deadline, time.monotonic() + round_minutes * 60.0)
        config = replace(
            base,
            iterations=1_000_000,
            ppo=replace(base.ppo, distill_weight=float(params.weight), distill_labels=str(labels.parent)),
            output_dir=str(run_dir / f"round-{number:03d}"),
        )

        def stop(end: float = round_end) -> bool:
            return time.monotonic() >= end

        result = train_round(config, resume_from=checkpoint, should_stop=stop, settings=settings)
        policy = PPOPolicy(load_module(result.checkpoint), f"round-{number}")
        validation = validate(policy, spec, window, validation_episodes)
        score, tuned_val = validation.score, validation.tuned_score
        accepted = score >= best_score
        if accepted:
            checkpoint, best_score = result.checkpoint, score
        rounds.append({"round": number, "search": search.split("/")[-1], "decisions": table.num_rows,
                       "label_s": round(labelled_s, 1), "iteration": result.iteration,
                       "env_steps": result.env_steps, "validation_score": round(score, 4),
                       "validation_tuned": round(tuned_val, 4), "accepted": accepted})  # fmt: skip
        print(f"[{name} seed {seed}] {json.dumps(rounds[-1])}", file=sys.stderr, flush=True)
    assert checkpoint is not None
    return {
        "workload": name,
        "seed": seed,
        "checkpoint": checkpoint,
        "selection": None,
        "iterations": max(r["iteration"] for r in rounds if r["accepted"]),
        "env_steps": max(r["env_steps"] for r in rounds if r["accepted"]),
        "rounds": rounds,
        "distill": params.model_dump(),
    }


def judge(eval_name: str, trained_on: str, checkpoints: list[str], nodes: int, window: int, jobs: int,
          episodes: int, eval_seed: int, validation: bool = False) -> dict[str, Any]:  # fmt: skip
    from worker.rl.inference import PPOPolicy, load_module
    from worker.sim.bound import gap_closed
    from worker.sim.heuristics.tuned import tuning_spec
    from worker.sim.league import run_league

    spec = workload_spec(eval_name, nodes, jobs)
    seeds = None
    if validation:  # the training split of a trace, training-side seeds
        spec = tuning_spec(spec)
        seeds = [VALIDATION_SEED_OFFSET + eval_seed + i for i in range(episodes)]
    policies = [PPOPolicy(load_module(c), f"ppo-{i}") for i, c in enumerate(checkpoints)]
    league = run_league(spec, window, episodes, eval_seed, "standard", policies, seeds=seeds)
    scores = [league.row(p.name).value for p in policies]
    mean = statistics.fmean(scores)
    best = league.best_heuristic_score
    gap = None if league.bound is None else gap_closed(mean, best, league.bound)
    return {
        "workload": eval_name,
        "trained_on": trained_on,
        "nodes": nodes,
        "ppo_scores": [round(s, 4) for s in scores],
        "ppo_mean": round(mean, 4),
        "ppo_std": round(statistics.pstdev(scores), 4),
        "best_heuristic": league.best_heuristic,
        "best_heuristic_score": round(best, 4),
        "tuned_choice": next((r.chose for r in league.rows if r.chose), None),
        "tuned_score": next((round(r.value, 4) for r in league.rows if r.chose), None),
        "bound": None if league.bound is None else round(league.bound, 4),
        "gap_closed": None if gap is None else round(gap, 3),
        "beats_best_heuristic": min(scores) >= best,
    }


def main(
    minutes: float = typer.Option(15.0, help="Training wall-clock budget per workload and seed."),
    workload: list[str] = typer.Option(DEFAULT_WORKLOADS, help="Training workloads (repeat)."),
    seeds: int = typer.Option(3, min=1, help="Training seeds per workload (0, 1, ...)."),
    episodes: int = typer.Option(20, min=1, help="Held-out evaluation episodes."),
    eval_seed: int = typer.Option(20_240_601, help="Seed of the held-out episodes."),
    nodes: int = 16,
    window: int = 32,
    jobs: int = 200,
    overrides: str = typer.Option("{}", help="JSON object of PPOHyperparams fields."),
    keep: Path | None = typer.Option(None, help="Keep checkpoints here (default: temp dir)."),
    double_size: bool = typer.Option(True, help="Also judge each policy on 2x the nodes."),
    validation: bool = typer.Option(
        False, help="Judge on training-side validation episodes (for choosing settings), not held-out ones."
    ),
    select_every: int = typer.Option(
        0, min=0, help="Save every N iterations; judge the best on selection episodes (0: the last)."
    ),
    select_episodes: int = typer.Option(10, min=1, help="Training-side episodes per selected checkpoint."),
    distill: str = typer.Option(
        "", help="JSON DistillParams (weight, episodes_per_round, options, search, pin): expert iteration."
    ),
    round_minutes: float = typer.Option(3.0, help="With --distill: PPO minutes per round (after labelling)."),
    out: Path | None = typer.Option(None, help="Also merge the rows into this JSON file (one run per call)."),
) -> None:
    output_dir = keep or Path(tempfile.mkdtemp(prefix="rlq-", dir="/tmp"))
    output_dir.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    training: list[dict[str, Any]] = []
    try:
        for name in workload:
            settings = (json.loads(overrides), output_dir, select_every, select_episodes)
            if distill:
                runs = [
                    train_distilled(
                        name,
                        minutes,
                        round_minutes,
                        nodes,
                        window,
                        jobs,
                        s,
                        json.loads(overrides),
                        json.loads(distill),
                        output_dir,
                        select_episodes,
                    )
                    for s in range(seeds)
                ]
            else:
                runs = [train_one(name, minutes, nodes, window, jobs, s, *settings) for s in range(seeds)]
            training.extend({k: v for k, v in r.items() if k != "hyperparams"} for r in runs)
            checkpoints = [r["checkpoint"] for r in runs]
            judged = [(eval_name, nodes) for eval_name in EVALUATED_ON.get(name, [name])]
            if double_size:
                judged.append((EVALUATED_ON.get(name, [name])[0], 2 * nodes))
            for eval_name, size in judged:
                row = judge(eval_name, name, checkpoints, size, window, jobs, episodes, eval_seed, validation)
                rows.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
    finally:
        if keep is None:
            shutil.rmtree(output_dir, ignore_errors=True)
    config = {"minutes": minutes, "seeds": seeds, "episodes": episodes, "nodes": nodes, "window": window,
              "jobs": jobs, "overrides": json.loads(overrides), "validation": validation,
              "select_every": select_every, "select_episodes": select_episodes}  # fmt: skip
    config |= {"distill": json.loads(distill) if distill else None, "round_minutes": round_minutes}
    document = {**provenance(), "workloads": rows, "training": training, "config": config}
    print(json.dumps(document))
    if out is not None:
        merge(out, document)


def merge(path: Path, document: dict[str, Any]) -> None:
    """Add a run's rows to `path`, replacing rows of the same (workload, nodes, recipe), so a
    table can be filled one workload per call; each row keeps its own command and config."""
    recipe = json.dumps(document["config"].get("distill"), sort_keys=True)
    stamp = {k: document[k] for k in ("command", "date", "commit") if k in document}
    new_rows = [{**r, "recipe": recipe, "config": document["config"], **stamp} for r in document["workloads"]]
    new_training = [{**t, "recipe": recipe} for t in document["training"]]
    old = json.loads(path.read_text()) if path.exists() else {"workloads": [], "training": []}

    def key(row: dict[str, Any]) -> tuple:
        return row["workload"], row["trained_on"], row["nodes"], row.get("recipe")

    keys = {key(r) for r in new_rows}
    trained = {(t["workload"], recipe) for t in new_training}
    kept = [r for r in old["workloads"] if key(r) not in keys]
    old["workloads"] = kept + new_rows
    old_training = [t for t in old["training"] if (t["workload"], t.get("recipe")) not in trained]
    old["training"] = old_training + new_training
    old.update(stamp)
    old["command"] = list(dict.fromkeys(r["command"] for r in old["workloads"] if "command" in r))
    path.write_text(json.dumps(old, indent=1) + "\n")
    plot_rounds(old["training"], path.with_name(f"{path.stem}_rounds.png"))


def plot_rounds(training: list[dict[str, Any]], png: Path) -> None:
    """Each distilling run's rounds on validation episodes, beside `tuned` (one panel per
    training workload, a line per seed; a round the gate rejected is a cross)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [t for t in training if t.get("rounds")]
    if not runs:
        return
    names = list(dict.fromkeys(t["workload"] for t in runs))
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.4), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        for t in (t for t in runs if t["workload"] == name):
            rounds = [r["round"] for r in t["rounds"]]
            scores = [r["validation_score"] for r in t["rounds"]]
            (line,) = ax.plot(rounds, scores, "-", label=f"seed {t['seed']}")
            for r in t["rounds"]:  # kept rounds filled, rejected ones (gating) as crosses
                marker = "o" if r.get("accepted", True) else "x"
                ax.plot(r["round"], r["validation_score"], marker, color=line.get_color())
        first = next(t for t in runs if t["workload"] == name)
        ax.axhline(first["rounds"][0]["validation_tuned"], linestyle="--", color="grey", label="tuned")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("round")
        ax.set_ylabel("validation score")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    typer.run(main)
