"""Studies: the paper's experiments and the diversity-reward frontier, over agents and seeds, and tuning for reward.

The logic behind the personalization-gym command, a module per concern:

- :mod:`~sb3_entropy.study.experiments`: experiment files (YAML), their agents and frontier grids, checked;
- :mod:`~sb3_entropy.study.runs`: one run: its spec, its training, the runs stored for ``--resume``, where it ran;
- :mod:`~sb3_entropy.study.execution`: where runs run (this process, worker processes, Ray), progress, Ctrl-C;
- :mod:`~sb3_entropy.study.plans`: every agent of an experiment with every seed, checked, then run;
- :mod:`~sb3_entropy.study.analysis`: intervals over seeds, final values, the entropy-gap rule, the frontier;
- :mod:`~sb3_entropy.study.dashboard`: each agent's mean over seeds in TensorBoard;
- :mod:`~sb3_entropy.study.plots` and :mod:`~sb3_entropy.study.report`: the figures, the report and the files;
- :mod:`~sb3_entropy.study.tuning_files` and :mod:`~sb3_entropy.study.tuning`: tuning for reward alone;
- :mod:`~sb3_entropy.study.update_rule`: one gradient step, and the update rules at work on a task.
"""

import importlib.util

# The study's own dependencies (the study extra): one clear message instead of the first failing import.
STUDY_MODULES = {"scipy": "scipy", "sb3_contrib": "sb3-contrib", "optuna": "optuna", "sklearn": "scikit-learn",
                 "tqdm": "tqdm"}  # fmt: skip
_missing = [package for module, package in STUDY_MODULES.items() if importlib.util.find_spec(module) is None]
if _missing:
    raise ImportError(
        f"sb3_entropy.study (studies, tuning, reports, the personalization-gym command) needs the study extra: "
        f'pip install "personalization-gym[study]" (missing: {", ".join(_missing)})'
    )

from sb3_entropy.study.analysis import mean_interval, t_band, welch_interval
from sb3_entropy.study.experiments import (
    EXPERIMENTS_DIR,
    Agent,
    Experiment,
    ExperimentResult,
    Frontier,
    available_experiments,
    load_experiment,
)
from sb3_entropy.study.plans import run_experiment
from sb3_entropy.study.report import write_outputs, write_report

__all__ = [
    "EXPERIMENTS_DIR",
    "Agent",
    "Experiment",
    "ExperimentResult",
    "Frontier",
    "available_experiments",
    "load_experiment",
    "mean_interval",
    "run_experiment",
    "t_band",
    "welch_interval",
    "write_outputs",
    "write_report",
]
