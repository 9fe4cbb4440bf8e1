"""Tuning an experiment's agents for reward alone, with Optuna: the logic behind personalization-gym tune.

Each agent gets its own Optuna study, ``<experiment>/<agent>``, in one storage (SQLite in the output folder by
default, or any storage URL Optuna's ``RDBStorage`` takes, so that several machines can tune one study). A
trial trains the agent with one set of hyperparameters on every tuning seed, at the tuning budget, and its value
is the **mean final exact expected reward** over those seeds (``eval/expected_reward``, the policy's expected
reward on the task's evaluation set). That value is the only thing the tuner sees: while the first seed trains,
its expected reward at each of ``evaluations`` evaluations goes to Optuna's median pruner, and nothing else does.
No entropy, action count or distribution ever reaches the sampler or the pruner.

Sampling is Optuna's TPE, seeded afresh for every trial from the sampler seed and the trial's place in the
study, so a sequential run (one worker per agent) is reproducible, and a run interrupted (Ctrl-C, a kill) and
resumed with ``resume=True`` chooses exactly what an uninterrupted run chooses.
"""

from __future__ import annotations

import multiprocessing
import os
import socket
import time
import warnings
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy.engine import make_url
from stable_baselines3.common.callbacks import BaseCallback

from sb3_entropy.agents import Q_LEARNING
from sb3_entropy.metrics import EXPECTED_REWARD
from sb3_entropy.study.execution import CtrlC, check_main_is_guarded, init_worker
from sb3_entropy.study.experiments import Experiment
from sb3_entropy.study.runs import RunSpec, one_torch_thread, train
from sb3_entropy.study.tuning_files import AgentTuning, Dimension, TuningSettings, hyperparameters_of

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "REWARD_KEY",
    "RewardReporter",
    "TrialSeededTPESampler",
    "final_reward",
    "open_storage",
    "read_tuning",
    "study_name",
    "tune_agents",
]


REWARD_KEY = EXPECTED_REWARD.tag  # the one metric the tuner reads
DEFAULT_TUNING_SEEDS = (1000, 1001)  # far from the study's seeds 0, 1, 2, ...
COSTLY = ("trpo", "qrdqn")  # several times the time per update of A2C, PPO and DQN
HEARTBEAT_SECONDS, GRACE_SECONDS = 60, 300  # a trial without a heartbeat for GRACE_SECONDS died with its machine


def final_reward(history: Sequence[dict[str, Any]]) -> float:
    """The objective of one run: the exact expected reward at its last evaluation."""
    return float(history[-1][REWARD_KEY])


