"""Train stock SB3 agents on a personalization task with EntropyCallback attached.

    personalization-gym train Personalization/Music-v0 --algo a2c ppo dqn --timesteps 20000 --seeds 0 1 2 \\
        --net-arch 256,256 --lr 1e-3 --tensorboard-log runs --experiment music
    personalization-gym train Personalization/Behavior-v0 --algo ppo --hp n_epochs=4 --hp-file my_ppo.yml
    personalization-gym train Personalization/Music-v0 --algo a2c ppo --regularizer marginal --ent-coef 0.2
    personalization-gym train Personalization/Tabular-v0 --env-kwargs features=users.npy rewards=rewards.npy
    personalization-gym train my_package:MyTask-v0 --algo ppo dqn

Any registered task id works, ``my_package:MyTask-v0`` included (my_package is imported first and registers it);
--env-kwargs gives the task's arguments (values read as YAML: numbers, lists, true/false; anything else a string).

By default 32 contexts are collected per environment step (sb3_entropy.make_vec), which gives the same
updates as the paper's one-env setup, several times faster; --literal runs the reference setup itself.
Hyperparameters: the paper's batch settings (sb3_entropy.agents.AGENT_DEFAULTS), then --hp-file (YAML: either
key: value pairs for every algorithm, or a mapping algorithm -> key: value), then --hp key=value, then --lr.
--regularizer replaces A2C's and PPO's per-state entropy term with a diversity regularizer (sb3_entropy.policies;
per_state, marginal, l2, mutual_info) whose coefficient is --ent-coef (SB3's ent_coef).
Prints a final table: agent, seed and each run's final values (reward, score, marginal entropy, per-state entropy,
effective number of actions, and the exposure metrics: Gini of p(a), its long-tail share, distinct greedy items).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import personalization_gym
from personalization_gym.registration import check_task, make_task
from sb3_entropy.agents import AGENT_DEFAULTS, policy_for
from sb3_entropy.atomic import output_folder
from sb3_entropy.baselines import evaluation_baselines
from sb3_entropy.metrics import SUMMARY
from sb3_entropy.regularizers import REGULARIZERS
from sb3_entropy.study.analysis import baseline_values, tie_note
from sb3_entropy.study.cli.parsing import Distinct, command_parser, in_flags, parse_hp, parse_net_arch
from sb3_entropy.study.dashboard import write_mean_runs
from sb3_entropy.study.experiments import read_yaml
from sb3_entropy.study.runs import RunSpec, check_run, limit_threads, run_hparams, train
from sb3_entropy.tensorboard import run_folder


def hyperparameters_for(algo: str, args: argparse.Namespace) -> tuple[dict, list[str]]:
    """``algo``'s hyperparameters: --hp-file's, then the flags' over them (--hp, --lr, --ent-coef), and the lines
    that say which of the file's values a flag replaced. One setting given by two flags is an error naming both."""
    from_file = _file_hyperparameters(algo, args)
    flags = parse_hp(args.hp)
    for flag, key, value in (("--lr", "learning_rate", args.lr), ("--ent-coef", "ent_coef", args.ent_coef)):
        if value is not None:
            if key in flags:
                raise ValueError(f"{flag} {value:g} and --hp {key}={flags[key]!r} both set {key}: give one")
            flags[key] = value
    for where, hp in (("--hp", flags), (f"--hp-file {args.hp_file}", from_file)):
        inner = hp.get("policy_kwargs")
        if args.net_arch is not None and isinstance(inner, dict) and "net_arch" in inner:
            shown = inner["net_arch"]
            raise ValueError(f"--net-arch {args.net_arch} and {where} policy_kwargs.net_arch {shown!r} both set the "
                             "network: give one")  # fmt: skip
    replaced = [f"{algo}: {key} {flags[key]!r} from the flags replaces {from_file[key]!r} from --hp-file {args.hp_file}"
                for key in sorted(set(flags) & set(from_file))]  # fmt: skip
    return from_file | flags, replaced


def _file_hyperparameters(algo: str, args: argparse.Namespace) -> dict:
    """--hp-file's hyperparameters for ``algo`` (the file's mapping for every algorithm, or its entry for ``algo``)."""
    hp: dict = {}
    if args.hp_file:
        path = Path(args.hp_file)
        if not path.is_file():
            raise ValueError(f"--hp-file {path}: file not found")
        data = read_yaml(path, f"--hp-file {path}") or {}
        if not isinstance(data, dict):
            raise ValueError(f"{args.hp_file}: expected a mapping of hyperparameters, got {type(data).__name__}")
        per_algorithm = set(data) <= set(AGENT_DEFAULTS)
        hp |= (data.get(algo) or {}) if per_algorithm else data
    return hp


