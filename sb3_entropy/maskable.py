"""Diversity-regularised policies for sb3-contrib's MaskablePPO (needs ``pip install sb3-contrib``).

::

    from sb3_contrib import MaskablePPO
    from sb3_entropy.maskable import MaskableMarginalEntropyPolicy

    model = MaskablePPO(MaskableMarginalEntropyPolicy, env, ent_coef=0.2)

Masked actions have probability exactly 0 in every state of the batch: they add nothing to the marginal's
entropy and get no gradient (``"l2"`` still measures the distance to uniform over all K actions).
"""

from __future__ import annotations

try:
    from sb3_contrib.common.maskable.policies import (
        MaskableActorCriticCnnPolicy,
        MaskableActorCriticPolicy,
        MaskableMultiInputActorCriticPolicy,
    )
except ImportError as error:  # sb3-contrib is optional: only these policies need it
    raise ImportError("sb3_entropy.maskable needs sb3-contrib: pip install sb3-contrib") from error

from sb3_entropy.policies import MarginalEntropyMixin

__all__ = [
    "MaskableMarginalEntropyCnnPolicy",
    "MaskableMarginalEntropyMultiInputPolicy",
    "MaskableMarginalEntropyPolicy",
]


class MaskableMarginalEntropyPolicy(MarginalEntropyMixin, MaskableActorCriticPolicy):
    """MaskablePPO's ``MlpPolicy`` with a diversity regulariser as its entropy term."""


class MaskableMarginalEntropyCnnPolicy(MarginalEntropyMixin, MaskableActorCriticCnnPolicy):
    """MaskablePPO's ``CnnPolicy`` with a diversity regulariser as its entropy term."""


class MaskableMarginalEntropyMultiInputPolicy(MarginalEntropyMixin, MaskableMultiInputActorCriticPolicy):
    """MaskablePPO's ``MultiInputPolicy`` with a diversity regulariser as its entropy term."""
