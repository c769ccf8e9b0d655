"""What the app and the worker agree on: task queues, workflow names, and every payload
that crosses Temporal (pydantic models, sent with temporalio's pydantic data converter).

This package is the only bridge between `app/` and `worker/`: it imports pydantic and the
standard library only, never numpy, pyarrow, ray, torch or the simulator, so the API
process and Temporal's workflow sandbox can both load it cheaply. One module per concern:

- `names`: task queues, workflow/update/query names, long-lived workflow ids, and the
  workloads, objectives and heuristics a client may name;
- `ids`: id, name, path and location rules, and the numeric bounds of every request;
- `workloads`, `training`, `evaluation`, `metrics`: a training run's settings and payloads;
- `plans`: cluster and job specs, plan input and output;
- `deployment`: evaluation evidence and the deployment rules of the scheduler service;
- `search_deployment`: deploying a search (the held-out league it is measured on first);
- `schedules`: training schedules' ids and memo keys;
- `clusters`: registered real clusters (Slurm), their ticks and decision history
  (imported from `worker.contracts.clusters`, not re-exported here);
- `search`: the options of a decision-time search (`search:<base>`);
- `store`: how to reach the artifact store (opening it is worker/storage.py's).

Everything public is re-exported here, so `from worker.contracts import X` works for all.
"""

