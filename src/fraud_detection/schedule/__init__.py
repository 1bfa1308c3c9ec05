"""What runs on a cadence (batch prediction, feedback, monitoring, the rollout tick, the online learner, the weekly
retrain), as one schedule generated from params.yaml `schedule` (`fraud-detection schedule`)."""
