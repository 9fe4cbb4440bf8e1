"""List the tasks and the experiments that ship with the package.

    personalization-gym list                 # tasks, then experiments
    personalization-gym list experiments     # only the experiments

A task is made with gym.make(ID); an experiment is run with personalization-gym reproduce NAME, and tuned with
personalization-gym tune NAME. "tuned" marks the experiments whose tuned hyperparameters ship
(personalization-gym reproduce NAME --hyperparams tuned).
"""

from __future__ import annotations

from personalization_gym.registration import OWN_DATA_TASK_IDS, TASK_IDS, task_class
from sb3_entropy.study.cli.parsing import command_parser
from sb3_entropy.study.experiments import TUNED_DIR, available_experiments, load_experiment

__all__ = ["main"]

# What each task needs before gym.make works (docs/data.md says where its data comes from).
DATA = {
    "Personalization/Music-v0": "ships with the package",
    "Personalization/Behavior-v0": "generated, no data",
    "Personalization/Ads-v0": "generated, no data",
    "Personalization/Digits-v0": "scikit-learn's bundled digits",
    "Personalization/MovieLens-v0": "MovieLens from GroupLens (yours)",
}


def task_lines() -> list[str]:
    """One line per task: its id, what data it needs, and the first line of its docstring."""
    lines = []
    for env_id in TASK_IDS:
        summary = (task_class(env_id).__doc__ or "").strip().split("\n")[0]
        data = DATA.get(env_id, "your own data" if env_id in OWN_DATA_TASK_IDS else "downloaded by torchvision")
        lines.append(f"  {env_id:<34} {data:<30} {summary}")
    return lines


def experiment_lines() -> list[str]:
    """One line per packaged experiment: its name, task, agents, steps and seeds, and whether tuned files ship."""
    lines = []
    for name in available_experiments():
        experiment = load_experiment(name)
        tuned = "tuned" if (TUNED_DIR / f"{name}.yml").is_file() else ""
        kind = "frontier grid of " if experiment.frontier is not None else ""
        agents = f"{kind}{len(experiment.agents)} agents" if kind else " ".join(experiment.agents)
        lines.append(
            f"  {name:<18} {experiment.task:<30} {agents:<26} {experiment.steps:>9,} steps {experiment.seeds:>2} "
            f"seeds  {tuned}"
        )
    return lines


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = command_parser(__doc__, prog)
    parser.add_argument("what", nargs="?", choices=("tasks", "experiments"), help="list only these (default: both)")
    args = parser.parse_args(argv)
    if args.what in (None, "tasks"):
        print("Tasks: gym.make(ID) after import personalization_gym")
        print("\n".join(task_lines()))
    if args.what is None:
        print()
    if args.what in (None, "experiments"):
        print("Experiments: personalization-gym reproduce NAME (tune NAME to tune it)")
        print("\n".join(experiment_lines()))
    return 0
