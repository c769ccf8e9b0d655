"""Adapters to real cluster managers (Slurm first): read nodes and jobs, apply a plan's
decisions. Only activities import them; workflows see the contracts alone."""