class RewardReporter(BaseCallback):
    """Hands the expected reward of each new EntropyCallback evaluation (that value only) to ``report``.

    ``report(slot, reward)`` gets the evaluation's slot, ``timesteps // eval_freq`` (so runs that collect more
    steps per rollout, whose evaluations fall later, are compared at the same budget; the evaluation at step 0,
    the untrained policy, is not reported), and returns True to stop training, which this callback then does at
    the next step.
    Run it after EntropyCallback in the same callback list (``train(..., callbacks=[reporter])``), with
    ``watch`` as ``train``'s ``on_model``, so it sees each evaluation as it is made.
    """

    def __init__(self, report: Callable[[int, float], bool], eval_freq: int) -> None:
        super().__init__()
        self._report, self._eval_freq = report, eval_freq
        self._history: list[dict[str, Any]] | None = None
        self._seen = 1  # the evaluation at step 0 is the untrained policy
        self.stopped_at: int | None = None  # the timestep of the evaluation that stopped training

    def watch(self, model: Any, entropy_callback: Any) -> None:
        self._history = entropy_callback.history

    def _on_rollout_start(self) -> None:
        # EntropyCallback evaluates at a rollout's start, before this callback's turn in the list
        while self.stopped_at is None and self._history is not None and self._seen < len(self._history):
            row = self._history[self._seen]
            if self._report(int(row["timesteps"]) // self._eval_freq, float(row[REWARD_KEY])):
                self.stopped_at = int(row["timesteps"])
            self._seen += 1

    def _on_step(self) -> bool:
        return self.stopped_at is None


# --------------------------------------------------------------------------------------------------
# Optuna: storage, sampler, pruner


def open_storage(url: str) -> Any:
    """Optuna's RDBStorage at ``url`` with heartbeats, so a trial whose machine died is failed, not waited for."""
    engine_kwargs = {"connect_args": {"timeout": 120}} if url.startswith("sqlite") else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.storages.RDBStorage(
            url, engine_kwargs=engine_kwargs, heartbeat_interval=HEARTBEAT_SECONDS, grace_period=GRACE_SECONDS
        )


def _interrupted(trial: Any) -> bool:
    """A trial that failed because its process stopped (Ctrl-C, a kill), not because its agent raised an error."""
    return trial.state.name == "FAIL" and "error" not in trial.user_attrs


class TrialSeededTPESampler(optuna.samplers.BaseSampler):
    """Optuna's TPE sampler seeded afresh for every trial from ``seed``, the study's name and the trial's place
    among the study's uninterrupted trials.

    Each trial's suggestions then depend only on the trials before it and that seed: not on which process ran
    it, nor on trials interrupted and run again, so a resumed sequential run repeats an uninterrupted one.
    """

    def __init__(self, seed: int, startup_trials: int, study: str) -> None:
        self._seed, self._startup_trials, self._study = seed, startup_trials, zlib.crc32(study.encode())
        self._sampler = self._tpe(0)

    def _tpe(self, place: int) -> optuna.samplers.TPESampler:
        trial_seed = int(np.random.SeedSequence([self._seed, self._study, place]).generate_state(1)[0])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.TPESampler(
                seed=trial_seed, n_startup_trials=self._startup_trials, multivariate=True, constant_liar=True
            )

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        failed = study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
        place = trial.number - sum(_interrupted(t) and t.number < trial.number for t in failed)
        self._sampler = self._tpe(place)
        self._sampler.before_trial(study, trial)

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, Any]:
        return self._sampler.infer_relative_search_space(study, trial)

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, Any]) -> dict[str, Any]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return self._sampler.sample_relative(study, trial, search_space)

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, name: str, distribution: Any) -> Any:
        return self._sampler.sample_independent(study, trial, name, distribution)

    def after_trial(self, study: optuna.Study, trial: FrozenTrial, state: TrialState, values: Any) -> None:
        self._sampler.after_trial(study, trial, state, values)


def study_name(experiment: str, agent: str) -> str:
    return f"{experiment}/{agent}"


# --------------------------------------------------------------------------------------------------
# One agent's study


@dataclass(frozen=True)
class _Job:
    settings: TuningSettings
    dimensions: list[Dimension]
    env_kwargs: dict[str, Any]
    storage: str
    trials: int


def _print(line: str) -> None:
    print(line, flush=True)  # at once, also from a worker whose output goes to a file


