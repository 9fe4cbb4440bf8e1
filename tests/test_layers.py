"""The layers of the code: the tasks (personalization_gym) import nothing of sb3_entropy, the plugin (sb3_entropy)
nothing of the study (sb3_entropy.study), no modules import each other in a cycle; and the tasks and the callback
work without the study extra (scipy, sb3-contrib, Optuna, scikit-learn, tqdm, Ray absent)."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

from conftest import PROJECT_ROOT

PACKAGES = ("personalization_gym", "sb3_entropy")
STUDY_EXTRA = ("scipy", "sb3_contrib", "optuna", "sklearn", "tqdm", "ray")


def module_files(root: Path) -> dict[str, Path]:
    """Every module of the two packages under ``root``, by dotted name (a package by its own name)."""
    found = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports_of(path: Path, modules: dict[str, Path], packages: tuple[str, ...] = PACKAGES) -> list[tuple[str, int]]:
    """``(module imported, line)`` for every import of the project's modules anywhere in a file, function bodies
    included. ``from package import name`` counts as an import of ``package.name`` when that is a module."""
    found: list[tuple[str, int]] = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                found.extend((alias.name, child.lineno) for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                for alias in child.names:
                    submodule = f"{child.module}.{alias.name}"
                    found.append((submodule if submodule in modules else child.module, child.lineno))
            visit(child)

    tree = ast.parse(path.read_text(), str(path))
    visit(tree)
    return [(name, line) for name, line in found if name.split(".")[0] in packages]


def layer(module: str) -> int:
    """0: the tasks; 1: the plugin; 2: the study, its command-line tool and ``python -m sb3_entropy``."""
    if module.split(".")[0] == "personalization_gym":
        return 0
    if module == "sb3_entropy.study" or module.startswith("sb3_entropy.study.") or module == "sb3_entropy.__main__":
        return 2
    return 1


def upward_imports(root: Path) -> list[str]:
    modules = module_files(root)
    return [
        f"{module} imports {target} (line {line})"
        for module, path in modules.items()
        for target, line in imports_of(path, modules)
        if layer(target) > layer(module)
    ]


def import_cycles(root: Path) -> list[list[str]]:
    """The groups of modules that import each other, directly or through others (Tarjan's strongly connected
    components of the import graph with more than one module)."""
    modules = module_files(root)
    graph = {m: sorted({t for t, _ in imports_of(p, modules) if t in modules and t != m}) for m, p in modules.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def connect(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for target in graph[module]:
            if target not in index:
                connect(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            group = []
            while not group or group[-1] != module:
                group.append(stack.pop())
            if len(group) > 1:
                cycles.append(sorted(group))

    for module in graph:
        if module not in index:
            connect(module)
    return cycles


def test_no_module_imports_a_higher_layer() -> None:
    assert upward_imports(PROJECT_ROOT) == []


def test_the_tasks_import_no_stable_baselines3() -> None:
    """A task user who never touches SB3 does not need it: SB3's VecEnv of the tasks is the plugin's."""
    modules = module_files(PROJECT_ROOT)
    found = [
        f"{module} imports {target} (line {line})"
        for module, path in modules.items()
        if module.split(".")[0] == "personalization_gym"
        for target, line in imports_of(path, modules, ("stable_baselines3", "sb3_contrib"))
    ]
    assert found == []


def test_no_modules_import_each_other_in_a_cycle() -> None:
    assert import_cycles(PROJECT_ROOT) == []


def test_the_checks_find_what_they_look_for(tmp_path: Path) -> None:
    files = {
        "personalization_gym/__init__.py": "",
        "personalization_gym/core.py": "def f():\n    from sb3_entropy import metrics\n",  # lazily, still upward
        "sb3_entropy/__init__.py": "from sb3_entropy.metrics import entropy\n",
        "sb3_entropy/metrics.py": "import numpy\nfrom sb3_entropy import probs\n",
        "sb3_entropy/probs.py": "from sb3_entropy.metrics import entropy\n",  # metrics <-> probs
        "sb3_entropy/old.py": "def __getattr__(name):\n    from sb3_entropy.study import runner\n",  # lazily, still upward
        "sb3_entropy/callback.py": "import sb3_entropy.study.runner\n",
        "sb3_entropy/study/__init__.py": "",
        "sb3_entropy/study/runner.py": "from sb3_entropy import callback\nfrom personalization_gym import core\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert upward_imports(tmp_path) == [
        "personalization_gym.core imports sb3_entropy.metrics (line 2)",
        "sb3_entropy.callback imports sb3_entropy.study.runner (line 1)",
        "sb3_entropy.old imports sb3_entropy.study.runner (line 2)",
    ]
    assert sorted(import_cycles(tmp_path)) == [
        ["sb3_entropy.callback", "sb3_entropy.study.runner"],
        ["sb3_entropy.metrics", "sb3_entropy.probs"],
    ]


def test_the_tasks_and_the_callback_work_without_the_study_extra(tmp_path: Path) -> None:
    """As after ``pip install personalization-gym`` with no extra: the study's packages are absent (None in
    sys.modules is how Python marks a module that cannot be imported)."""
    blocked = f"import sys\nfor name in {STUDY_EXTRA!r}:\n    sys.modules[name] = None\n"
    script = blocked + textwrap.dedent(
        f"""
        import gymnasium as gym
        import personalization_gym
        from sb3_entropy import EntropyCallback, paper_agent
        from sb3_entropy.tensorboard import HParamsCallback

        model = paper_agent("ppo", "Personalization/Music-v0", net_arch=[16], learning_rate=1e-3,
                            tensorboard_log={str(tmp_path / "runs")!r})
        callback = EntropyCallback(eval_freq=64, n_eval=500)
        model.learn(128, callback=[callback, HParamsCallback({{"algo": "ppo"}})])
        print("evaluations", [row["timesteps"] for row in callback.history])
        gym.make("Personalization/Behavior-v0").reset(seed=0)
        for attempt in (lambda: gym.make("Personalization/Digits-v0"), lambda: paper_agent("trpo"),
                        lambda: __import__("sb3_entropy.study")):
            try:
                attempt()
            except ImportError as error:
                print("refused:", error)
        loaded = sorted(name for name in sys.modules if name.split(".")[0] in {STUDY_EXTRA!r} and sys.modules[name])
        print("loaded", loaded)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "evaluations [0, 64, 128]"
    assert lines[1:4] == [
        "refused: Personalization/Digits-v0 reads scikit-learn's bundled digits: pip install "
        '"personalization-gym[study]" (or scikit-learn)',
        'refused: trpo is sb3-contrib\'s: pip install sb3-contrib (or "personalization-gym[study]")',
        "refused: sb3_entropy.study (studies, tuning, reports, the personalization-gym command) needs the study extra: "
        'pip install "personalization-gym[study]" (missing: scipy, sb3-contrib, optuna, scikit-learn, tqdm)',
    ]
    assert lines[4] == "loaded []"
    assert any((tmp_path / "runs").rglob("events.out.tfevents.*"))

    tool = subprocess.run(
        [sys.executable, "-c", blocked + "import runpy; runpy.run_module('sb3_entropy', run_name='__main__')", "list"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert tool.returncode == 1
    assert tool.stderr.strip() == (
        "personalization-gym: sb3_entropy.study (studies, tuning, reports, the personalization-gym command) needs the "
        'study extra: pip install "personalization-gym[study]" (missing: scipy, sb3-contrib, optuna, scikit-learn, tqdm)'
    )


def test_the_layout_tree_in_the_docs_names_every_module() -> None:
    text = (PROJECT_ROOT / "docs" / "development.md").read_text()
    tree = text.split("```\npersonalization_gym/")[1].split("```")[0]
    listed, folder = set(), "personalization_gym/"
    for line in ("personalization_gym/" + tree).splitlines():
        name = line.split()[0] if line.strip() else ""
        if name.endswith("/") and not line.startswith(" "):
            folder = name
        elif name.endswith(".py"):
            listed.add(folder + name)
    modules = {str(path.relative_to(PROJECT_ROOT)) for path in module_files(PROJECT_ROOT).values()}
    assert listed == modules, f"missing: {sorted(modules - listed)}; gone: {sorted(listed - modules)}"
