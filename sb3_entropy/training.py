"""Deprecated: ``sb3_entropy.training`` was split in two. Its names still import from here, with a
DeprecationWarning that says where each went:

- the agents of the paper's setup (``paper_agent``, ``AGENT_DEFAULTS``, ``algorithm_class``, the hyperparameter
  checks, ...): :mod:`sb3_entropy.agents`, part of the plugin;
- a study's runs (``RunSpec``, ``train``, ``build_model``, ``check_run``, ...): :mod:`sb3_entropy.study.runs`, and the
  command line's ``parse_hp`` and ``parse_net_arch``: :mod:`sb3_entropy.study.cli.parsing`, both part of the study
  (``pip install "personalization-gym[study]"``).
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any

_MOVED = {
    **dict.fromkeys(
        (
            "AGENT_DEFAULTS",
            "BATCH",
            "HYPERPARAMETER_RANGES",
            "ON_POLICY",
            "Q_LEARNING",
            "REGULARIZABLE",
            "algorithm_class",
            "batched_hyperparameters",
            "check_hyperparameter_names",
            "check_hyperparameters",
            "is_number_text",
            "make_agent",
            "paper_agent",
            "policy_for",
            "use_foreach_optimizer",
        ),
        "sb3_entropy.agents",
    ),
    **dict.fromkeys(
        (
            "RunSpec",
            "agent_hparams",
            "build_model",
            "check_run",
            "figure_every",
            "final_row",
            "limit_threads",
            "one_torch_thread",
            "run_hparams",
            "train",
        ),
        "sb3_entropy.study.runs",
    ),
    **dict.fromkeys(("parse_hp", "parse_net_arch"), "sb3_entropy.study.cli.parsing"),
}


def __getattr__(name: str) -> Any:  # a deprecation bridge: the one place here that may import the study
    if name not in _MOVED:
        raise AttributeError(f"module 'sb3_entropy.training' has no attribute {name!r}")
    warnings.warn(
        f"sb3_entropy.training.{name} moved to {_MOVED[name]}: import it from there", DeprecationWarning, stacklevel=2
    )
    return getattr(importlib.import_module(_MOVED[name]), name)
