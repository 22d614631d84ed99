"""Training: optimiser and schedule, the shared loops, checkpoints, distributed helpers, BN recalibration."""
