"""Built-in plugin: `ifriend bench ...`, benchmarks that compare ifriend's backends with
baselines measured in the same run (needs the local servers, `make servers`).

These machines are shared and noisy: figures are only ever compared side by side,
targets interleaved round by round, never against numbers from another run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ifriend.plugin_api import hookimpl

if TYPE_CHECKING:
    import click


@hookimpl
def register_commands(cli: click.Group) -> None:
    from .commands import bench_group

    cli.add_command(bench_group)
