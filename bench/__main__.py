"""`python -m bench`: run every benchmark (controller, runner end to end, TUI, reconnect storm)."""

from bench import controller_bench, runner_bench, storm_bench, tui_bench

if __name__ == "__main__":
    controller_bench.main()
    runner_bench.main()
    tui_bench.main()
    storm_bench.main()
