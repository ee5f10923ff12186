"""Memory backends vs ADK's InMemoryMemoryService: `python perf/bench_memory.py [--quick]`.

The same as `ifriend bench memory`; needs the local servers (`make servers`).
"""

from ifriend.cli import main

if __name__ == "__main__":
    import sys

    main(["bench", "memory", *sys.argv[1:]])
