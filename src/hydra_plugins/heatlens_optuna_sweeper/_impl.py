"""Ask-and-tell Optuna over Hydra's launchers, on a study any number of workers share.

One round: under the storage's lock, count the study's trials and ask for up to `n_jobs` more; hand
them to the configured launcher (in process, joblib, SLURM) as override lists; tell the study what
each job returned (value, pruned or failed). The study lives in a persistent storage, so a re-run
continues it and several workers split `n_trials` between them.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import hydra
import optuna
from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn, JobStatus
from hydra.errors import HydraException
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

from heatlens.sweep import (
    Heartbeat,
    SearchSpace,
    SharedStudy,
    StudyStorage,
    SweepConfigError,
    TrialRef,
    open_study,
    parse_search_space,
    resolve_storage,
    summarize,
    trial_overrides,
)
from heatlens.sweep.figures import history_figure, importance_figure
from heatlens.sweep.pruners import build_pruner
from heatlens.sweep.space import check_pretrained_questions, representative_overrides
from heatlens.sweep.study import FAILURE
from heatlens.tracking import RunHandle
from heatlens.tracking.sweep import log_sweep_summary, open_sweep_run, study_folder

log = logging.getLogger(__name__)

PARENT_RUN_ATTR = "mlflow_parent_run_id"
# How long a worker that did not create the study waits for the creator to name the parent run.
PARENT_WAIT_S = 60.0
RESULTS_FILE = "optimization_results.yaml"


class OptunaSweep:
    def __init__(
        self,
        direction: str,
        study_name: str,
        storage: str | None,
        n_trials: int,
        n_jobs: int,
        sampler: DictConfig | None,
        pruner: str | DictConfig | None,
        heartbeat_interval: float,
        params: DictConfig | None,
    ) -> None:
        if n_trials < 0 or n_jobs < 1:
            raise SweepConfigError(f"hydra.sweeper.n_trials={n_trials}, n_jobs={n_jobs}: need n_trials >= 0, n_jobs >= 1")
        self.direction = str(direction)
        self.study_name = str(study_name)
        self.storage_setting = storage
        self.n_trials = int(n_trials)
        self.n_jobs = int(n_jobs)
        self.sampler_cfg = _plain(sampler) or {"_target_": "optuna.samplers.TPESampler"}
        self.pruner_cfg = _plain(pruner)
        self.heartbeat_interval = float(heartbeat_interval)
        self.params = _plain(params) or {}
        self.job_idx = 0

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config = config
        self.hydra_context = hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            config=config, hydra_context=hydra_context, task_function=task_function
        )

    def sweep(self, arguments: list[str]) -> None:
        space = parse_search_space(self.params, arguments)
        job_cfg = self._job_config(representative_overrides(space))
        if "backbone" in job_cfg:
            check_pretrained_questions(space, OmegaConf.to_container(job_cfg.backbone, resolve=True))
        logger_cfg = OmegaConf.to_container(job_cfg.logger, resolve=True) if "logger" in job_cfg else {}
        default_dir = study_folder(logger_cfg) if self.storage_setting is None else None
        storage = resolve_storage(self.storage_setting, default_dir)
        backend = storage.open()
        heartbeat = Heartbeat(backend, self.heartbeat_interval)
        study, created = open_study(backend, self.study_name, self.direction, self._sampler(0), self._pruner())
        shared = SharedStudy(study, backend)
        parent = self._parent_run(shared, created, logger_cfg, storage)
        log.info("Study %r in %s: %d trial(s) to go (n_trials=%d over all workers); MLflow parent run %s",
                 study.study_name, storage.spec, shared.remaining(self.n_trials), self.n_trials, parent.run_id)
        in_flight: list[optuna.trial.Trial] = []
        try:
            with _Interrupts() as interrupts, heartbeat:
                failures = self._run_rounds(shared, space, storage, parent.run_id, heartbeat, interrupts, in_flight)
        except BaseException:
            for trial in in_flight:
                shared.abandon(trial.number, f"worker {os.getpid()} interrupted")
            try:
                self._report(shared, storage, parent, status="KILLED")
            except Exception as err:  # the interruption is the error to show
                log.warning("Could not record the interrupted sweep: %s", err)
            raise
        self._report(shared, storage, parent, status="FINISHED")
        if failures:
            log.error("%d trial(s) of this worker failed; the study went on", len(failures))
            raise failures[0]

    def _run_rounds(
        self, shared: SharedStudy, space: SearchSpace, storage: StudyStorage, parent_run_id: str,
        heartbeat: Heartbeat, interrupts: _Interrupts, in_flight: list[optuna.trial.Trial],
    ) -> list[BaseException]:
        failures: list[BaseException] = []
        while True:
            with interrupts.deferred(), storage.exclusive():
                stale = shared.abandon_stale(self.heartbeat_interval)
                if stale:
                    log.warning("Trials %s lost their worker (no heartbeat): they will be run again", stale)
                for _ in range(min(self.n_jobs, shared.remaining(self.n_trials))):
                    in_flight.append(self._ask(shared, space))
                heartbeat.track(shared.trial_id(t.number) for t in in_flight)
            if not in_flight:
                return failures
            overrides = [self._job_overrides(trial, space, storage, parent_run_id) for trial in in_flight]
            returns = self.launcher.launch(overrides, initial_job_idx=self.job_idx)
            with interrupts.deferred():
                self.job_idx += len(returns)
                for trial, result in zip(in_flight, returns):
                    failure = self._tell(shared, trial, result)
                    if failure is not None:
                        failures.append(failure)
                heartbeat.untrack(shared.trial_id(t.number) for t in in_flight)
                in_flight.clear()

    def _ask(self, shared: SharedStudy, space: SearchSpace) -> optuna.trial.Trial:
        # Under the lock the next trial's number is the study's trial count: seeding the sampler with
        # it gives every worker its own draws, and the same study history the same draws.
        shared.study.sampler = self._sampler(len(shared.study.get_trials(deepcopy=False)))
        return shared.study.ask(fixed_distributions=space.distributions)

    def _tell(self, shared: SharedStudy, trial: optuna.trial.Trial, result: JobReturn) -> BaseException | None:
        outcome = result._return_value
        if result.status == JobStatus.COMPLETED:
            if _is_number(outcome):
                shared.study.tell(trial.number, float(outcome), skip_if_finished=True)
                return None
            outcome = SweepConfigError(f"trial {trial.number}: the task returned {outcome!r}, not a number")
        if isinstance(outcome, optuna.TrialPruned):
            log.info("Trial %d pruned: %s", trial.number, outcome)
            shared.study.tell(trial.number, state=optuna.trial.TrialState.PRUNED, skip_if_finished=True)
            return None
        log.warning("Trial %d failed: %s", trial.number, outcome)
        trial.set_user_attr(FAILURE, f"{type(outcome).__name__}: {outcome}")
        shared.study.tell(trial.number, state=optuna.trial.TrialState.FAIL, skip_if_finished=True)
        return outcome if isinstance(outcome, BaseException) else RuntimeError(str(outcome))

    def _job_overrides(
        self, trial: optuna.trial.Trial, space: SearchSpace, storage: StudyStorage, parent_run_id: str
    ) -> list[str]:
        return [
            *space.fixed,
            *trial_overrides(trial.params),
            *TrialRef(trial.number, self.study_name, storage.spec).overrides(),
            f"++logger.parent_run_id={parent_run_id}",
            # Workers started in the same second share a sweep folder: trial numbers keep jobs apart.
            f"hydra.sweep.subdir=trial-{trial.number}",
        ]

    def _job_config(self, overrides: Sequence[str]) -> DictConfig:
        """A job's composed config (with the fixed overrides and one value per searched key): a
        misspelt key fails here, before any trial starts."""
        try:
            return self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
        except HydraException as err:
            raise SweepConfigError(f"hydra.sweeper.params / overrides do not fit the config: {err}") from None

    def _sampler(self, offset: int) -> optuna.samplers.BaseSampler:
        cfg = dict(self.sampler_cfg)
        if cfg.get("seed") is not None:
            cfg["seed"] = int(cfg["seed"]) + offset
        return _build(cfg, "hydra.sweeper.sampler")

    def _pruner(self) -> optuna.pruners.BasePruner | None:
        return build_pruner(self.pruner_cfg)

    def _parent_run(
        self, shared: SharedStudy, created: bool, logger_cfg: Mapping[str, Any], storage: StudyStorage
    ) -> RunHandle:
        """One MLflow parent run per study: the worker that created the study makes it; the others
        (and later re-runs) find its id in the study's user attributes."""
        run_id = shared.study.user_attrs.get(PARENT_RUN_ATTR)
        deadline = time.monotonic() + PARENT_WAIT_S
        while not created and run_id is None and not shared.study.get_trials(deepcopy=False) and time.monotonic() < deadline:
            time.sleep(0.5)
            run_id = shared.storage.get_study_user_attrs(shared.study_id).get(PARENT_RUN_ATTR)
        run = open_sweep_run(logger_cfg, shared.study.study_name, storage.spec, run_id)
        if run.run_id != run_id:
            shared.study.set_user_attr(PARENT_RUN_ATTR, run.run_id)
        return run

    def _report(self, shared: SharedStudy, storage: StudyStorage, parent: RunHandle, status: str) -> None:
        """The study so far: into the parent run (figures included) and `optimization_results.yaml`."""
        summary = summarize(shared.study)
        seed = self.sampler_cfg.get("seed")
        figures = {
            "optimization_history": history_figure(shared.study),
            "param_importances": importance_figure(shared.study, seed=int(seed or 0)),
        }
        log_sweep_summary(parent, summary, storage.spec, figures)
        parent.set_status(status)
        results = Path(str(self.config.hydra.sweep.dir)) / RESULTS_FILE
        results.parent.mkdir(parents=True, exist_ok=True)
        staged = results.with_name(f".{RESULTS_FILE}.{os.getpid()}")
        OmegaConf.save(OmegaConf.create(summary.as_results(storage.spec)), staged)
        staged.replace(results)  # atomic: workers sharing the folder never leave a torn file
        if summary.best_number is not None:
            log.info("Best trial %d: value %s, params %s", summary.best_number, summary.best_value, summary.best_params)


def _plain(node: Any) -> Any:
    return OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node


def _build(cfg: Mapping[str, Any], key: str) -> Any:
    try:
        return hydra.utils.instantiate(cfg)
    except Exception as err:  # instantiate wraps import, type and value errors alike
        raise SweepConfigError(f"{key} cannot be built from {cfg}: {err}") from None


def _is_number(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


class _Interrupts:
    """SIGTERM (SLURM, `kill`) and SIGINT become KeyboardInterrupt, so the sweep hands its running
    trials back to the study (they are run again) instead of leaving them RUNNING. Inside `deferred()`
    blocks (asking, telling) the interruption waits for the block's end: a trial is never created
    or finished half-way without this worker knowing."""

    def __init__(self) -> None:
        self._depth = 0
        self._pending: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _Interrupts:
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum: int, frame: Any) -> None:
        if self._depth:
            self._pending = signum
        else:
            raise KeyboardInterrupt(f"signal {signum}")

    @contextmanager
    def deferred(self) -> Iterator[None]:
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
        if not self._depth and self._pending is not None:
            raise KeyboardInterrupt(f"signal {self._pending}")
