"""Studies: the paper's experiments and the diversity-reward frontier, over agents and seeds.

The logic behind personalization-gym reproduce, a module per concern:

- :mod:`~sb3_entropy.study.experiments`: experiment files (YAML), their agents and frontier grids, checked;
- :mod:`~sb3_entropy.study.plans`: training every agent with every seed, locally in worker processes or on Ray;
- :mod:`~sb3_entropy.study.analysis`: ``results.csv`` and the final values per agent;
- :mod:`~sb3_entropy.study.analysis`: intervals over seeds;
- :mod:`~sb3_entropy.study.analysis`: the diversity-reward frontier and what reaching the reference costs;
- :mod:`~sb3_entropy.study.plots`: figures; :mod:`~sb3_entropy.study.report`: the Markdown report;
- :mod:`~sb3_entropy.study.report`: what is written to each experiment's folder.
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