def _parser(prog: str | None) -> argparse.ArgumentParser:
    """train's command line."""
    parser = command_parser(__doc__, prog)
    parser.add_argument(
        "env_id", help=f"a registered task: one of {', '.join(personalization_gym.TASK_IDS)}, or my_package:MyTask-v0"
    )
    parser.add_argument(
        "--env-kwargs", nargs="+", action=Distinct, default=[], metavar="KEY=VALUE",
        help="the task's arguments, e.g. features=users.npy rewards=rewards.npy noise=bernoulli",
    )  # fmt: skip
    parser.add_argument("--algo", nargs="+", action=Distinct, default=["ppo"], choices=sorted(AGENT_DEFAULTS))
    parser.add_argument("--timesteps", type=int, default=20_000)
    parser.add_argument("--seeds", type=int, nargs="+", action=Distinct, default=[0])
    parser.add_argument("--net-arch", default=None, help="hidden layer sizes, e.g. 256,256 (default 64,64)")
    parser.add_argument("--lr", type=float, default=None, help="learning rate (default: the algorithm's)")
    parser.add_argument("--hp", action="append", default=[], metavar="KEY=VALUE", help="a hyperparameter (repeatable)")
    parser.add_argument("--hp-file", default=None, help="YAML file of hyperparameters")
    parser.add_argument(
        "--regularizer", default=None, choices=list(REGULARIZERS),
        help="a2c / ppo: the entropy term becomes this diversity regularizer (default: SB3's own per-state term)",
    )  # fmt: skip
    parser.add_argument("--ent-coef", type=float, default=None, help="the entropy term's coefficient (SB3's ent_coef)")
    parser.add_argument(
        "--per-state-weight", type=float, default=0.0, help="with --regularizer: weight of a per-state term mixed in"
    )
    parser.add_argument(
        "--tensorboard-log", default=None, metavar="ROOT",
        help="TensorBoard root: runs in ROOT/EXPERIMENT/AGENT/seedN, means over seeds in ROOT/EXPERIMENT/mean/AGENT",
    )  # fmt: skip
    parser.add_argument(
        "--experiment", default=None,
        help="the experiment's name in TensorBoard (default: the task's, such as Music-v0); a rerun replaces its runs",
    )  # fmt: skip
    parser.add_argument("--eval-freq", type=int, default=2000, help="evaluate every this many steps (default 2000)")
    parser.add_argument("--temperature", type=float, default=0.1, help="DQN policy: softmax(Q / temperature)")
    parser.add_argument("--n-eval", type=int, default=None, help="evaluation-set size of the task")
    parser.add_argument("--data-dir", default=None, help="data root for tasks that need data")
    parser.add_argument("--literal", action="store_true", help="the reference setup: one env, one context per step")
    parser.add_argument("--no-download", action="store_true", help="never download data")
    parser.add_argument("--save-dir", default=None, help="save each model as SAVE_DIR/<algo>_seed<seed>.zip")
    parser.add_argument("--progress", action="store_true", help="SB3's progress bar (needs tqdm and rich)")
    return parser


