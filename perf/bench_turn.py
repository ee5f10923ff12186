"""A Slack turn end to end, per session backend: `python perf/bench_turn.py [--quick] [--turns N]`.

The same as `ifriend bench turn`; needs the local servers (`make servers`).
"""

from ifriend.cli import main

if __name__ == "__main__":
    import sys

    main(["bench", "turn", *sys.argv[1:]])
