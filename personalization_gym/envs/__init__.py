"""The personalization tasks, one module each."""

from personalization_gym.envs.ads import AdsEnv
from personalization_gym.envs.behavior import BehaviorEnv
from personalization_gym.envs.images import CIFAR10Env, CIFAR100Env, FashionMNISTEnv, ImageClassificationEnv, MNISTEnv
from personalization_gym.envs.music import MusicEnv
from personalization_gym.envs.ratings import RatingsEnv
from personalization_gym.envs.tabular import ClassificationEnv, DataOptions, DigitsEnv, TabularEnv

__all__ = [
    "AdsEnv",
    "BehaviorEnv",
    "CIFAR10Env",
    "CIFAR100Env",
    "ClassificationEnv",
    "DataOptions",
    "DigitsEnv",
    "FashionMNISTEnv",
    "ImageClassificationEnv",
    "MNISTEnv",
    "MusicEnv",
    "RatingsEnv",
    "TabularEnv",
]
