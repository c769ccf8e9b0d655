"""Tables of the app's index and the public schemas built on them, one module per entity.

Temporal is the source of truth for what a run does; these rows are what users query and
what survives an app restart. Per entity: `XBase` (shared fields), `XCreate` (input),
`X(table=True)` (the row), `XPublic` (output), `XsPublic{data, count}` (a page).
Payloads that cross Temporal are the contract models of worker/contracts/, reused here
as field types (and as bases: `TrainingRunCreate` extends `TrainingRunSettings`), so the
API and the worker cannot drift apart.

Importing this package registers every table on `SQLModel.metadata` (alembic's env.py
relies on it); everything is re-exported, so `from app.models import X` works for all.
"""

from app.models.base import Eligibility as Eligibility
from app.models.base import Input as Input
from app.models.base import utcnow as utcnow
from app.models.checkpoints import Checkpoint as Checkpoint
from app.models.checkpoints import CheckpointPublic as CheckpointPublic
from app.models.checkpoints import CheckpointsPublic as CheckpointsPublic
from app.models.clusters import LIVE_CLUSTER_STATUSES as LIVE_CLUSTER_STATUSES
from app.models.clusters import Cluster as Cluster
from app.models.clusters import ClusterCreate as ClusterCreate
from app.models.clusters import ClusterDecisionsPage as ClusterDecisionsPage
from app.models.clusters import ClusterPublic as ClusterPublic
from app.models.clusters import ClusterRegistered as ClusterRegistered
from app.models.clusters import ClustersPublic as ClustersPublic
from app.models.clusters import ClusterStopping as ClusterStopping
from app.models.clusters import ClusterTick as ClusterTick
from app.models.health import Health as Health
from app.models.health import Readiness as Readiness
from app.models.health import ReadinessCheck as ReadinessCheck
from app.models.plans import Plan as Plan
from app.models.plans import PlanCreate as PlanCreate
from app.models.plans import PlanPublic as PlanPublic
from app.models.plans import PlanStatus as PlanStatus
from app.models.policy import PoliciesPublic as PoliciesPublic
from app.models.policy import PolicyDeploy as PolicyDeploy
from app.models.policy import PolicyDeployed as PolicyDeployed
from app.models.policy import PolicyPublic as PolicyPublic
from app.models.policy import SearchDeployment as SearchDeployment
from app.models.policy import SearchDeploymentPublic as SearchDeploymentPublic
from app.models.policy import policy_deployed as policy_deployed
from app.models.policy import policy_public as policy_public
from app.models.runs import TERMINAL_STATUSES as TERMINAL_STATUSES
from app.models.runs import IterationMetric as IterationMetric
from app.models.runs import IterationMetricPublic as IterationMetricPublic
from app.models.runs import IterationMetricsPage as IterationMetricsPage
from app.models.runs import LeagueEntry as LeagueEntry
from app.models.runs import LeagueEntryPublic as LeagueEntryPublic
from app.models.runs import LeagueKind as LeagueKind
from app.models.runs import LeagueMetricsPage as LeagueMetricsPage
from app.models.runs import LiveProgress as LiveProgress
from app.models.runs import MetricsPage as MetricsPage
from app.models.runs import MetricsSeries as MetricsSeries
from app.models.runs import Round as Round
from app.models.runs import RoundHistoryPublic as RoundHistoryPublic
from app.models.runs import RoundMetricsPage as RoundMetricsPage
from app.models.runs import RoundPublic as RoundPublic
from app.models.runs import Run as Run
from app.models.runs import StopAccepted as StopAccepted
from app.models.runs import StopBody as StopBody
from app.models.runs import TrainingRunCreate as TrainingRunCreate
from app.models.runs import TrainingRunDetail as TrainingRunDetail
from app.models.runs import TrainingRunPublic as TrainingRunPublic
from app.models.runs import TrainingRunsPublic as TrainingRunsPublic
from app.models.training_schedules import MAX_DURATION as MAX_DURATION
from app.models.training_schedules import MIN_INTERVAL as MIN_INTERVAL
from app.models.training_schedules import OverlapPolicy as OverlapPolicy
from app.models.training_schedules import ScheduledRunPublic as ScheduledRunPublic
from app.models.training_schedules import ScheduleNoteBody as ScheduleNoteBody
from app.models.training_schedules import ScheduleTriggerBody as ScheduleTriggerBody
from app.models.training_schedules import ScheduleTriggered as ScheduleTriggered
from app.models.training_schedules import TrainingSchedule as TrainingSchedule
from app.models.training_schedules import TrainingScheduleCreate as TrainingScheduleCreate
from app.models.training_schedules import TrainingSchedulePublic as TrainingSchedulePublic
from app.models.training_schedules import TrainingSchedulesPublic as TrainingSchedulesPublic
from app.models.training_schedules import TrainingScheduleState as TrainingScheduleState
