"""Results pages of the docs site, generated from benchmarks/results/*.json at build time.

mkdocs-gen-files runs this on every `mkdocs build` / `mkdocs serve`, so the figures on
the site are always the ones in the JSON files: nothing is copied by hand. Each JSON gets
one page (a renderer per benchmark where the shapes differ; a generic page for a file no
renderer knows), its PNGs, a line on the results index and an entry in the results nav.

Provenance: the JSON's own `command`, `date` and `commit` when it has them, otherwise the
date and commit of the last `git log` entry touching the file (and "unknown" outside a
git checkout); a file without a `command` says so.
"""

from __future__ import annotations

import json
import logging
import re
import statistics
import subprocess
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mkdocs_gen_files
from mkdocs.structure.files import InclusionLevel

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
OUT = Path("results")
log = logging.getLogger("mkdocs.plugins.gen_results_pages")

Json = dict[str, Any]


@dataclass(frozen=True)
class Provenance:
    commands: list[str]
    date: str
    commit: str


@dataclass(frozen=True)
class Page:
    title: str
    summary: str
    body: str


def provenance(path: Path, data: Json) -> Provenance:
    command = data.get("command", [])
    commands = [command] if isinstance(command, str) else list(command)
    date, commit = data.get("date"), data.get("commit")
    if not (date and commit):
        git_date, git_commit = _git_last_change(path)
        date, commit = date or git_date, commit or git_commit
    return Provenance(commands, date, commit)


