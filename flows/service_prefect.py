"""Prefect for the intake service: ready at start-up, no per-run heartbeats, stale runs marked Crashed."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


def start_prefect() -> None:
    """Make Prefect ready now (start the temporary local server, or reach PREFECT_API_URL), once.

    Runs one trivial flow and an empty ``intake-job`` run, and loads the pipeline: whatever Prefect
    and the first scan need to start happens here, not while a citizen waits.
    """
    from flows.intake import intake_job

    with no_flow_heartbeats():
        ready()
        intake_job.with_options(flow_run_name="warm-up")(job_id="warm-up", requests=[])
    import pipeline.document  # noqa: F401 - OpenCV, Tesseract wrapper and pikepdf loaded once, here


def _ready_flow():  # built lazily: importing Prefect costs a second or two
    from prefect import flow

    @flow(name="intake-service-ready", log_prints=False)
    def intake_service_ready() -> bool:
        """A no-op flow run at service start: proves the Prefect API answers."""
        return True

    return intake_service_ready


_READY = None


@contextmanager
def no_flow_heartbeats() -> Iterator[None]:
    """Run flows here without Prefect's per-run heartbeat thread.

    Prefect joins that thread at the end of every flow run and it sleeps in whole seconds, which
    adds ~1 s to each scan. The service has its own crash detection (job leases), and a run that a
    crash left "Running" is marked Crashed when its job is taken up again (``crash_stale_runs``).
    """
    from prefect.context import SettingsContext
    from prefect.settings import get_current_settings

    current = get_current_settings()
    settings = current.model_copy(update={"flows": current.flows.model_copy(update={"heartbeat_frequency": None})})
    with SettingsContext(profile=SettingsContext.get().profile, settings=settings):
        yield


def crash_stale_runs(job_id: str) -> int:
    """Mark the job's earlier ``intake-job`` runs that never finished (the service died) as Crashed."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName, FlowRunFilterState, \
        FlowRunFilterStateType
    from prefect.client.schemas.objects import StateType
    from prefect.states import Crashed

    marked = 0
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(
            name=FlowRunFilterName(like_=f"job-{job_id}"),
            state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.RUNNING, StateType.PENDING]))))
        for run in runs:
            client.set_flow_run_state(run.id, Crashed(message="the intake service stopped during this run; "
                                                             "the job was taken up again"), force=True)
            marked += 1
    return marked


def ready() -> bool:
    global _READY
    if _READY is None:
        _READY = _ready_flow()
    return bool(_READY())
