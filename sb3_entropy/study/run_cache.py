"""The runs a study has stored (``OUT/EXPERIMENT/runs/AGENT_seedN.json``), with the settings they ran with: what
``--resume`` and ``report`` reuse instead of training again."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sb3_entropy.atomic import write_text_atomically
from sb3_entropy.metrics import ACTION_KEYS, ENTROPY_KEYS, EXPOSURE_KEYS
from sb3_entropy.study.runs import RunSpec

__all__ = ["METRIC_KEYS", "settings_of", "store_outcome", "stored_outcomes"]

METRIC_KEYS = (*ENTROPY_KEYS, *ACTION_KEYS, *EXPOSURE_KEYS)  # every run's history has these (reward keys: tasks only)


def stored_outcomes(
    name: str, specs: dict[tuple[str, int], RunSpec], runs_dir: Path, report: Callable[[str], None]
) -> dict[tuple[str, int], dict[str, Any]]:
    """The runs stored in ``runs_dir`` that ran with the same settings as their spec (``--resume``); each one that
    cannot be used is reported, with why, and trains again."""
    outcomes: dict[tuple[str, int], dict[str, Any]] = {}
    for key, spec in specs.items():
        path = runs_dir / f"{key[0]}_seed{key[1]}.json"
        if not path.is_file():
            continue
        try:
            saved = json.loads(path.read_text())
            saved["history"][-1]
        except (OSError, UnicodeDecodeError, ValueError, KeyError, IndexError, TypeError) as error:
            report(f"{name} {key[0]} seed {key[1]}: {path} is unreadable ({type(error).__name__}: {error}), rerun")
            continue
        settings = settings_of(spec)
        if saved.get("settings") != settings:
            report(f"{name} {key[0]} seed {key[1]}: {_what_changed(saved.get('settings'), settings)}, rerun")
        elif not set(METRIC_KEYS) <= set(saved["history"][-1]):
            report(f"{name} {key[0]} seed {key[1]}: saved before some metrics existed, rerun")
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
    return f"settings changed since the saved run ({', '.join(changed)})"


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