def _git_last_change(path: Path) -> tuple[str, str]:
    try:
        out = subprocess.run(
            ["git", "log", "-1", "--format=%cs %H", "--", path.name],
            cwd=path.parent,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        return "unknown", "unknown (not a git checkout)"
    return (out[0], out[1]) if len(out) == 2 else ("unknown", "none (the file is not committed)")


def fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.{4 if abs(value) < 1000 else 2}f}".rstrip("0").rstrip(".")
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, list):
        return ", ".join(fmt(v) for v in value)
    if isinstance(value, dict):
        return f"`{json.dumps(value)}`"
    return str(value).replace("|", "\\|")


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(fmt(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def settings_table(settings: Json) -> str:
    return table(["setting", "value"], ((f"`{k}`", v) for k, v in settings.items()))


def code(name: str | None) -> str:
    return f"`{name}`" if name else ""


def _policy_rows(data: Json) -> list[tuple]:
    """One row per judged workload of a policy_quality JSON: the policy per training seed
    and its mean beside the best heuristic, `tuned` and the bound."""
    return [
        (
            code(w["workload"]),
            code(w["trained_on"]),
            w["nodes"],
            w["ppo_scores"],
            f"{fmt(w['ppo_mean'])} ({fmt(w['ppo_std'])})",
            f"{fmt(w['best_heuristic_score'])} ({code(w['best_heuristic'])})",
            f"{fmt(w['tuned_score'])} ({code(w['tuned_choice'])})",
            w["bound"],
            f"{w['ppo_mean'] - w['best_heuristic_score']:+.4f}",
            w["gap_closed"],
        )
        for w in data["workloads"]
    ]


def render_policy_quality(data: Json) -> Page:
    overrides = data.get("config", {}).get("overrides", {})
    if "prior" in overrides:
        variant = f"residual policy on `{overrides['prior']}`"
    elif "warm_start" in overrides:
        variant = f"PPO warm-started from `{overrides['warm_start']}`"
    else:
        variant = "PPO from scratch"
    rows = _policy_rows(data)
    headers = [
        "workload (held-out episodes)",
        "trained on",
        "nodes",
        "PPO per training seed",
        "PPO mean (std)",
        "best heuristic",
        "`tuned`",
        "bound",
        "PPO mean - best",
        "gap closed",
    ]
    training = [
        (code(t["workload"]), t["seed"], Path(t["checkpoint"]).name, t["iterations"], t["env_steps"])
        for t in data.get("training", [])
    ]
    configs = "".join(
        f"\n**`{key}`**\n\n{settings_table(value)}" for key, value in data.items() if key.startswith("config")
    )
    body = (
        "Each training seed's policy is judged in one league with the standard heuristics "
        "(`tuned` included) and the empty-cluster bound on the same held-out episodes; a policy "
        "trained on N nodes is judged on 2N nodes too. Scores are the `deadline` objective "
        "(higher is better). *Gap closed* is (PPO - best heuristic) / (bound - best heuristic).\n\n"
        + table(headers, rows)
        + "\n## Training\n\n"
        + table(["workload", "seed", "checkpoint kept", "iterations", "env steps"], training)
        + "\n## Settings\n"
        + configs
    )
    gains = sorted(w["ppo_mean"] - w["best_heuristic_score"] for w in data["workloads"])
    summary = (
        f"{variant}: mean minus the best heuristic {gains[0]:+.4f} to {gains[-1]:+.4f}, "
        f"median {statistics.median(gains):+.4f}, over {len(gains)} rows"
    )
    return Page(f"Policy quality: {variant}", summary, body)


def _searched(label: str) -> str:
    """A round's labelling search: `search:tuned`, or a checkpoint's name (`iter-000013`)."""
    return label if label.startswith("search:") else f"search:{label}"


def _round_cell(row: Json, key: str) -> Any:
    return code(_searched(row[key])) if key == "search" else row.get(key, "")


def _distilled_searches(searches: list[Json]) -> str:
    if not searches:
        return ""
    rows = [
        (code(x["workload"]), x["nodes"], x["episodes"], code(json.dumps({"depth": x["options"]["depth"]})),
         x["policy_scores"], x["search_scores"], x["search_mean"], x["search_tuned_score"],
         f"{fmt(x['best_heuristic_score'])} ({code(x['best_heuristic'])})", x["bound"],
         [None if g is None else round(g, 3) for g in x["search_gap_closed"]],
         x["search_ms_per_decision"], x["search_tuned_ms_per_decision"])
        for x in searches
    ]  # fmt: skip
    headers = ["workload (held-out)", "nodes", "episodes", "options", "distilled policy", "search over it",
               "mean", "`search:tuned`", "best heuristic", "bound", "gap closed by the search",
               "ms / decision", "`search:tuned` ms / decision"]  # fmt: skip
    return (
        "\n## Searching with the distilled policy\n\n`search:<checkpoint>` (the policy's top pairs by "
        "logit are the candidates, it plays the rollouts) beside `search:tuned` at the same options, "
        "on the same held-out episodes.\n\n" + table(headers, rows)
    )


def render_policy_quality_distill(data: Json) -> Page:
    """Expert iteration: rows merged one workload per call, each with its own settings."""
    rows = _policy_rows(data)
    headers = ["workload (held-out episodes)", "trained on", "nodes", "distilled policy per training seed",
               "mean (std)", "best heuristic", "`tuned`", "bound", "mean - best", "gap closed"]  # fmt: skip
    keys = ("round", "search", "decisions", "label_s", "iteration", "validation_score", "validation_tuned",
            "accepted")  # fmt: skip
    rounds = [
        (code(t["workload"]), t["seed"], *(_round_cell(r, k) for k in keys))
        for t in data.get("training", [])
        for r in t.get("rounds", [])
    ]
    round_headers = ["workload", "seed", "round", "labelled by", "decisions", "labelling s", "iteration"]
    round_headers += ["validation score", "`tuned`", "kept"]
    settings = {json.dumps(w["config"], sort_keys=True): w for w in data["workloads"]}
    configs = "".join(
        f"\n**{code(w['trained_on'])}**: `{w.get('command', '')}`\n\n{settings_table(w['config'])}"
        for w in settings.values()
    )
    body = (
        "Expert iteration: each round labels training episodes with a search (`search:tuned` in "
        "round 1, then the search over the round's latest checkpoint), then PPO trains with the "
        "imitation term on them, resuming the previous round; labelling counts in the training "
        "minutes. The last round's policy of each training seed is judged with **no search at "
        "inference**, in one league with the standard heuristics (`tuned` included) and the "
        "empty-cluster bound, on held-out episodes; a policy trained on N nodes is judged on 2N "
        "nodes too.\n\n"
        + table(headers, rows)
        + _distilled_searches(data.get("searches", []))
        + "\n## Rounds\n\nEach round's checkpoint on training-side validation episodes (never a "
        "held-out one), beside `tuned` on the same episodes. A round's checkpoint is kept (the next "
        "round searches over it and resumes from it) only if it scores at least as well there as the "
        "one kept before (AlphaGo Zero's gating); the run's policy is the last one kept.\n\n"
        + table(round_headers, rounds)
        + "\n## Settings\n"
        + configs
    )
    gains = sorted(w["ppo_mean"] - w["best_heuristic_score"] for w in data["workloads"])
    above = sum(g > 0 for g in gains)
    summary = (
        f"distilled policy, no search at inference: above the best heuristic on {above} of {len(gains)} "
        f"rows, mean minus best {gains[0]:+.4f} to {gains[-1]:+.4f}"
    )
    return Page("Policy quality: expert iteration (distilled search)", summary, body)


def render_fgd_heuristics(data: Json) -> Page:
    rows = [
        (
            r["pod_list"],
            code(r["policy"]),
            r["ours_100"],
            r["theirs_100"],
            r["ours_130"],
            r["theirs_130"],
            r["seeds"],
        )
        for r in data["rows"]
    ]
    body = (
        f"FGD's inflation experiment (Weng et al., ATC'23): the whole openb cluster "
        f"({fmt(data.get('nodes'))} nodes), each pod list shuffled by seed and resampled to "
        f"{fmt(data.get('inflation'))}x the GPU capacity, pods placed on arrival or failed, never "
        "leaving. GPU allocation (% of the cluster's GPUs) after 100% and 130% of the capacity "
        "has arrived, mean over seeds 42, 43, ..., beside FGD's published figures. `fgd` is "
        "scored as their experiment scripts do it (typical shapes at 95% coverage, step 1, "
        "integer sigmoid scores, lowest-index ties). Our `dotprod` prefers the largest dot "
        "product where theirs prefers the smallest, and our `gpupacking`, `gpuclustering` and "
        "`bestfit` are plain rules, not their tiered integer scores.\n\n"
        + table(
            ["pod list", "placement", "ours 100%", "theirs 100%", "ours 130%", "theirs 130%", "seeds"], rows
        )
    )
    fgd = [r for r in data["rows"] if r["policy"] == "fgd" and r["theirs_100"] is not None]
    worst = max((abs(r["ours_100"] - r["theirs_100"]) for r in fgd), default=float("nan"))
    summary = f"`fgd` within {worst:.2f} points of theirs"
    searched = [r for r in data["rows"] if r["policy"].startswith("search:")]
    if searched:
        body += fgd_search_section(searched, data.get("search_selection") or {})
        above = sum(r["ours_100"] >= r["fgd_100"] and r["ours_130"] >= r["fgd_130"] for r in searched)
        summary += f"; `search:fgd` at or above it at 100% and 130% on {above} of {len(searched)} pod lists"
    return Page("FGD's inflation experiment: heuristics and search", summary, body)


def fgd_search_section(rows: list[Json], selection: Json) -> str:
    """The search rows beside `fgd` on the same episodes, and how their options were chosen."""
    table_rows = [
        (
            r["pod_list"],
            r.get("seeds"),
            r["ours_100"],
            r["fgd_100"],
            r["theirs_fgd_100"],
            r["ours_130"],
            r["fgd_130"],
            r["theirs_fgd_130"],
            " / ".join(f"{fmt(a)}, {fmt(b)}" for a, b in r.get("per_seed", [])),
            r["ms_per_decision"],
            r["changed_share"],
            r["settled_at_ceiling_share"],
        )
        for r in rows
    ]
    headers = [
        "pod list",
        "seeds",
        "search 100%",
        "`fgd` (ours) 100%",
        "FGD (theirs) 100%",
        "search 130%",
        "`fgd` (ours) 130%",
        "FGD (theirs) 130%",
        "per seed (100%, 130%)",
        "ms a decision",
        "decisions changed",
        "settled by FGD's rollouts",
    ]
    runs = [
        (r["options"], r["ours_100"], r["ours_130"], r["gain_over_fgd"], r["ms_per_decision"])
        for r in selection.get("runs", [])
    ]
    chosen_on = (
        f"{fmt(selection.get('episodes'))} episodes of `{selection.get('workload')}` on "
        f"{fmt(selection.get('nodes'))} nodes (seeds: {selection.get('seeds')}), where `fgd` reaches "
        f"{fmt(selection.get('fgd_100'))}% and {fmt(selection.get('fgd_130'))}%"
        if runs
        else "nothing: " + str(selection.get("rule", "unknown"))
    )
    return (
        "\n## Search over FGD\n\n"
        "`search:fgd` (worker/search over `fifo+fgd`, objective `allocation`): each pod is offered on "
        "FGD's best nodes, and each candidate is rolled out by FGD over the next arrivals sampled from "
        "the default pod list (the training file, for every list evaluated) on seeds no evaluation "
        "uses; it leaves FGD's node only when the paired gain over the samples says so. On the "
        "first seeds of the rows above (42, ...: `seeds`), beside `fgd` on the same seeds.\n\n"
        + table(headers, table_rows)
        + f"\nOptions: {fmt(rows[0].get('options'))}. Chosen on {chosen_on}:\n\n"
        + table(["options", "100%", "130%", "gain over `fgd`", "ms a decision"], runs)
    )


def render_fgd_learned(data: Json) -> Page:
    rows = []
    for r in data["rows"]:
        seeds = r.get("per_training_seed", [])
        rows.append(
            (
                r["pod_list"],
                r["ours_100"],
                " / ".join(fmt(s[0]) for s in seeds),
                r["fgd_100"],
                r["theirs_fgd_100"],
                r["ours_130"],
                " / ".join(fmt(s[1]) for s in seeds),
                r["fgd_130"],
                r["theirs_fgd_130"],
                r.get("selected_checkpoints", []),
            )
        )
    headers = [
        "pod list",
        "learned 100%",
        "per training seed",
        "`fgd` (ours) 100%",
        "FGD (theirs) 100%",
        "learned 130%",
        "per training seed",
        "`fgd` (ours) 130%",
        "FGD (theirs) 130%",
        "checkpoints kept",
    ]
    skip = {"rows", "command", "date", "commit", "note", "selection_scores"}
    settings = {k: v for k, v in data.items() if k not in skip}
    selection = [
        (seed, "; ".join(f"{name}: {fmt(score)}" for name, score in scores))
        for seed, scores in enumerate(data.get("selection_scores", []))
    ]
    body = (
        "A learned placement in FGD's inflation experiment: PPO trained on `trace:openb-inflation` "
        "(slices of `train_nodes` openb nodes, the default pod list, objective `allocation`, window 1), "
        "judged on the whole cluster, the three pod lists and seeds 42-51, beside `fgd` on the same "
        "episodes. gpuspec33 and multigpu50 are never trained or selected on.\n\n"
        + table(headers, rows)
        + "\n## Settings\n\n"
        + settings_table(settings)
        + (
            "\n## Checkpoint selection\n\n"
            + table(["training seed", "checkpoint: selection score"], selection)
            if selection
            else ""
        )
        + (f"\n{data['note']}\n" if data.get("note") else "")
    )
    above = sum(r["ours_100"] >= r["fgd_100"] and r["ours_130"] >= r["fgd_130"] for r in data["rows"])
    return Page(
        "FGD's inflation experiment: learned placement"
        + (", selected on the whole cluster" if data.get("select_nodes") else ""),
        f"at or above our `fgd` at 100% and 130% on {above} of {len(rows)} pod lists",
        body,
    )


RLSCHEDULER_ORDERS = ("fifo", "wfp3", "unicep", "sjf", "f1", "rl", "search")


def render_rlscheduler(data: Json) -> Page:
    by_key = {(r["policy"], r["backfilling"]): r for r in data["rows"]}
    rows = []
    for backfilling in (False, True):
        label = "with backfilling" if backfilling else "without backfilling"
        for side in ("ours", "theirs"):
            cells = []
            for order in RLSCHEDULER_ORDERS:
                r = by_key.get((order, backfilling), {})
                cell = fmt(r.get(side))
                if side == "ours" and r.get("ours_per_seed"):
                    cell += f" (seeds: {fmt(r['ours_per_seed'])})"
                if side == "ours" and r.get("base"):
                    cell += f" (over `{r['base']}`)"
                cells.append(cell)
            rows.append((f"{label}, {side}", *cells))
    heuristics = [o for o in RLSCHEDULER_ORDERS if o not in ("rl", "search")]
    strict = [by_key.get((o, False), {}).get("ours_strict_mode") for o in heuristics]
    rl_settings = [
        (
            "with" if r["backfilling"] else "without",
            r.get("train_minutes"),
            r.get("training_seeds"),
            r.get("select_every"),
            r.get("select_episodes"),
            r.get("selected_checkpoints", []),
            r.get("overrides"),
        )
        for r in data["rows"]
        if r["policy"] == "rl"
    ]
    body = (
        f"RLScheduler's Lublin-1 setting: mean bounded slowdown (lower is better) over "
        f"{fmt(data.get('sequences'))} sequences of {fmt(data.get('sequence_jobs'))} jobs, beside "
        "RLScheduler's published table. Without backfilling every decision commits to the next "
        "job to start and nothing starts before it; with backfilling, EASY around the head job's "
        "reservation (`easy:`). Their WFP3 and UNICEP score waiting jobs before their scheduled "
        'time is set, so the "wait" in both formulas is -(submit + 1); ours use the real wait, '
        "hence the far apart rows. The RL rows are a residual policy on `tuned`, its checkpoint "
        "selected on training sequences (random windows of the same file: there is no held-out "
        "Lublin file).\n\n"
        + table(["Lublin-1", "FCFS", "WFP3", "UNICEP", "SJF", "F1", "RL", "search (ours only)"], rows)
        + "\nOur `strict:` heuristics (decide once some job fits), for contrast: "
        + ", ".join(f"{o.upper()} {fmt(v)}" for o, v in zip(heuristics, strict, strict=True))
        + ".\n\n## RL rows\n\n"
        + table(
            [
                "backfilling",
                "minutes a seed",
                "seeds",
                "select every",
                "selection sequences",
                "checkpoints kept",
                "overrides",
            ],
            rl_settings,
        )
    )
    searched = [r for r in data["rows"] if r["policy"] == "search"]
    if searched:
        body += rlscheduler_search_section(searched)
    rl = by_key.get(("rl", True), {})
    summary = f"RL with backfilling {fmt(rl.get('ours'))} against their {fmt(rl.get('theirs'))}"
    for r in searched:
        their_rl = by_key.get(("rl", r["backfilling"]), {}).get("theirs")
        summary += (
            f"; `{r['heuristic']}` {fmt(r['ours'])} {'with' if r['backfilling'] else 'without'} "
            f"backfilling (their RL {fmt(their_rl)})"
        )
    return Page("RLScheduler's Lublin-1 table", summary, body)


def rlscheduler_search_section(rows: list[Json]) -> str:
    """Each search row: its base and options, and what was tried on validation sequences."""
    parts = [
        "\n## Search rows\n\n"
        "`search:<base>` (worker/search) on the `slowdown` objective, over the best of their five "
        "heuristics on training sequences; base and options chosen on those sequences only (random "
        "windows of the file at validation seeds), then measured on the 10 sequences above.\n\n"
        + table(
            ["backfilling", "search", "mean", "per sequence", "ms a decision", "changed", "options"],
            [
                (
                    "with" if r["backfilling"] else "without",
                    code(r["heuristic"]),
                    r["ours"],
                    r["ours_per_sequence"],
                    r["ms_per_decision"],
                    r["changed_share"],
                    r["options"],
                )
                for r in rows
            ],
        )
    ]
    for r in rows:
        selection = r.get("selection", {})
        parts.append(
            f"\n### Chosen {'with' if r['backfilling'] else 'without'} backfilling\n\n"
            f"On {fmt(selection.get('sequences'))} validation sequences ({selection.get('seeds')}); "
            f"rule: {selection.get('rule')}.\n\n"
            + table(["heuristic", "mean"], [(code(k), v) for k, v in selection.get("heuristics", {}).items()])
            + "\n"
            + table(
                ["options (over the defaults)", "mean", "per sequence", "ms a decision"],
                (
                    (run["options"], run["mean"], run["per_sequence"], run["ms_per_decision"])
                    for run in selection.get("runs", [])
                ),
            )
        )
    return "".join(parts)


def render_soak(data: Json) -> Page:
    latency, memory, growth = data["latency"], data["memory_mb"], data["memory_growth_after_warm_up"]
    processes = sorted(memory["after_warm_up"])
    body = (
        f"Plans and a training run through a stack of real processes (dev server, training and "
        f"inference workers, API): {fmt(data['plans'])} plans from {fmt(latency['clients'])} clients, "
        f"a training run of {fmt(data['training_run']['rounds_done'])} rounds "
        f"(status `{data['training_run']['status']}`). Elapsed {fmt(data.get('elapsed_s'))} s on "
        f"{fmt(data.get('machine', {}).get('cpus'))} CPUs, load average at the end "
        f"{fmt(data.get('machine', {}).get('load_avg_1m_at_end'))}.\n\n## Targets\n\n"
        + table(["target", "met"], ((f"`{k}`", v) for k, v in data["targets"].items()))
        + "\n## Plans\n\n"
        + table(
            ["failed plans", "service workflow continued as new"],
            [(data["failed_plans"], data["scheduler_service_continued_as_new"])],
        )
        + "\n## POST /schedule latency\n\n"
        + table(
            ["phase", "p50 ms", "p99 ms"],
            [
                ("idle", latency["idle"]["p50_ms"], latency["idle"]["p99_ms"]),
                ("while training", latency["while_training"]["p50_ms"], latency["while_training"]["p99_ms"]),
                ("ratio", latency["p50_ratio_training_vs_idle"], latency["p99_ratio_training_vs_idle"]),
            ],
        )
        + "\n## Memory (resident, MB)\n\n"
        + table(
            ["process", "after warm-up", "end", "growth"],
            (
                (f"`{p}`", memory["after_warm_up"][p], memory["end"][p], f"{growth[p]:+.2%}")
                for p in processes
            ),
        )
        + "\n## Open files and Ray folders\n\n"
        + table(
            ["what", "after warm-up", "end"],
            [
                *(
                    (f"open fds: {name}", v["after_warm_up"], v["end"])
                    for name, v in data["open_fds"].items()
                ),
                ("Ray session folders", *data["ray_session_dirs"].values()),
                ("training worker processes", *data["training_worker_processes"].values()),
            ],
        )
    )
    return Page(
        f"Soak: {fmt(data['plans'])} plans, {fmt(data['training_run']['rounds_done'])} rounds",
        f"{fmt(data['failed_plans'])} failed plans; "
        f"p99 while training {fmt(latency['p99_ratio_training_vs_idle'])}x idle",
        body,
    )


REPLAY_RUNS = {
    "slurm_backfill": "Slurm alone (sched/backfill)",
    "slurm_steered": "Slurm steered by the control loop",
    "sim": "simulator, same policy",
    "sim_fifo_backfill": "simulator, Slurm-like heuristic",
}


def render_slurm_replay(data: Json) -> Page:
    settings, runs = data["settings"], data["runs"]
    metrics = ("score", "mean_bounded_slowdown", "utilization")
    body = (
        settings_table(settings)
        + "\n## Runs\n\nEvery figure comes from the runs' per-job records through one function; "
        "times in simulated seconds.\n\n"
        + table(
            ["run", "policy", *metrics, "mean wait s", "makespan s", "finished"],
            (
                (
                    REPLAY_RUNS.get(name, name),
                    run.get("policy"),
                    *(run[m] for m in metrics),
                    run["mean_wait_s"],
                    run["makespan_s"],
                    run["jobs_finished"],
                )
                for name, run in runs.items()
            ),
        )
        + "\n## Simulator against Slurm\n\nMetric differences are simulator minus Slurm; start "
        "errors are per job, |simulated start - Slurm's start|.\n\n"
        + table(
            [
                "simulator",
                "Slurm",
                *(f"{m} diff" for m in metrics),
                "mean start error s",
                "median",
                "p90",
                "same node",
            ],
            (
                (
                    REPLAY_RUNS.get(pair["sim"], pair["sim"]),
                    REPLAY_RUNS.get(pair["slurm"], pair["slurm"]),
                    *(pair["metric_diff"][m] for m in metrics),
                    pair["start_error"].get("mean_abs_s"),
                    pair["start_error"].get("median_abs_s"),
                    pair["start_error"].get("p90_abs_s"),
                    pair["start_error"].get("same_node_share"),
                )
                for pair in data["sim_vs_slurm"]
            ),
        )
    )
    steered = runs.get("slurm_steered", {})
    if steered:
        body += "\n## The control loop\n\n" + table(
            ["ticks", "median tick ms", "max tick ms", "jobs it started", "decisions", "failed ticks"],
            [
                (
                    steered.get("ticks"),
                    steered.get("tick_ms_median"),
                    steered.get("tick_ms_max"),
                    steered.get("started_by_loop"),
                    ", ".join(f"{k}: {v}" for k, v in steered.get("decisions", {}).items()),
                    len(steered.get("failed_ticks", [])),
                )
            ],
        )
    if data.get("note"):
        body += f"\n## What it shows\n\n{data['note']}\n"
    score = {name: runs[name]["score"] for name in ("slurm_backfill", "slurm_steered", "sim") if name in runs}
    return Page(
        f"Sim against reality: {settings['jobs']} {settings['workload']} jobs on a real Slurm",
        "score " + ", ".join(f"{REPLAY_RUNS[k]} {fmt(v)}" for k, v in score.items()),
        body,
    )


def render_search_quality(data: Json) -> Page:
    """Decision-time search against the heuristics on the same held-out episodes."""
    rows = sorted(data.get("workloads", []), key=lambda r: (r["nodes"], r["workload"]))
    options = rows[0]["search"]["options"] if rows else {}
    body = (
        "`search:tuned` with its default options against the best heuristic of the whole set "
        "(per workload), `tuned` and the empty-cluster bound, on the same held-out episodes. "
        "*gap closed* is the share of the distance from the best heuristic to the bound the "
        "search covers (negative: below the best heuristic).\n\n"
        + table(
            [
                "workload",
                "nodes",
                "episodes",
                "search",
                "best heuristic",
                "its score",
                "tuned",
                "bound",
                "gap closed",
                "ms / decision",
                "decisions changed",
                "out of time",
            ],
            (
                (
                    f"`{r['workload']}`",
                    r["nodes"],
                    r.get("episodes"),
                    r["search"]["score"],
                    code(r["best_heuristic"]),
                    r["best_heuristic_score"],
                    r["tuned_score"],
                    r.get("bound"),
                    r.get("gap_closed"),
                    r["search"].get("ms_per_decision"),
                    r["search"].get("changed_share"),
                    r["search"].get("out_of_time_share"),
                )
                for r in rows
            ),
        )
        + "\n## Default options\n\n"
        + settings_table(options)
    )
    if data.get("selection"):
        selection = data["selection"]
        body += (
            "\n## How the defaults were chosen\n\nOn training-side validation episodes only "
            f"({fmt(selection.get('seeds'))}); rule: {selection.get('rule', '')}.\n\n"
            + table(
                ["options", "mean gain over tuned"],
                ((code(k), v) for k, v in selection.get("mean_gain", {}).items()),
            )
        )
    if data.get("explorations"):
        tried = [
            (code(w["workload"]), w["validated_on"] if w["validated_on"] != w["workload"] else "",
             code(json.dumps(r["options"])), x["episodes"], r["score"], w["tuned_score"],
             f"{r['gain_over_tuned']:+.4f}", r["episodes_below_tuned"], r["ms_per_decision"])
            for x in data["explorations"]
            for w in x["workloads"]
            for r in w["runs"]
        ]  # fmt: skip
        body += (
            "\n## Other options tried\n\nAgainst `tuned` on training-side validation episodes, as the "
            "defaults were chosen; none became a default.\n\n" + table(EXPLORED_HEADERS, tried)
        )
    if data.get("budget_curve"):
        body += "\n## Quality against budget\n\n" + table(
            ["workload", "nodes", "budget ms", "score", "ms / decision", "out of time", "gap closed"],
            (
                (f"`{p['workload']}`", p["nodes"], p["budget_ms"], p["score"], p["ms_per_decision"],
                 p["out_of_time_share"], p.get("gap_closed"))
                for p in data["budget_curve"]
            ),
        )  # fmt: skip
    if data.get("cost"):
        body += "\n## Cost\n\n" + table(
            ["nodes", "jobs", "ms / decision", "ms / decision at depth 1", "rollout steps/s", "env steps/s",
             "rollout step cheaper by"],
            (
                (c["nodes"], c["jobs"], c["ms_per_decision"], c.get("ms_per_decision_depth_1"),
                 c.get("rollout_steps_per_s"), c.get("env_steps_per_s"),
                 c.get("rollout_step_cheaper_than_env_step"))
                for c in data["cost"]
            ),
        )  # fmt: skip
    plans = data.get("plans")
    if plans:
        body += (
            f"\n## Plans\n\n{plans['inputs']} random plan inputs ({plans['jobs']} jobs, {plans['nodes']} "
            f"nodes): `search:tuned` below `tuned` on {plans['below_tuned']}, above the best heuristic "
            f"on {plans['above_best_heuristic']}, tied on {plans['tied_best_heuristic']}; mean score "
            f"{fmt(plans['mean_search'])} against `tuned` {fmt(plans['mean_tuned'])} and the best "
            f"heuristic per input {fmt(plans['mean_best_heuristic'])}.\n"
        )
        if plans.get("options"):
            changed = {k: v for k, v in plans["options"].items() if k in ("depth", "margin", "portfolio")}
            body += f"\nOptions: `{json.dumps(changed)}`"
            if plans.get("search_seconds_per_plan") is not None:
                body += f"; the search took {fmt(plans['search_seconds_per_plan'])} s a plan"
            body += ".\n"
        selection = plans.get("portfolio_selection")
        if selection:
            body += (
                f"\nThe portfolio is the {len(selection['portfolio'])} standard heuristics best (ties "
                f"included) on the most of {selection['inputs']} training-side plan inputs (seeds "
                f"`{selection['seeds']}`, never a judged input): "
                + ", ".join(f"{code(n)} ({selection['wins'][n]})" for n in selection["portfolio"])
                + ".\n"
            )
    beats = sum(bool(r.get("beats_best_heuristic")) for r in rows)
    return Page(
        "Decision-time search",
        f"`search:tuned` above the best heuristic on {beats} of {len(rows)} held-out rows",
        body,
    )


EXPLORED_HEADERS = ["workload", "validated on", "options", "episodes", "score", "`tuned`", "gain",
                    "episodes below `tuned`", "ms / decision"]  # fmt: skip


def render_deploy_auto(data: Json) -> Page:
    """A distilling run posted over the API with `deploy: "auto"`, round by round."""
    keys = ("round", "checkpoint_id", "iteration", "score", "best_heuristic_score", "margin", "eligible",
            "validation_score", "accepted")  # fmt: skip
    headers = ["round", "checkpoint", "iteration", "held-out score", "best heuristic", "margin", "eligible",
               "validation score", "kept by the gate"]  # fmt: skip
    rounds = [[r[k] for k in keys] for r in data["rounds"]]
    deployed = data.get("deployed")
    verdict = (
        f"`{deployed['policy']}` ({deployed['source']}, margin {fmt(deployed['margin'])}) is deployed for "
        f"`{data['run']['workload']['name']}`"
        if deployed and data["deployed_from_this_run"]
        else "no checkpoint of the run was deployed"
    )
    body = (
        "One training run posted to `POST /training-runs` on a stack started by the benchmark, with "
        '`ppo.distill` (each round gated on training-side validation episodes) and `deploy: "auto"`: '
        "each round's checkpoint is offered for the workload's class, and the service deploys it when it "
        "beats the best heuristic on the round's held-out episodes and the policy deployed before it.\n\n"
        f"Run status: {data['status']}; {verdict}. Wall time {fmt(data['wall_s'])} s.\n\n"
        + table(headers, rounds)
        + "\n## The run\n\n```json\n"
        + json.dumps(data["run"], indent=1)
        + "\n```\n"
    )
    return Page("Auto-deploy of a distilling run", verdict, body)


def render_generic(data: Json) -> Page:
    """A JSON no renderer knows: its scalars and its lists of flat records, as tables."""
    scalars = {k: v for k, v in data.items() if not isinstance(v, (dict, list))}
    parts = [settings_table(scalars)] if scalars else []
    for key, value in data.items():
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            columns = [c for c in value[0] if not isinstance(value[0][c], (dict, list))]
            parts.append(
                f"\n## `{key}`\n\n" + table(columns, ([row.get(c) for c in columns] for row in value))
            )
    raw = json.dumps(data, indent=1)
    parts.append(f'\n??? note "The whole JSON"\n\n    ```json\n{_indent(raw)}\n    ```\n')
    return Page("", "no renderer for this file yet: its fields as they are", "".join(parts))


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


RENDERERS: list[tuple[str, Callable[[Json], Page]]] = [
    (r"policy_quality_distill", render_policy_quality_distill),
    (r"policy_quality(_.*)?", render_policy_quality),
    (r"fgd_allocation", render_fgd_heuristics),
    (r"fgd_allocation_learned(_.*)?", render_fgd_learned),
    (r"rlscheduler_table", render_rlscheduler),
    (r"soak(_.*)?", render_soak),
    (r"slurm_replay", render_slurm_replay),
    (r"search_quality", render_search_quality),
    (r"deploy_auto", render_deploy_auto),
]


def renderer_for(stem: str) -> Callable[[Json], Page]:
    return next((render for pattern, render in RENDERERS if re.fullmatch(pattern, stem)), render_generic)


def images_of(stem: str, stems: list[str]) -> list[Path]:
    """PNGs named after the JSON (`stem.png`, `stem_*.png`) that no longer JSON stem claims."""
    own = []
    for png in sorted(RESULTS.glob("*.png")):
        claims = [s for s in stems if png.stem == s or png.stem.startswith(s + "_")]
        if claims and max(claims, key=len) == stem:
            own.append(png)
    return own


def script_of(commands: list[str], stem: str) -> str:
    match = re.search(r"benchmarks/\w+\.py", " ".join(commands))
    return match.group(0) if match else f"benchmarks/{stem.split('_')[0]}*.py"


def short_commit(commit: str) -> str:
    return f"`{commit[:12]}`" if re.fullmatch(r"[0-9a-f]{7,40}", commit) else commit


def page_text(stem: str, page: Page, prov: Provenance, images: list[Path]) -> str:
    title = page.title or stem.replace("_", " ").capitalize()
    commands = (
        "\n".join(f"```bash\n{c}\n```" for c in prov.commands)
        if prov.commands
        else "The JSON does not record the command that produced it."
    )
    figures = "".join(f"\n![{png.stem}]({png.name})\n" for png in images)
    return (
        f"# {title}\n\n"
        f"<!-- generated from benchmarks/results/{stem}.json by docs/gen_results_pages.py -->\n\n"
        f"Source: `benchmarks/results/{stem}.json`, measured on {prov.date} at commit "
        f"{short_commit(prov.commit)}.\n\n"
        f"{commands}\n\n"
        f"{page.body}{figures}"
    )


def main() -> None:
    paths = sorted(RESULTS.glob("*.json"))
    stems = [p.stem for p in paths]
    index_rows, nav = [], ["* [Overview](index.md)"]
    for path in paths:
        data = json.loads(path.read_text())
        render = renderer_for(path.stem)
        if render is render_generic:
            log.info("no renderer for %s: a generic page", path.name)
        page = render(data)
        prov = provenance(path, data)
        images = images_of(path.stem, stems)
        name = f"{path.stem}.md"
        with mkdocs_gen_files.open(OUT / name, "w") as f:
            f.write(page_text(path.stem, page, prov, images))
        for png in images:
            with mkdocs_gen_files.open(OUT / png.name, "wb") as f:
                f.write(png.read_bytes())
        title = page.title or path.stem
        nav.append(f"* [{title}]({name})")
        index_rows.append(
            (f"[{title}]({name})", f"`{script_of(prov.commands, path.stem)}`", prov.date, page.summary)
        )
    with mkdocs_gen_files.open(OUT / "index.md", "w") as f:
        f.write(
            "# Results\n\n"
            "Every page here is generated from a JSON file in `benchmarks/results/` when the site "
            "is built, so the figures are the ones the benchmark wrote. Each page names the "
            "command, the date and the commit. Benchmarks that print their figures instead of "
            "writing them there are described in [Benchmarks](../guides/benchmarks.md).\n\n"
            + table(["page", "benchmark", "measured", "headline"], index_rows)
        )
    with mkdocs_gen_files.open(OUT / "SUMMARY.md", "w") as f:
        f.write("\n".join(nav) + "\n")
    # literate-nav reads the section's nav file; like docs/SUMMARY.md, it is no page of its own.
    summary = mkdocs_gen_files.FilesEditor.current().files.get_file_from_path(str(OUT / "SUMMARY.md"))
    if summary is not None:
        summary.inclusion = InclusionLevel.EXCLUDED


main()
