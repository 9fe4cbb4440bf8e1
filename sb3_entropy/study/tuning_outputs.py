"""What tuning writes for an experiment: tuned.yml (an experiment file), trials.csv and tuning.png."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import yaml

from sb3_entropy.atomic import atomic_path, write_text_atomically
from sb3_entropy.study.experiments import Experiment
from sb3_entropy.study.search_space import hyperparameters_of
from sb3_entropy.study.tuning import OBJECTIVE, AgentTuning, trial_reward

__all__ = ["TRIAL_COLUMNS", "tuned_experiment", "write_tuning_outputs"]

TRIAL_COLUMNS = ("agent", "trial", "state", "reward", "rewards", "last_evaluation", "seconds", "error")


def _plain(value: Any) -> Any:
    """numpy scalars and tuples as plain YAML values."""
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _ordered(params: dict[str, Any], tuning: AgentTuning) -> dict[str, Any]:
    """A trial's values in the search space's order (Optuna keeps them sorted by name)."""
    return {name: params[name] for name in tuning.settings.search_space if name in params}


def tuned_experiment(experiment: Experiment, source: dict[str, Any], tunings: dict[str, AgentTuning]) -> dict[str, Any]:
    """The experiment file ``source`` (as read) with each tuned agent's chosen values, and a ``tuning`` section."""
    import optuna

    data = {key: value for key, value in source.items() if key not in ("frontier", "tuning")}
    agents: dict[str, Any] = {}  # the tuned agents only: the file runs them as they were tuned
    section: dict[str, Any] = {}
    for agent, tuning in tunings.items():
        best = tuning.best
        settings = tuning.settings
        agents[agent] = dict(source["agents"][agent] or {})
        entry: dict[str, Any] = {}
        if best is not None:
            chosen = hyperparameters_of(_ordered(best.params, tuning))
            policy_kwargs = {**agents[agent].get("policy_kwargs", {}), **chosen.get("policy_kwargs", {})}
            agents[agent] |= chosen | ({"policy_kwargs": policy_kwargs} if policy_kwargs else {})
            entry |= {"chosen": _ordered(best.params, tuning), "reward": best.value, "trial": best.number}
        else:
            entry |= {"chosen": {}, "reward": None}
        entry |= {
            "trials": len(tuning.trials),
            "pruned": tuning.count("PRUNED"),
            "failed": tuning.count("FAIL"),
            "steps": settings.steps,
            "evaluations": settings.evaluations,
            "seeds": list(settings.seeds),
            "sampler": {"name": "TPE", "seed": settings.sampler_seed, "startup_trials": settings.startup_trials},
            "pruner": {
                "name": "median",
                "startup_trials": settings.startup_trials,
                "warmup_evaluations": settings.warmup_evaluations,
            },
            "search_space": settings.search_space,
            "seconds": round(tuning.seconds, 1),
            "history": [
                {
                    "trial": trial.number,
                    "state": trial.state.name,
                    "reward": None if math.isnan(trial_reward(trial)) else trial_reward(trial),
                    **({"rewards": trial.user_attrs["rewards"]} if "rewards" in trial.user_attrs else {}),
                    "params": _ordered(trial.params, tuning),
                    **({"error": trial.user_attrs["error"]} if "error" in trial.user_attrs else {}),
                }
                for trial in tuning.trials
            ],
        }
        section[agent] = entry
    data["agents"] = agents
    if "paper" in data:
        data["paper"] = {agent: values for agent, values in data["paper"].items() if agent in agents}
        if not data["paper"]:
            del data["paper"]
    data["tuning"] = {
        "experiment": experiment.name,
        "objective": OBJECTIVE,
        "optuna": optuna.__version__,
        "agents": section,
    }
    return _plain(data)


def write_tuning_outputs(
    experiment: Experiment,
    source: dict[str, Any],
    tunings: dict[str, AgentTuning],
    baselines: dict[str, float],
    folder: Path,
    command: str,
) -> list[Path]:
    """``tuned.yml``, ``trials.csv`` and ``tuning.png`` in ``folder``, each written whole or not at all."""
    folder.mkdir(parents=True, exist_ok=True)
    header = (
        f"# Hyperparameters of experiment {experiment.name} tuned for reward alone (Optuna) by:\n"
        f"#   {command}\n"
        "# An experiment file: personalization-gym reproduce EXPERIMENT --hyperparams THIS_FILE runs the study with\n"
        "# the tuned agents (on seeds other than the tuning seeds). 'tuning' records, per agent, the values chosen,\n"
        "# the budget, the tuning seeds and every trial.\n"
    )
    tuned = folder / "tuned.yml"
    write_text_atomically(
        tuned,
        header
        + yaml.safe_dump(
            tuned_experiment(experiment, source, tunings), sort_keys=False, default_flow_style=None, width=120
        ),
    )
    table = folder / "trials.csv"
    names = list(dict.fromkeys(name for tuning in tunings.values() for name in tuning.settings.search_space))
    rows = []
    for agent, tuning in tunings.items():
        for trial in tuning.trials:
            reached = max(trial.intermediate_values) if trial.intermediate_values else ""
            rows.append({
                "agent": agent, "trial": trial.number, "state": trial.state.name,
                "reward": "" if math.isnan(trial_reward(trial)) else repr(trial_reward(trial)),
                "rewards": " ".join(map(repr, trial.user_attrs.get("rewards", []))),
                "last_evaluation": reached, "seconds": f"{trial.user_attrs.get('seconds', 0.0):.1f}",
                "error": trial.user_attrs.get("error", ""), **{name: trial.params.get(name, "") for name in names},
            })  # fmt: skip
    with atomic_path(table) as temporary, open(temporary, "w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=[*TRIAL_COLUMNS, *names])
        writer.writeheader()
        writer.writerows(rows)
    figure = folder / "tuning.png"
    from sb3_entropy.study.plots import tuning_figure

    tuning_figure(experiment.name, tunings, baselines, figure)
    return [tuned, table, figure]
