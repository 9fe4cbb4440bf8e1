"""Deprecated: the update-rule experiment moved to :mod:`sb3_entropy.study.update_rule` (part of the study,
``pip install "personalization-gym[study]"``). Its names still import from here, with a DeprecationWarning."""

from __future__ import annotations

import importlib
import warnings
from typing import Any


def __getattr__(name: str) -> Any:  # a deprecation bridge: the one place here that may import the study
    module = importlib.import_module("sb3_entropy.study.update_rule")
    if name.startswith("__") or not hasattr(module, name):
        raise AttributeError(f"module 'sb3_entropy.update_rule_experiment' has no attribute {name!r}")
    warnings.warn(
        f"sb3_entropy.update_rule_experiment.{name} moved to sb3_entropy.study.update_rule: import it from there",
        DeprecationWarning,
        stacklevel=2,
    )
    return getattr(module, name)