def _tune_agent(job: _Job, report: Callable[[str], None] = _print) -> None:
    """Run trials of one agent's study until it has ``job.trials`` finished ones (other workers' included)."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # the tuner prints its own progress lines
    settings = job.settings
    study = optuna.load_study(
        study_name=study_name(settings.experiment, settings.agent),
        storage=open_storage(job.storage),
        sampler=TrialSeededTPESampler(
            settings.sampler_seed, settings.startup_trials, study_name(settings.experiment, settings.agent)
        ),
        pruner=optuna.pruners.MedianPruner(
            n_startup_trials=settings.startup_trials, n_warmup_steps=settings.warmup_evaluations
        ),
    )
    _fail_interrupted_trials(study)
    ctrl_c = CtrlC()  # Ctrl-C stops the training at once, but waits for Optuna's writes to the storage
    owner = {"host": socket.gethostname(), "pid": os.getpid()}

    surplus = False
    queue_lock = _QueueLock(job.storage)

    def objective(trial: Any) -> float:
        nonlocal surplus
        queue_lock.release()  # the trial is this process's now
        for key, value in owner.items():  # also on a trial queued by a process that was killed
            trial.set_user_attr(key, value)
        if _claimed_before(study, trial.number) >= job.trials:  # another worker started the last trial first
            surplus = True  # left as an interrupted trial: not counted, not shown, not run
            raise _SurplusTrial(f"trial {trial.number}: the study has its {job.trials} trials")
        params = {dimension.name: dimension.suggest(trial) for dimension in job.dimensions}
        start = time.perf_counter()
        try:
            value = _run_trial(trial, settings, job.env_kwargs, params, ctrl_c)
        except optuna.TrialPruned:
            trial.set_user_attr("seconds", time.perf_counter() - start)
            raise
        except Exception as error:  # the agent failed with these hyperparameters: recorded, the study goes on
            trial.set_user_attr("error", f"{type(error).__name__}: {error}")
            trial.set_user_attr("seconds", time.perf_counter() - start)
            raise
        trial.set_user_attr("seconds", time.perf_counter() - start)
        return value

    def progress(study: Any, trial: Any) -> None:
        line = _trial_line(settings, job.trials, _finished(study), trial)
        if line is not None:
            report(line)

    with ctrl_c.handling():
        while _finished(study) < job.trials:
            queue_lock.acquire()
            try:
                if not study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):  # else a killed run's is next
                    # Optuna stores a trial before the objective starts: queued with its owner, a trial whose
                    # process is killed in between is known as that process's, so a resumed run fails it, not
                    # waits for it
                    study.enqueue_trial({}, user_attrs=owner)
                study.optimize(objective, n_trials=1, catch=(Exception,), callbacks=[progress])
            finally:
                queue_lock.release()  # if the objective never started
            ctrl_c.check()  # a Ctrl-C held while Optuna stored the result
            if surplus:
                break


def _trial_line(settings: TuningSettings, trials: int, finished: int, trial: Any) -> str | None:
    """The progress line of a finished trial: its reward, or where it was pruned, or its error."""
    where = f"[{settings.experiment} {settings.agent} trial {trial.number}, {finished}/{trials}]"
    params = ", ".join(f"{name}={_short(value)}" for name, value in trial.params.items())
    seconds = trial.user_attrs.get("seconds", 0.0)
    trained = trial.user_attrs.get("steps_trained", settings.steps)  # rollouts longer than the budget: more
    rounds = "train_freq rounds" if settings.algo in Q_LEARNING else "rollouts"
    more = f", {trained:,} steps trained (whole {rounds})" if trained != settings.steps else ""
    if trial.state.name == "COMPLETE":
        return f"{where} reward {trial.value:.4f} ({params}{more}) {seconds:.1f} s"
    if trial.state.name == "PRUNED":
        step = trial.user_attrs.get("pruned_at_step", 0)
        pruned = f"pruned at step {step:,} of {settings.steps:,} (reward {trial.value:.4f})"
        return f"{where} {pruned} ({params}) {seconds:.1f} s"
    if "error" in trial.user_attrs:
        return f"{where} FAILED: {trial.user_attrs['error']} ({params})"
    return None


def _run_trial(
    trial: Any, settings: TuningSettings, env_kwargs: dict[str, Any], params: dict[str, Any], ctrl_c: CtrlC
) -> float:
    """Train on every tuning seed; prune on the first seed's expected reward; the mean final expected reward.
    Ctrl-C stops the training, not a report to Optuna's storage."""
    chosen = hyperparameters_of(params)
    hyperparameters = {**settings.base_hyperparameters, **chosen}
    if "policy_kwargs" in chosen:
        hyperparameters["policy_kwargs"] = {
            **settings.base_hyperparameters.get("policy_kwargs", {}),
            **chosen["policy_kwargs"],
        }
    rewards: list[float] = []
    for index, seed in enumerate(settings.seeds):
        spec = RunSpec(
            env_id=settings.task,
            algo=settings.algo,
            seed=seed,
            timesteps=settings.steps,
            net_arch=settings.net_arch,
            hyperparameters=hyperparameters,
            env_kwargs=env_kwargs,
            eval_freq=settings.eval_freq,
            log_figures=False,
            batched=settings.batched,
        )

        def report(evaluation: int, reward: float) -> bool:
            with ctrl_c.held():
                trial.report(reward, evaluation)
                return trial.should_prune()

        reporter = RewardReporter(report if index == 0 else lambda _slot, _reward: False, settings.eval_freq)
        with one_torch_thread(), ctrl_c.stoppable():
            _, callback = train(spec, on_model=reporter.watch, callbacks=[reporter])
        if reporter.stopped_at is not None:
            trial.set_user_attr("pruned_at_step", reporter.stopped_at)
            raise optuna.TrialPruned(f"pruned at step {reporter.stopped_at}")
        rewards.append(final_reward(callback.history))
        trial.set_user_attr("rewards", rewards)
        trial.set_user_attr("steps_trained", int(callback.history[-1]["timesteps"]))
    return float(np.mean(rewards))


