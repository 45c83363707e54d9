"""`python -m bench`: run every benchmark."""

from bench import controller_bench

if __name__ == "__main__":
    controller_bench.main()
