"""RLlib PPO for the scheduling env: the masked pair-scoring module (module.py), its
hyper-parameters (config.py), Ray start-up (runtime.py), training rounds (train.py),
module-only inference (inference.py) and evaluation against heuristics (evaluate.py).

Nothing heavy is imported here: `import worker.rl` must stay cheap (no torch, no ray).

Ray's driver installs absl's failure signal handler for SIGTERM (and SIGINT, SIGSEGV...).
On SIGTERM it prints a stack trace, hands the signal on to Python's handler, and arms
a 3-second `alarm()` whose handler raises SIGABRT, expecting the process to be dying
already. Our worker is not: SIGTERM starts a graceful hand-over (finish the iteration,
checkpoint, report the attempt, stop Ray) that takes longer than 3 s whenever an
iteration or an algorithm build is under way, so the process was aborted mid-hand-over
(exit -6, no message: the flaky SIGTERM test). Ray reads this switch once, when
`ray._private.ray_constants` is imported, and every module importing ray lives in this
package, so setting it here comes first. A user's explicit setting wins.
"""

import os

os.environ.setdefault("RAY_DISABLE_FAILURE_SIGNAL_HANDLER", "1")
