"""The personalization tasks, one module each."""

from personalization_gym.envs.behavior import BehaviorEnv
from personalization_gym.envs.music import MusicEnv

__all__ = ["BehaviorEnv", "MusicEnv"]
