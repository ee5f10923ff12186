"""Session backends vs ADK's services, side by side: `python perf/bench_sessions.py [--quick]`.

The same as `ifriend bench sessions`; needs the local servers (`make servers`).
"""

from ifriend.cli import main

if __name__ == "__main__":
    import sys

    main(["bench", "sessions", *sys.argv[1:]])
