"""The personalization tasks, one module each."""

from personalization_gym.envs.ads import AdsEnv
from personalization_gym.envs.behavior import BehaviorEnv
from personalization_gym.envs.images import CIFAR10Env, CIFAR100Env, FashionMNISTEnv, ImageClassificationEnv, MNISTEnv
from personalization_gym.envs.music import MusicEnv

__all__ = [
    "AdsEnv",
    "BehaviorEnv",
    "CIFAR10Env",
    "CIFAR100Env",
    "FashionMNISTEnv",
    "ImageClassificationEnv",
    "MNISTEnv",
    "MusicEnv",
]
