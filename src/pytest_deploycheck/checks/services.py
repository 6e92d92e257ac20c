"""memory_under and cold_start_under on the user's own service: measure, then judge.

The session calls these for a test that uses ``deploy_service`` or ``deploy_services``
(memory) or a ``cold_start_under(service=...)`` marker; the figures come from
:mod:`..measure.service_figures`, the judging from :mod:`.budget`, so the checks keep
the names, metrics and units of their in-process twins.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ..config.schema import Device
from ..config.services import ServiceSpec, toml_key
from ..markers import BudgetRequest
from . import budget
from .record import Check

if TYPE_CHECKING:
    from ..measure.service import RunningService, ServiceSet


class NoServiceRunning(RuntimeError):
    """memory_under on a service test whose services never started: nothing to measure."""


def services_in_use(services: ServiceSet, default: str | None) -> list[RunningService]:
    """Whose memory a service test's is: *default* (deploy_service) and what its body looked up.

    A body that looked none up (a fixture of the user's holds the service) is judged on
    every service started so far.
    """
    running = services.running()
    names = ([default] if default is not None else []) + list(services.touched)
    chosen = [running[name] for name in dict.fromkeys(names) if name in running]
    return chosen or list(running.values())


def service_memory_check(
    request: BudgetRequest,
    workload: Callable[[], object],
    services: ServiceSet,
    *,
    default: str | None,
    device: Device | None,
) -> Check:
    """Run the body ``repeat`` times here, sampling the services' tree RSS, and judge it.

    One call first, unsampled, tells which services the body looks up.
    """
    from ..measure.service_figures import sample_service_memory

    services.touched.clear()
    workload()
    in_use = services_in_use(services, default)
    if not in_use:
        raise NoServiceRunning(
            "memory_under: the test takes deploy_services but started no service: look one"
            ' up in its body, e.g. deploy_services["api"]'
        )
    result = sample_service_memory(workload, lambda: in_use, repeat=request["repeat"])
    return budget.service_memory_check(request, result, device=device)


class ServiceRss:
    """The summed RSS of a service test's services' trees, for a soak to follow.

    Which services is decided at each reading (see :func:`services_in_use`), so a
    service the body looks up in its first calls is followed from then on.
    """

    def __init__(self, services: ServiceSet, default: str | None) -> None:
        self.services = services
        self.default = default
        self.names: dict[str, None] = {}
        services.touched.clear()

    def __call__(self) -> int:
        in_use = services_in_use(self.services, self.default)
        self.names.update(dict.fromkeys(service.name for service in in_use))
        return sum(service.rss_bytes() for service in in_use)

    def label(self) -> str:
        names = " + ".join(toml_key(name) for name in self.names) or "none started"
        return f"RSS of service {names}'s process tree"


def service_cold_start_check(
    request: BudgetRequest, spec: ServiceSpec, *, project_dir: Path, device: Device | None
) -> Check:
    """Start *spec* fresh ``runs`` times; judged on the median, as a model's cold start."""
    from ..measure.service_figures import measure_service_cold_start, service_cold_start_display

    result = measure_service_cold_start(spec, project_dir=project_dir, runs=request["runs"])
    display = service_cold_start_display(spec.name, result)
    return budget.service_cold_start_check(request, result, device=device, display=display)
