"""dtask controller: durable task queue, scheduler, runner sessions and the Controller service."""
