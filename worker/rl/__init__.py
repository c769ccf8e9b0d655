"""RLlib PPO for the scheduling env: the masked pair-scoring module (module.py), its
hyper-parameters (config.py), Ray start-up (runtime.py), training rounds (train.py),
module-only inference (inference.py) and evaluation against heuristics (evaluate.py).

Nothing is imported here: `import worker.rl` must stay cheap (no torch, no ray).
"""
