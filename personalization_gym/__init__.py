"""personalization-gym: Gymnasium personalization tasks (one-step contextual bandits).

Importing the package registers every task in the ``Personalization`` namespace::

    import gymnasium as gym
    import personalization_gym

    env = gym.make("Personalization/Music-v0")

``gym.make("personalization_gym:Personalization/Music-v0")`` works without the import.
"""

from gymnasium.envs.registration import register, registry

from personalization_gym.core import BanditEnv, Batch
from personalization_gym.data import DATA_ENV_VAR, DataIntegrityError, DataNotFoundError
from personalization_gym.envs import BehaviorEnv, MusicEnv

__version__ = "0.1.0"

__all__ = [
    "DATA_ENV_VAR",
    "TASK_IDS",
    "BanditEnv",
    "Batch",
    "BehaviorEnv",
    "DataIntegrityError",
    "DataNotFoundError",
    "MusicEnv",
]

# id -> entry point; every id is a one-step task, so no TimeLimit is needed.
_TASKS = {
    "Personalization/Music-v0": "personalization_gym.envs.music:MusicEnv",
    "Personalization/Behavior-v0": "personalization_gym.envs.behavior:BehaviorEnv",
}
TASK_IDS = tuple(_TASKS)

for _env_id, _entry_point in _TASKS.items():
    if _env_id not in registry:  # importlib.reload must not warn about re-registration
        register(id=_env_id, entry_point=_entry_point)