def _finished(study: Any) -> int:
    """Trials that count towards the budget: complete, pruned, or failed with an error (not interrupted ones)."""
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL))
    return sum(not _interrupted(trial) for trial in trials)


class _QueueLock:
    """A file lock beside a SQLite storage, held from queueing a trial until its objective starts.

    SQLite takes no row locks, so two workers that start a trial at once could both take the same queued trial and
    run it twice (Optuna then refuses the second result: "Cannot tell a COMPLETE trial"). Other databases lock the
    row themselves, and where ``fcntl`` is missing (Windows) there is no lock.
    """

    def __init__(self, storage: str) -> None:
        url = make_url(storage)
        database = url.database if url.drivername.startswith("sqlite") else None
        self._path = None if fcntl is None or database in (None, "", ":memory:") else f"{database}.lock"
        self._file: Any = None

    def acquire(self) -> None:
        if self._path is not None and self._file is None:
            self._file = open(self._path, "a")  # held from acquire to release
            fcntl.flock(self._file, fcntl.LOCK_EX)

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None


class _SurplusTrial(Exception):
    """Stored by Optuna as failed without an error, that is as interrupted: it neither counts nor shows."""


def _claimed_before(study: Any, number: int) -> int:
    """Trials numbered below ``number`` that count or may still count: finished ones, and those queued or running
    in a live process (of another machine: assumed live). Optuna numbers trials in the storage, so of two workers
    that start a study's last trial at once, the lower number runs it."""
    host = socket.gethostname()

    def claimed(trial: Any) -> bool:
        if trial.state.name == "RUNNING":
            pid = trial.user_attrs.get("pid")
            return trial.user_attrs.get("host") != host or pid is None or _alive(pid)
        return trial.state.name == "WAITING" or not _interrupted(trial)

    return sum(claimed(trial) for trial in study.get_trials(deepcopy=False) if trial.number < number)


