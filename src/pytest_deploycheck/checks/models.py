"""The configured models, loaded on first use with the target's runtime settings.

Behind the ``deploy_models`` fixture: a read-only mapping of model name to loaded
model, so a test that touches one model never pays for loading the others.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from ..config.schema import ConfigError, DeployConfig, Device
from .metrics import RUNTIME_SETTINGS
from .record import record_check

if TYPE_CHECKING:
    from ..measure.runtime import DeployModel, ModelCache, SessionSettings


class ModelSet(Mapping[str, "DeployModel"]):
    """Configured models by name; each is loaded once per run and target."""

    def __init__(self, config: DeployConfig, device: Device | None) -> None:
        from ..measure.runtime import ModelCache, SessionSettings

        self.config = config
        self.device = device
        self.settings: SessionSettings = SessionSettings.for_device(device)
        self._cache: ModelCache = ModelCache()
        self._reported: set[str] = set()
        self._guesses_reported: set[str] = set()

    def __getitem__(self, name: str) -> DeployModel:
        try:
            spec = self.config.model(name)
        except ConfigError as exc:
            raise KeyError(str(exc)) from None
        model = self._cache.get(
            spec.name, spec.path, self.settings, spec.input_shapes, batch=spec.batch
        )
        return self._noted(model)

    def _noted(self, model: DeployModel) -> DeployModel:
        """Report once how the runtime differs from the target (e.g. a provider fallback),
        and, once example inputs guess a dynamic dimension, which and how to set it."""
        if model.note_listener is None:
            model.note_listener = self._guess_recorder(model.name)
        if model.notes and model.name not in self._reported:
            self._reported.add(model.name)
            record_check(
                f"runtime[{model.name}]",
                metric=RUNTIME_SETTINGS,
                value=", ".join(model.providers),
                passed=True,
                gating=False,
                details="; ".join(model.notes),
                notes=model.notes,
            )
        return model

    def _guess_recorder(self, name: str) -> Callable[[str], None]:
        def record(note: str) -> None:
            if name in self._guesses_reported:
                return
            self._guesses_reported.add(name)
            record_check(
                f"input_shapes[{name}]",
                metric=RUNTIME_SETTINGS,
                value="guessed",
                passed=True,
                gating=False,
                details=note,
                notes=(note,),
            )

        return record

    def __iter__(self) -> Iterator[str]:
        return iter(self.config.models)

    def __len__(self) -> int:
        return len(self.config.models)

    def load_path(
        self,
        path: str | Path,
        name: str | None = None,
        input_shapes: Mapping[str, tuple[int, ...]] | None = None,
    ) -> DeployModel:
        """A model that is not in the config, loaded with the same target settings."""
        resolved = Path(path)
        if not resolved.is_absolute() and self.config.source is not None:
            resolved = self.config.source.parent / resolved
        model = self._cache.get(name or resolved.stem, resolved, self.settings, input_shapes)
        return self._noted(model)

    def __repr__(self) -> str:
        target = self.device.name if self.device else "no target"
        return f"ModelSet({', '.join(self.config.models)}; {target})"
