"""The simulated cluster and its gymnasium environment, registered (as gymnasium registers
its own) when this package is imported:
`gymnasium.make("rlsched/ClusterScheduling-v0", nodes=16, window=32)`, or without an
import first, `gymnasium.make("worker.sim:rlsched/ClusterScheduling-v0", ...)`."""

import gymnasium

ENV_ID = "rlsched/ClusterScheduling-v0"

if ENV_ID not in gymnasium.registry:
    gymnasium.register(id=ENV_ID, entry_point="worker.sim.env:SchedulingEnv")
