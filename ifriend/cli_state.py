"""`CliState`: what the `ifriend` group hands its commands, and plugin commands too."""

from __future__ import annotations

from dataclasses import dataclass, field

from .app import App
from .config import Settings, load_settings, redact, secret_values


@dataclass
class CliState:
    """What the `ifriend` group hands its commands (`@click.pass_obj`).

    `plugins` are extra plugin objects registered next to the installed ones
    (tests pass them as `invoke(cli, args, obj={"plugins": [...]})`).
    """

    config_path: str | None = None
    plugins: tuple[object, ...] = ()
    _settings: Settings | None = field(default=None, repr=False)

    def settings(self) -> Settings:
        """The settings, loaded once; `ConfigError` if any is bad."""
        if self._settings is None:
            self._settings = load_settings(self.config_path)
        return self._settings

    def app(self) -> App:
        """A new, not yet connected App built from the settings."""
        return App(self.settings(), plugins=self.plugins)

    def redact(self, text: str) -> str:
        """`text` with every secret of the loaded settings masked."""
        if self._settings is None:
            return text
        return redact(text, secret_values(self._settings))