def _check_numbers(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Counts, seeds and rates out of range are refused, naming the flag."""
    for flag, values, minimum in (
        ("--timesteps", [args.timesteps], 1), ("--seeds", args.seeds, 0), ("--eval-freq", [args.eval_freq], 1),
        ("--n-eval", [] if args.n_eval is None else [args.n_eval], 1),
    ):  # fmt: skip
        bad = [value for value in values if value < minimum]
        if bad:
            parser.error(
                f"{flag} must be {'integers' if flag == '--seeds' else 'an integer'} >= {minimum}, got {bad[0]}"
            )
    for flag, value in (("--temperature", args.temperature), ("--lr", args.lr)):
        if value is not None and not (math.isfinite(value) and value > 0):
            parser.error(f"{flag} must be a finite number > 0, got {value}")


def _task_kwargs(args: argparse.Namespace) -> dict:
    """The task's arguments: its data location, --env-kwargs, --n-eval; a flag and --env-kwargs setting one
    argument is an error naming both."""
    env_kwargs = personalization_gym.data_kwargs(args.env_id, args.data_dir, False if args.no_download else None)
    given = parse_hp(args.env_kwargs, "--env-kwargs")
    for flag, key, value in (
        ("--n-eval", "n_eval", args.n_eval), ("--data-dir", "data_dir", args.data_dir),
        ("--no-download", "download", True if args.no_download else None),
    ):  # fmt: skip
        if value is not None and key in given:
            shown = flag if isinstance(value, bool) else f"{flag} {value}"
            raise ValueError(f"{shown} and --env-kwargs {key}={given[key]!r} both set {key}: give one")
    env_kwargs |= given
    if args.n_eval is not None:
        env_kwargs["n_eval"] = args.n_eval
    return env_kwargs


def _plan(args: argparse.Namespace) -> tuple[str, list[RunSpec], dict[str, float], int]:
    """The experiment name, every run's spec, and the random policy's and the oracles' scores on the task's
    evaluation set (its baselines) and its number of actions, with the task built and each model made once: bad
    settings or data raise here, before anything trains."""
    check_task(args.env_id)
    experiment = args.experiment or args.env_id.split(":")[-1].split("/")[-1]
    run_folder(".", experiment, "agent", 0)  # a name TensorBoard folders can take
    # no --net-arch: the network of policy_kwargs.net_arch in --hp or --hp-file, else the default
    net_arch = None if args.net_arch is None else parse_net_arch(args.net_arch)
    hyperparameters = {}
    for algo in args.algo:
        hyperparameters[algo], replaced = hyperparameters_for(algo, args)
        for line in replaced:
            print(line, flush=True)
    if args.per_state_weight and args.regularizer is None:
        raise ValueError("--per-state-weight mixes a per-state term into --regularizer: give one")
    for algo in args.algo:
        policy_for(algo, args.regularizer, args.per_state_weight)
    env_kwargs = _task_kwargs(args)
    for flag, folder in (("--save-dir", args.save_dir), ("--tensorboard-log", args.tensorboard_log)):
        if folder is not None:  # made once every setting is checked, before training
            output_folder(flag, folder)
    # Build the task once before anything trains: bad data or arguments fail here, with the task's message.
    task = make_task(args.env_id, **env_kwargs)
    if hasattr(task, "fit_report"):
        print(f"{args.env_id}: {task.read_report}; {task.fit_report}", flush=True)
    specs = [
        RunSpec(
            env_id=args.env_id,
            algo=algo,
            seed=seed,
            timesteps=args.timesteps,
            net_arch=net_arch,
            hyperparameters=hyperparameters[algo],
            env_kwargs=env_kwargs,
            eval_freq=args.eval_freq,
            temperature=args.temperature,
            tensorboard_log=args.tensorboard_log,
            experiment=experiment,
            agent=algo if args.regularizer is None else f"{algo}_{args.regularizer}",
            progress=args.progress,
            batched=not args.literal,
            regularizer=args.regularizer,
            per_state_weight=args.per_state_weight,
        )
        for algo in args.algo
        for seed in args.seeds
    ]
    for spec in {spec.algo: spec for spec in specs}.values():  # each model built once: bad settings fail here
        trained = check_run(spec, task)
        if trained != spec.timesteps:
            print(f"{spec.algo} trains {trained:,} steps: --timesteps {spec.timesteps:,} rounded up to SB3's whole "
                  "rollouts (or rounds of train_freq)", flush=True)  # fmt: skip
    baselines = evaluation_baselines(chunk.expected for chunk in task.eval_chunks())
    task.close()
    return experiment, specs, baselines, task.n_actions


def _print_table(args: argparse.Namespace, finals: list[tuple[RunSpec, dict]], baselines: dict[str, float],
                 n_actions: int) -> None:  # fmt: skip
    """The final table: every run's final values (the metrics table's SUMMARY), then the random policy's and the
    oracle's."""
    trained = sorted({row["timesteps"] for _, row in finals})
    steps = f"{trained[0]:,} steps" if len(trained) == 1 else f"{trained[0]:,}-{trained[-1]:,} steps by agent"
    print(f"\n{args.env_id}, {steps}; score = (reward - random) / (oracle - random)")
    widths = [max(len(metric.column), 7) for metric in SUMMARY]
    print(f"{'agent':<13} {'seed':>4} " + " ".join(f"{m.column:>{w}}" for m, w in zip(SUMMARY, widths, strict=True)))

    def cells(values: dict[str, float]) -> str:
        return " ".join(f"{m.format(values[m.tag]) if m.tag in values else '-':>{w}}"
                        for m, w in zip(SUMMARY, widths, strict=True))  # fmt: skip

    for spec, row in finals:
        print(f"{spec.algo:<13} {spec.seed:>4} " + cells({m.tag: m.value(row, baselines) for m in SUMMARY}))
    for name, values in baseline_values(baselines, n_actions, exact_q=False).items():
        print(f"{name:<13} {'-':>4} " + cells(values))
    if tie_note(baselines):
        print(tie_note(baselines))


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = _parser(prog)
    args = parser.parse_args(argv)
    _check_numbers(parser, args)
    try:
        experiment, specs, baselines, n_actions = _plan(args)
    except (ValueError, TypeError, OSError) as error:
        parser.error(in_flags(error))

    limit_threads()
    finals = []  # each run's spec and its last evaluation
    histories: dict[tuple[str, int], list[dict]] = {}
    hparams: dict[str, dict] = {}  # each agent's settings, for its mean run's HParams row
    for spec in specs:
        model_path = Path(args.save_dir) / f"{spec.algo}_seed{spec.seed}" if args.save_dir else None
        try:
            model, callback = train(spec, model_path)
        except (ValueError, personalization_gym.DataNotFoundError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        finals.append((spec, callback.history[-1]))
        histories[spec.agent, spec.seed] = callback.history
        hparams[spec.agent] = run_hparams(spec, model)
        print(f"{spec.algo} seed {spec.seed} done", flush=True)

    if args.tensorboard_log is not None:
        write_mean_runs(Path(args.tensorboard_log), experiment, histories, baselines, hparams)
        print(f"TensorBoard: tensorboard --logdir {args.tensorboard_log} (runs {experiment}/AGENT/seedN, means "
              f"{experiment}/mean/AGENT)")  # fmt: skip

    _print_table(args, finals, baselines, n_actions)
    return 0