def _fail_interrupted_trials(study: Any) -> None:
    """Mark as failed (interrupted) the running trials of this machine whose process is gone (a kill, a crash).

    Trials of other machines are left to Optuna's heartbeat, which fails them once they stop beating.
    """
    host = socket.gethostname()
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        pid = trial.user_attrs.get("pid")
        if trial.user_attrs.get("host") == host and pid is not None and not _alive(pid):
            study.tell(trial.number, state=TrialState.FAIL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


# --------------------------------------------------------------------------------------------------
# Every agent


def _run_job(job: _Job) -> None:
    _tune_agent(job)


def tune_agents(
    experiment: Experiment,
    agents: list[str],
    search_space: dict[str, list[Dimension]],
    *,
    trials: int,
    steps: int,
    seeds: Sequence[int],
    storage: str,
    env_kwargs: dict[str, Any],
    evaluations: int = 10,
    sampler_seed: int = 0,
    startup_trials: int = 5,
    batched: bool = True,
    workers: int = 1,
    resume: bool = False,
) -> dict[str, AgentTuning]:
    """Tune ``agents`` of ``experiment`` until each study has ``trials`` finished trials; read back every study.

    Up to one worker per agent, each agent's study runs sequentially in one process, so the trials are those
    of a run with one worker. More workers than agents share studies (Optuna's parallel mode): faster, but
    the trials then depend on which finished first.
    """
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # the tuner prints its own progress lines
    if evaluations > steps:
        raise ValueError(f"evaluations must be at most steps ({steps:,}): a run is evaluated at most once a step, "
                         f"got {evaluations:,}")  # fmt: skip
    settings = {
        agent: TuningSettings(
            experiment=experiment.name,
            agent=agent,
            task=experiment.task,
            task_kwargs=dict(experiment.task_kwargs),
            net_arch=list(experiment.net_arch),
            algo=experiment.agents[agent].algo,
            base_hyperparameters=dict(experiment.agents[agent].hyperparameters),
            search_space={d.name: d.as_yaml() for d in search_space[experiment.agents[agent].algo]},
            steps=steps,
            evaluations=evaluations,
            seeds=list(seeds),
            sampler_seed=sampler_seed,
            startup_trials=startup_trials,
            batched=batched,
        )
        for agent in agents
    }
    _open_studies(settings, storage, resume)
    # the costly algorithms first, so that with fewer workers than agents the cheap ones fill in at the end
    agents = sorted(agents, key=lambda agent: settings[agent].algo not in COSTLY)
    jobs = []
    for index, agent in enumerate(agents):  # workers beyond one per agent join the studies in turn
        copies = max(1, workers // len(agents) + (index < workers % len(agents)))
        jobs += [_Job(settings[agent], search_space[settings[agent].algo], env_kwargs, storage, trials)] * copies
    _run_jobs(jobs, workers)
    return read_tuning(experiment.name, list(settings), storage)


class StudyExistsError(ValueError):
    """A tuning study of the same name is in the storage already: not resumed, or run with other settings."""


def _open_studies(settings: dict[str, TuningSettings], storage: str, resume: bool) -> None:
    """Create each agent's Optuna study in ``storage``, or, with ``resume``, check that an existing one ran with the
    same settings; a ValueError otherwise."""
    opened = open_storage(storage)
    existing = set(optuna.study.get_all_study_names(opened))
    for agent_settings in settings.values():
        name = study_name(agent_settings.experiment, agent_settings.agent)
        if name not in existing:
            study = optuna.create_study(study_name=name, storage=opened, direction="maximize")
            study.set_user_attr("settings", agent_settings.as_json())
            continue
        if not resume:
            raise StudyExistsError(
                f"a tuning study {name!r} already exists in {storage}: resume it to go on with it, or tune into "
                "another storage"
            )
        saved = optuna.load_study(study_name=name, storage=opened).user_attrs.get("settings", {})
        changed = sorted(key for key, value in agent_settings.as_json().items() if saved.get(key) != value)
        if changed:
            raise StudyExistsError(
                f"the tuning study {name!r} in {storage} was run with other settings ({', '.join(changed)}: "
                f"{', '.join(f'{saved.get(key)!r}' for key in changed)}); resume it with the same ones, or start a new "
                "one in another storage"
            )


def _run_jobs(jobs: list[_Job], workers: int) -> None:
    """Each job (an agent's study to fill) in this process with one worker, else in a pool of spawned workers."""
    if len(jobs) == 1 or workers <= 1:
        for job in jobs:
            with one_torch_thread():
                _tune_agent(job)
        return
    check_main_is_guarded()
    pool = multiprocessing.get_context("spawn").Pool(min(workers, len(jobs)), initializer=init_worker,
                                                     initargs=(os.getpid(),))  # fmt: skip
    try:
        for _ in pool.imap_unordered(_run_job, jobs):
            pass
        pool.close()
    except BaseException:  # Ctrl-C included: stop every worker now; finished trials are in the storage
        pool.terminate()
        raise
    finally:
        pool.join()


def read_tuning(experiment: str, agents: list[str], storage: str) -> dict[str, AgentTuning]:
    """Every agent's study as stored: its settings and its trials, interrupted ones left out."""
    opened = open_storage(storage)
    tunings = {}
    for agent in agents:
        study = optuna.load_study(study_name=study_name(experiment, agent), storage=opened)
        settings = TuningSettings(**study.user_attrs["settings"])
        trials = [trial for trial in study.get_trials(deepcopy=True) if not _interrupted(trial)]
        trials = [trial for trial in trials if trial.state.name not in ("RUNNING", "WAITING")]
        seconds = sum(trial.user_attrs.get("seconds", 0.0) for trial in trials)
        tunings[agent] = AgentTuning(settings, trials, seconds)
    return tunings
