"""Temporal workflows: deterministic orchestration only.

Workflow modules import nothing but temporalio, the contracts and the activity modules
(passed through the sandbox; their heavy imports happen inside the activity functions).

Task queues come in pairs, `<prefix>rl-training` and `<prefix>rl-inference`, and a
workflow sends its activities to the pair of the queue it runs on. The prefix is empty
in production; tests and side-by-side deployments give each worker its own prefix.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from worker.contracts import INFERENCE_TASK_QUEUE, TRAINING_TASK_QUEUE


def queue_prefix(task_queue: str) -> str:
    for base in (TRAINING_TASK_QUEUE, INFERENCE_TASK_QUEUE):
        if task_queue.endswith(base):
            return task_queue.removesuffix(base)
    return ""


def training_queue() -> str:
    return queue_prefix(workflow.info().task_queue) + TRAINING_TASK_QUEUE


def inference_queue() -> str:
    return queue_prefix(workflow.info().task_queue) + INFERENCE_TASK_QUEUE
