"""`train(config)`: the fit loop, its callbacks, optimizers, schedules and run directory."""
