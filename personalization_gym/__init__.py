"""personalization-gym: Gymnasium personalization tasks (one-step contextual bandits).

Importing the package registers every task in the ``Personalization`` namespace::

    import gymnasium as gym
    import personalization_gym

    env = gym.make("Personalization/Music-v0")

``gym.make("personalization_gym:Personalization/Music-v0")`` works without the import.
"""

from personalization_gym.core import BanditEnv, Batch
from personalization_gym.data import DATA_ENV_VAR, DataIntegrityError, DataNotFoundError
from personalization_gym.envs import (
    AdsEnv,
    BehaviorEnv,
    CIFAR10Env,
    CIFAR100Env,
    ClassificationEnv,
    DataOptions,
    DigitsEnv,
    FashionMNISTEnv,
    ImageClassificationEnv,
    MNISTEnv,
    MusicEnv,
    RatingsEnv,
    TabularEnv,
)
from personalization_gym.registration import OWN_DATA_TASK_IDS, TASK_IDS, data_kwargs

__version__ = "0.1.0"

__all__ = [
    "DATA_ENV_VAR",
    "OWN_DATA_TASK_IDS",
    "TASK_IDS",
    "AdsEnv",
    "BanditEnv",
    "Batch",
    "BehaviorEnv",
    "CIFAR10Env",
    "CIFAR100Env",
    "ClassificationEnv",
    "DataIntegrityError",
    "DataNotFoundError",
    "DataOptions",
    "DigitsEnv",
    "FashionMNISTEnv",
    "ImageClassificationEnv",
    "MNISTEnv",
    "MusicEnv",
    "RatingsEnv",
    "TabularEnv",
    "data_kwargs",
]
