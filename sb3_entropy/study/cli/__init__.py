"""personalization-gym: the command-line tool that ships with the package (also ``python -m sb3_entropy``).

Each command is a module with ``main(argv, prog) -> exit status``; this one picks the command from the first
argument, as git and rl_zoo3 do, and imports only that command's module.
"""

from __future__ import annotations

import importlib
import sys

from sb3_entropy.study.cli.parsing import TOOL

__all__ = ["COMMANDS", "main"]

# command -> (module, what it does)
COMMANDS = {
    "reproduce": ("reproduce", "run a study: every agent of an experiment on several seeds, its report and figures"),
    "report": ("reproduce", "write a study's report and figures again from its stored runs (trains nothing)"),
    "tune": ("tune", "tune an experiment's agents for reward alone (Optuna), to judge them on fresh seeds"),
    "train": ("train", "train single SB3 agents on a task with the entropy callback attached"),
    "evaluate": ("evaluate", "the diversity report card of saved SB3 models (zips, rl-zoo3 run folders) on a task"),
    "list": ("catalog", "list the tasks and the experiments that ship with the package"),
}

USAGE = f"""usage: {TOOL} COMMAND [ARGS]   (or python -m sb3_entropy COMMAND [ARGS])

Gymnasium personalization tasks and the policy-entropy study of arXiv 2211.11869.

commands:
{chr(10).join(f"  {name:<10} {words}" for name, (_, words) in COMMANDS.items())}

examples:
  {TOOL} reproduce music --agents a2c ppo dqn   # the paper's finding, its three agents (132 CPU s)
  {TOOL} reproduce music                        # with TRPO and QR-DQN too
  {TOOL} list                                   # the tasks and experiments that ship
  {TOOL} train Personalization/Music-v0 --algo ppo dqn --timesteps 20000 --tensorboard-log runs
  {TOOL} evaluate logs/ppo/Personalization-Music-v0_1 dqn.zip --task Personalization/Music-v0
  {TOOL} COMMAND --help                         # a command's arguments and examples
"""


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    if argv[0] == "--version":
        from importlib.metadata import version

        print(f"{TOOL} {version('personalization-gym')}")
        return 0
    command, *rest = argv
    if command not in COMMANDS:
        print(f"{USAGE}\n{TOOL}: error: unknown command {command!r}; valid: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"sb3_entropy.study.cli.{COMMANDS[command][0]}")
    prog = f"{TOOL} {command}"
    if command == "report":
        return module.main(rest, prog, rerender=True)
    return module.main(rest, prog)
