"""sb3_entropy: policy-entropy and action-distribution monitoring for Stable-Baselines3 models.

Attach :class:`EntropyCallback` to any SB3 model with a discrete action space and watch, live in TensorBoard,
how diverse its recommendations are::

    from stable_baselines3 import PPO
    from sb3_entropy import EntropyCallback

    model = PPO("MlpPolicy", env, tensorboard_log="runs")
    model.learn(20_000, callback=EntropyCallback())  # the evaluation set of env, a personalization_gym task

The paper's collapse shows in its setup, 32 users per update (with SB3's defaults PPO makes ten updates in
20,000 steps and hardly moves); ``paper_agent`` builds any of the five agents that way::

    from sb3_entropy import paper_agent

    model = paper_agent("ppo", "Personalization/Music-v0", net_arch=[256, 256], learning_rate=1e-3)
    model.learn(20_000, callback=EntropyCallback())

and treat a collapse with a diversity regulariser in place of SB3's per-state entropy term::

    from sb3_entropy import MarginalEntropyPolicy

    model = PPO(MarginalEntropyPolicy, env, ent_coef=0.3)  # ent_coef now weighs H(p), the entropy across users
"""

from sb3_entropy.agents import paper_agent
from sb3_entropy.callback import CUSTOM_SCALARS_LAYOUT, EntropyCallback
from sb3_entropy.metrics import aggregate_diversity, all_metrics, entropy, gini, long_tail_share, marginal
from sb3_entropy.policies import MarginalEntropyCnnPolicy, MarginalEntropyMultiInputPolicy, MarginalEntropyPolicy
from sb3_entropy.probs import action_probs, q_values
from sb3_entropy.regularizers import REGULARIZERS
from sb3_entropy.vec_env import BanditVecEnv, make_vec

__all__ = [
    "CUSTOM_SCALARS_LAYOUT",
    "REGULARIZERS",
    "BanditVecEnv",
    "EntropyCallback",
    "MarginalEntropyCnnPolicy",
    "MarginalEntropyMultiInputPolicy",
    "MarginalEntropyPolicy",
    "action_probs",
    "aggregate_diversity",
    "all_metrics",
    "entropy",
    "gini",
    "long_tail_share",
    "make_vec",
    "marginal",
    "paper_agent",
    "q_values",
]
