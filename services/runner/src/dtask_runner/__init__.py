"""dtask runner: executes tasks on one machine and streams everything back to the controller."""
