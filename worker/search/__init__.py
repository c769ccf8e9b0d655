"""Decision-time search over any base policy: a belief of the cluster built from what a
scheduler knows, candidates from the base, rollouts by the base (see .policy)."""
