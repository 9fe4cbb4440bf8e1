"""A study's runs: one agent on a task with one seed (``RunSpec``), built, checked and trained with EntropyCallback
attached and its TensorBoard run in the study's layout; the runs a study stores (``OUT/EXPERIMENT/runs/
AGENT_seedN.json``) with the settings they ran with, which ``--resume`` and ``report`` reuse instead of training
again; and where each run trained.

The same seed gives the same numbers only on the same software and hardware: torch picks its CPU kernels by the
instruction set it finds (AVX2, AVX-512), and BLAS libraries sum in different orders. Each run records the
environment it trained in (Python, the packages that compute a run, the CPU, torch's kernels, BLAS), so a report
can say which machine its numbers came from and whether they mix.
"""

from __future__ import annotations

import functools
import json
import math
import os
import platform
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import Logger

from personalization_gym.checks import check_integer
from sb3_entropy.agents import REGULARIZABLE, make_agent, trained_steps
from sb3_entropy.atomic import write_text_atomically
from sb3_entropy.callback import EntropyCallback
from sb3_entropy.metrics import STORED
from sb3_entropy.study.dashboard import run_layout
from sb3_entropy.tensorboard import HParamsCallback, evaluation_log_interval, run_folder, tensorboard_logger

__all__ = [
    "METRIC_KEYS",
    "PACKAGES",
    "RunSpec",
    "agent_hparams",
    "build_model",
    "check_run",
    "describe",
    "figure_every",
    "limit_threads",
    "one_torch_thread",
    "run_environment",
    "run_hparams",
    "settings_of",
    "store_outcome",
    "stored_outcomes",
    "summarize_environments",
    "train",
]


# ------------------------------------------------------------------------------------------------------------
# Where a run trained
PACKAGES = ("torch", "stable-baselines3", "sb3-contrib", "gymnasium", "numpy")


@functools.lru_cache(maxsize=1)
def run_environment() -> dict[str, str]:
    """This process's environment: Python, the packages that compute a run, the CPU, torch's kernels, BLAS."""
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return {
        "python": platform.python_version(),
        **versions,
        "cpu": _cpu_model(),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch_blas": _torch_blas(),
        "numpy_blas": _numpy_blas(),
        "system": f"{platform.system()} {platform.machine()}",
    }


def describe(environment: dict[str, Any]) -> str:
    """One line: ``Python 3.11.7, torch 2.14.1 (AVX512 kernels), ..., CPU AMD EPYC 9R14``."""
    packages = ", ".join(f"{name} {environment.get(name, '?')}" for name in PACKAGES if name != "torch")
    return (
        f"Python {environment.get('python', '?')}, torch {environment.get('torch', '?')} "
        f"({environment.get('torch_cpu_capability', '?')} kernels, BLAS {environment.get('torch_blas', '?')}), "
        f"{packages}, numpy's BLAS "
        f"{environment.get('numpy_blas', '?')}; CPU {environment.get('cpu', '?')} ({environment.get('system', '?')})"
    )


def summarize_environments(environments: list[dict[str, Any] | None]) -> list[tuple[str, int]]:
    """Each distinct environment's line with how many runs trained in it, most runs first; runs stored before
    environments were recorded (None) are counted as such."""
    counts: dict[str, int] = {}
    for environment in environments:
        line = "not recorded (stored before runs recorded it)" if environment is None else describe(environment)
        counts[line] = counts.get(line, 0) + 1
    return sorted(counts.items(), key=lambda item: -item[1])