from worker.codec import DATA_CONVERTER as DATA_CONVERTER  # what the app's client must use
from worker.contracts.deployment import Deployment as Deployment
from worker.contracts.deployment import Deployments as Deployments
from worker.contracts.deployment import DeployRequest as DeployRequest
from worker.contracts.deployment import DeployResult as DeployResult
from worker.contracts.deployment import EvaluationEvidence as EvaluationEvidence
from worker.contracts.deployment import SchedulerServiceInput as SchedulerServiceInput
from worker.contracts.deployment import deploy_problem as deploy_problem
from worker.contracts.deployment import deployed_note as deployed_note
from worker.contracts.deployment import scheduler_service_start as scheduler_service_start
from worker.contracts.evaluation import EVAL_SEED_OFFSET as EVAL_SEED_OFFSET
from worker.contracts.evaluation import ROUND_SEARCH_OPTIONS as ROUND_SEARCH_OPTIONS
from worker.contracts.evaluation import EvaluateInput as EvaluateInput
from worker.contracts.evaluation import EvaluationResult as EvaluationResult
from worker.contracts.evaluation import RoundSearch as RoundSearch
from worker.contracts.evaluation import ValidateInput as ValidateInput
from worker.contracts.evaluation import ValidationResult as ValidationResult
from worker.contracts.evaluation import evaluation_seed as evaluation_seed
from worker.contracts.evaluation import evaluation_workload as evaluation_workload
from worker.contracts.ids import GPU_TYPE_PATTERN as GPU_TYPE_PATTERN
from worker.contracts.ids import LABEL_PATTERN as LABEL_PATTERN
from worker.contracts.ids import MAX_CPUS as MAX_CPUS
from worker.contracts.ids import MAX_GPU_SPEED as MAX_GPU_SPEED
from worker.contracts.ids import MAX_GPU_TYPES as MAX_GPU_TYPES
from worker.contracts.ids import MAX_GPUS as MAX_GPUS
from worker.contracts.ids import MAX_ID_LENGTH as MAX_ID_LENGTH
from worker.contracts.ids import MAX_JOBS as MAX_JOBS
from worker.contracts.ids import MAX_MEMORY_GB as MAX_MEMORY_GB
from worker.contracts.ids import MAX_NODES as MAX_NODES
from worker.contracts.ids import MAX_RUNTIME_S as MAX_RUNTIME_S
from worker.contracts.ids import MAX_TIME_S as MAX_TIME_S
from worker.contracts.ids import MIN_CPUS as MIN_CPUS
from worker.contracts.ids import MIN_GPU_SPEED as MIN_GPU_SPEED
from worker.contracts.ids import MIN_GPUS as MIN_GPUS
from worker.contracts.ids import MIN_SECONDS as MIN_SECONDS
from worker.contracts.ids import POLICY_CLASS_PATTERN as POLICY_CLASS_PATTERN
from worker.contracts.ids import SAFE_ID_PATTERN as SAFE_ID_PATTERN
from worker.contracts.ids import SWF_WORKLOAD_PREFIX as SWF_WORKLOAD_PREFIX
from worker.contracts.ids import GpuType as GpuType
from worker.contracts.ids import Model as Model
from worker.contracts.ids import Seed as Seed
from worker.contracts.ids import StrictCount as StrictCount
from worker.contracts.ids import StrictFlag as StrictFlag
from worker.contracts.ids import StrictNum as StrictNum
from worker.contracts.ids import checked as checked
from worker.contracts.ids import id_problem as id_problem
from worker.contracts.ids import location_problem as location_problem
from worker.contracts.ids import path_like_problem as path_like_problem
from worker.contracts.ids import policy_class_problem as policy_class_problem
from worker.contracts.ids import policy_name_problem as policy_name_problem
from worker.contracts.ids import search_problem as search_problem
from worker.contracts.ids import swf_path_problem as swf_path_problem
from worker.contracts.metrics import IterationProgress as IterationProgress
from worker.contracts.metrics import LearnerMetrics as LearnerMetrics
from worker.contracts.metrics import PlanMetrics as PlanMetrics
from worker.contracts.metrics import PolicyMetrics as PolicyMetrics
from worker.contracts.names import DEFAULT_POLICY_CLASS as DEFAULT_POLICY_CLASS
from worker.contracts.names import DEPLOY_REJECTED as DEPLOY_REJECTED
from worker.contracts.names import DEPLOY_UPDATE as DEPLOY_UPDATE
from worker.contracts.names import DEPLOYMENTS_QUERY as DEPLOYMENTS_QUERY
from worker.contracts.names import HEURISTIC_GRAMMAR as HEURISTIC_GRAMMAR
from worker.contracts.names import HEURISTIC_MODES as HEURISTIC_MODES
from worker.contracts.names import HEURISTIC_ORDERS as HEURISTIC_ORDERS
from worker.contracts.names import HEURISTIC_PLACEMENTS as HEURISTIC_PLACEMENTS
from worker.contracts.names import HEURISTIC_POLICIES as HEURISTIC_POLICIES
from worker.contracts.names import INFERENCE_TASK_QUEUE as INFERENCE_TASK_QUEUE
from worker.contracts.names import OBJECTIVES as OBJECTIVES
from worker.contracts.names import PLAN_UPDATE as PLAN_UPDATE
from worker.contracts.names import SCHEDULER_RESTARTING as SCHEDULER_RESTARTING
from worker.contracts.names import SCHEDULER_SERVICE_ID as SCHEDULER_SERVICE_ID
from worker.contracts.names import SCHEDULER_SERVICE_WORKFLOW as SCHEDULER_SERVICE_WORKFLOW
from worker.contracts.names import SCHEDULER_WORKFLOW as SCHEDULER_WORKFLOW
from worker.contracts.names import SEARCH_DEPLOYMENT_WORKFLOW as SEARCH_DEPLOYMENT_WORKFLOW
from worker.contracts.names import SEARCH_PREFIX as SEARCH_PREFIX
from worker.contracts.names import SMOKE_WORKFLOW as SMOKE_WORKFLOW
from worker.contracts.names import STANDALONE_HEURISTICS as STANDALONE_HEURISTICS
from worker.contracts.names import TRACE_WORKLOADS as TRACE_WORKLOADS
from worker.contracts.names import TRAINING_LOOP_WORKFLOW as TRAINING_LOOP_WORKFLOW
from worker.contracts.names import TRAINING_TASK_QUEUE as TRAINING_TASK_QUEUE
from worker.contracts.names import WORKLOAD_PRESETS as WORKLOAD_PRESETS
from worker.contracts.names import Objective as Objective
from worker.contracts.names import heuristic_problem as heuristic_problem
from worker.contracts.names import parse_heuristic as parse_heuristic
from worker.contracts.names import scheduler_service_id as scheduler_service_id
from worker.contracts.plans import KNOWN_GPU_SPEEDS as KNOWN_GPU_SPEEDS
from worker.contracts.plans import BaselineOut as BaselineOut
from worker.contracts.plans import JobSpec as JobSpec
from worker.contracts.plans import NodeSpec as NodeSpec
from worker.contracts.plans import PlacementOut as PlacementOut
from worker.contracts.plans import PlanInput as PlanInput
from worker.contracts.plans import PlanOutput as PlanOutput
from worker.contracts.plans import PlanSource as PlanSource
from worker.contracts.plans import PolicyRef as PolicyRef
from worker.contracts.plans import SyntheticSpec as SyntheticSpec
from worker.contracts.plans import UnplacedOut as UnplacedOut
from worker.contracts.plans import gpu_types_problem as gpu_types_problem
from worker.contracts.plans import plan_input_problem as plan_input_problem
from worker.contracts.plans import plan_search_problem as plan_search_problem
from worker.contracts.plans import search_needs_no_checkpoint as search_needs_no_checkpoint
from worker.contracts.schedules import SCHEDULE_ID_MEMO as SCHEDULE_ID_MEMO
from worker.contracts.schedules import SCHEDULE_RUN_MEMO as SCHEDULE_RUN_MEMO
from worker.contracts.schedules import TRAINING_SCHEDULE_PREFIX as TRAINING_SCHEDULE_PREFIX
from worker.contracts.schedules import scheduled_run_id as scheduled_run_id
from worker.contracts.schedules import training_schedule_id as training_schedule_id
from worker.contracts.search import SearchOptions as SearchOptions
from worker.contracts.search_deployment import DeployPolicyInput as DeployPolicyInput
from worker.contracts.search_deployment import EvaluateSearchInput as EvaluateSearchInput
from worker.contracts.search_deployment import HeldOutLeague as HeldOutLeague
from worker.contracts.search_deployment import SearchDeploymentInput as SearchDeploymentInput
from worker.contracts.search_deployment import SearchDeploymentResult as SearchDeploymentResult
from worker.contracts.search_deployment import SearchDeploymentStatus as SearchDeploymentStatus
from worker.contracts.search_deployment import class_workload as class_workload
from worker.contracts.search_deployment import search_evidence as search_evidence
from worker.contracts.store import ArtifactStoreOptions as ArtifactStoreOptions
from worker.contracts.store import is_store_uri as is_store_uri
from worker.contracts.training import HISTORY_PER_ROUND as HISTORY_PER_ROUND
from worker.contracts.training import LabelHeartbeat as LabelHeartbeat
from worker.contracts.training import LabelRoundInput as LabelRoundInput
from worker.contracts.training import LabelRoundOutput as LabelRoundOutput
from worker.contracts.training import RoundSummary as RoundSummary
from worker.contracts.training import RunStatus as RunStatus
from worker.contracts.training import ScenarioSummary as ScenarioSummary
from worker.contracts.training import SmokeInput as SmokeInput
from worker.contracts.training import SmokeReport as SmokeReport
from worker.contracts.training import StopRequest as StopRequest
from worker.contracts.training import StopResult as StopResult
from worker.contracts.training import StoreCheckpointInput as StoreCheckpointInput
from worker.contracts.training import StoredCheckpoint as StoredCheckpoint
from worker.contracts.training import TrainingHeartbeat as TrainingHeartbeat
from worker.contracts.training import TrainingProgress as TrainingProgress
from worker.contracts.training import TrainingRunConfig as TrainingRunConfig
from worker.contracts.training import TrainingRunSettings as TrainingRunSettings
from worker.contracts.training import TrainRoundInput as TrainRoundInput
from worker.contracts.training import TrainRoundOutput as TrainRoundOutput
from worker.contracts.training import keep_history as keep_history
from worker.contracts.workloads import DistillParams as DistillParams
from worker.contracts.workloads import PPOParams as PPOParams
from worker.contracts.workloads import WorkloadConfig as WorkloadConfig
