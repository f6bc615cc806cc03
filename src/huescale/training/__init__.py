"""Training: tasks, losses, the recipe, the Trainer, checkpoints, phases, calibration, devices."""