def _cpu_model() -> str:
    """The CPU's model name (Linux's /proc/cpuinfo, else what platform says)."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    return platform.processor() or "unknown"


def _torch_blas() -> str:
    """The BLAS torch was built with (``BLAS_INFO`` in its build configuration)."""
    found = re.search(r"BLAS_INFO=([^,\s]+)", torch.__config__.show())
    return found.group(1) if found else "unknown"


def _numpy_blas() -> str:
    """numpy's BLAS library and version, as numpy's build configuration names them."""
    config = getattr(np, "__config__", None)
    blas = getattr(config, "CONFIG", {}).get("Build Dependencies", {}).get("blas", {}) if config else {}
    if not blas:
        return "unknown"
    return f"{blas.get('name', 'unknown')} {blas.get('version', '')}".strip()


# ------------------------------------------------------------------------------------------------------------
# A run
@dataclass
class RunSpec:
    """One training run: an agent on a task with one seed."""

    env_id: str
    algo: str
    seed: int
    timesteps: int
    net_arch: list[int] | None = None  # None: policy_kwargs' net_arch, else agents.DEFAULT_NET_ARCH
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    eval_freq: int = 2000
    n_eval: int | None = None
    temperature: float = 0.1
    tensorboard_log: str | None = None  # the TensorBoard root: the run logs to <root>/<experiment>/<agent>/seed<seed>
    experiment: str = "default"
    agent: str | None = None  # default: algo
    progress: bool = False
    log_figures: bool = True
    batched: bool = True  # 1 step of BATCH envs per update batch; False: the reference setup, 1 env
    regularizer: str | None = None  # a2c / ppo: MarginalEntropyPolicy with this regularizer, coefficient ent_coef
    per_state_weight: float = 0.0
    data_fingerprint: str | None = None  # the task's data (personalization_gym.fingerprints), for --resume


def build_model(spec: RunSpec, task: Any = None) -> tuple[Any, Any]:
    """The SB3 model of ``spec`` (the paper's batch settings under its own hyperparameters) and its training env,
    made from ``task`` (the task of ``spec``, already built) when given, else from the spec's id and arguments."""
    return make_agent(
        spec.algo, spec.env_id, spec.seed, spec.net_arch, spec.hyperparameters, spec.env_kwargs, spec.batched,
        spec.regularizer, spec.per_state_weight, task,
    )  # fmt: skip


def check_run(spec: RunSpec, task: Any = None) -> int:
    """Build ``spec``'s model once, without training, so that settings which cannot work (a network, a batch
    size, a policy argument the constructor refuses) fail before any run starts: a ValueError with the cause.
    ``task``: the spec's task, already built (a Ratings-v0 fit or a dataset is then not made again); left open.
    Returns the steps the run will train: ``spec.timesteps`` rounded up to SB3's whole rounds (``trained_steps``)."""
    check_integer("timesteps", spec.timesteps, 1)
    try:
        model, env = build_model(spec, task)  # checks the hyperparameters first
    except ValueError:
        raise
    except Exception as error:  # SB3 and torch refuse with asserts and TypeErrors: say which settings did it
        raise ValueError(f"{spec.algo} cannot be built with these settings: {type(error).__name__}: {error}") from None
    if task is None:
        env.close()
    return trained_steps(model, spec.timesteps)


def train(
    spec: RunSpec,
    model_path: str | os.PathLike[str] | None = None,
    on_model: Callable[[Any, EntropyCallback], None] | None = None,
    callbacks: Sequence[BaseCallback] = (),
) -> tuple[Any, EntropyCallback]:
    """Train ``spec`` with EntropyCallback attached; save the model to ``model_path`` if given.

    ``on_model(model, callback)`` is called once the model and its callback are built, before training (e.g.
    to instrument them). ``callbacks`` run after EntropyCallback, so they see each of its evaluations as soon as
    it is made.
    """
    check_integer("timesteps", spec.timesteps, 1)
    model, env = build_model(spec)
    callback = EntropyCallback(
        eval_env=env,
        eval_freq=spec.eval_freq,
        n_eval=spec.n_eval,
        temperature=spec.temperature,
        log_figures=spec.log_figures,
        figure_every=figure_every(spec.timesteps, spec.eval_freq),
        seed=spec.seed,
    )
    extra: list[BaseCallback] = []
    if spec.tensorboard_log is not None:
        agent = spec.agent or spec.algo
        model.set_logger(tensorboard_logger(run_folder(spec.tensorboard_log, spec.experiment, agent, spec.seed)))
        extra.append(HParamsCallback(run_hparams(spec, model)))
        callback.custom_scalars_layout = run_layout(spec.experiment)
    else:  # SB3's own default would make an empty folder in the temporary directory for every run
        model.set_logger(Logger(folder=None, output_formats=[]))
    if on_model is not None:
        on_model(model, callback)
    model.learn(
        spec.timesteps,
        callback=[callback, *extra, *callbacks],
        log_interval=evaluation_log_interval(model, spec.eval_freq),
        progress_bar=spec.progress,
    )
    if model_path is not None:
        Path(model_path).parent.mkdir(parents=True, exist_ok=True)
        model.save(model_path)
    return model, callback


def figure_every(timesteps: int, eval_freq: int) -> int:
    """EntropyCallback's ``figure_every`` for about 10 pictures a run, as many as TensorBoard keeps by default."""
    return max(1, math.ceil(timesteps / eval_freq / 10))


def agent_hparams(algo: str, regularizer: str | None, coefficient: float) -> dict[str, Any]:
    """What the HParams dashboard shows of an agent: its algorithm, its entropy regulariser (``per_state`` for SB3's
    own term, ``none`` for agents without one) and, where there is a term, its coefficient (an agent without one
    shows no coefficient rather than a 0 it does not have: A2C and PPO at SB3's default ent_coef of 0 are
    unregularised). The run's name says the experiment, the agent and the seed."""
    # TRPO carries SB3's ent_coef attribute but no entropy term in its update: only A2C and PPO have one
    has_term = algo in REGULARIZABLE and (regularizer is not None or coefficient != 0)
    hparams: dict[str, Any] = {"algo": algo, "regularizer": regularizer or ("per_state" if has_term else "none")}
    if has_term:
        hparams["coefficient"] = float(coefficient)
    return hparams


def run_hparams(spec: RunSpec, model: Any) -> dict[str, Any]:
    """:func:`agent_hparams` of a run, its coefficient as the model holds it."""
    return agent_hparams(spec.algo, spec.regularizer, float(getattr(model, "ent_coef", 0.0)))


def limit_threads() -> None:
    """One torch thread per run: small networks gain nothing from more, and parallel runs then share cores."""
    torch.set_num_threads(1)


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """``limit_threads`` for a block, then back to the caller's thread count (for runs in the caller's process)."""
    previous = torch.get_num_threads()
    limit_threads()
    try:
        yield
    finally:
        torch.set_num_threads(previous)


# ------------------------------------------------------------------------------------------------------------
# The stored runs
# every run's history has these (the reward metrics: a task's runs only)
METRIC_KEYS = tuple(metric.tag for metric in STORED if not metric.rewards)


def stored_outcomes(
    name: str,
    specs: dict[tuple[str, int], RunSpec],
    runs_dir: Path,
    report: Callable[[str], None],
    why_not: dict[tuple[str, int], str] | None = None,
) -> dict[tuple[str, int], dict[str, Any]]:
    """The runs stored in ``runs_dir`` that ran with the same settings as their spec (``--resume``); each one that
    cannot be used is reported, with why (also kept in ``why_not``), and trains again."""
    outcomes: dict[tuple[str, int], dict[str, Any]] = {}
    why_not = {} if why_not is None else why_not
    for key, spec in specs.items():
        path = runs_dir / f"{key[0]}_seed{key[1]}.json"
        if not path.is_file():
            continue
        try:
            saved = json.loads(path.read_text())
            saved["history"][-1]
        except (OSError, UnicodeDecodeError, ValueError, KeyError, IndexError, TypeError) as error:
            why_not[key] = f"{path} is unreadable ({type(error).__name__}: {error})"
            report(f"{name} {key[0]} seed {key[1]}: {why_not[key]}, rerun")
            continue
        settings = settings_of(spec)
        if saved.get("settings") != settings:
            why_not[key] = _what_changed(saved.get("settings"), settings)
        elif not set(METRIC_KEYS) <= set(saved["history"][-1]):
            why_not[key] = "saved before some metrics existed"
        if key in why_not:
            report(f"{name} {key[0]} seed {key[1]}: {why_not[key]}, rerun")
        else:
            outcomes[key] = {**saved, "resumed": True}
    return outcomes


def _what_changed(saved: Any, settings: dict[str, Any]) -> str:
    """Why a stored run's settings are not this spec's: its data (the task's data fingerprint), or its settings."""
    if not isinstance(saved, dict):
        return "the saved run has no settings"
    rest = {key: value for key, value in saved.items() if key != "data_fingerprint"}
    if rest == {key: value for key, value in settings.items() if key != "data_fingerprint"}:
        if "data_fingerprint" not in saved:
            return "the saved run did not record its data (saved by an older version)"
        then, now = saved["data_fingerprint"][:12], str(settings.get("data_fingerprint"))[:12]
        return f"the task's data changed since the saved run (fingerprint {then} then, {now} now: a file differs)"
    changed = sorted(key for key in set(rest) | set(settings) if rest.get(key) != settings.get(key))
    return (
        "settings changed since the saved run ("
        + "; ".join(f"{key}: {_short(rest.get(key))} then, {_short(settings.get(key))} now" for key in changed)
        + ")"
    )


def _short(value: Any) -> str:
    """A setting as a message shows it: its repr, cut at 60 characters."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def store_outcome(runs_dir: Path, key: tuple[str, int], spec: RunSpec, outcome: dict[str, Any]) -> None:
    """A finished run's history, with the settings it ran with (``--resume`` compares them), or its traceback."""
    stem = f"{key[0]}_seed{key[1]}"  # agent names may hold dots (a frontier's a2c_marginal_0.05): no with_suffix
    if "history" in outcome:
        write_text_atomically(runs_dir / f"{stem}.json", json.dumps({**outcome, "settings": settings_of(spec)}))
        (runs_dir / f"{stem}.error.txt").unlink(missing_ok=True)  # an earlier call's failure
    if "traceback" in outcome:
        write_text_atomically(runs_dir / f"{stem}.error.txt", outcome["traceback"])


def settings_of(spec: RunSpec) -> dict[str, Any]:
    """What a run's results depend on, as saved with it (JSON-comparable), for --resume."""
    return json.loads(json.dumps({
        "env_id": spec.env_id, "algo": spec.algo, "seed": spec.seed, "timesteps": spec.timesteps,
        "net_arch": spec.net_arch, "hyperparameters": spec.hyperparameters, "batched": spec.batched,
        "eval_freq": spec.eval_freq, "temperature": spec.temperature,
        **({"regularizer": spec.regularizer, "per_state_weight": spec.per_state_weight} if spec.regularizer else {}),
        "env_kwargs": {k: v for k, v in spec.env_kwargs.items() if k not in ("data_dir", "download")},
        **({"data_fingerprint": spec.data_fingerprint} if spec.data_fingerprint else {}),
    }, default=str))  # fmt: skip


if __name__ == "__main__":  # python -m sb3_entropy.study.runs: this machine's line
    print(describe(run_environment()), file=sys.stdout)
