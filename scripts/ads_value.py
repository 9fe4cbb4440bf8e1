"""The value of personalization on Ads-v0: what a personalized ad server can win over showing everyone one product.

    python scripts/ads_value.py
    python scripts/ads_value.py --sigma-mu 3 1 0 --task-seeds 5

For each popularity spread sigma_mu (RecoGym's default: 3), on each task instance's evaluation set:
- personalized: the mean over users of their best CTR (the oracle a personalized agent can approach);
- one product: the CTR of the single product that is best on average, shown to everyone;
- random: the mean CTR of a uniformly random product.
The figures are means over task instances (task_seed 0, 1, ...).
"""

from __future__ import annotations

import argparse

import numpy as np

from personalization_gym import AdsEnv
from sb3_entropy.study.cli.parsing import Distinct


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sigma-mu", type=float, nargs="+", action=Distinct, default=[3.0, 2.0, 1.0, 0.5, 0.0])
    parser.add_argument("--task-seeds", type=int, default=3, help="task instances to average over (default 3)")
    parser.add_argument("--n-eval", type=int, default=10_000)
    args = parser.parse_args()

    print(f"Ads-v0, {args.n_eval} users per evaluation set, mean over {args.task_seeds} task instances")
    print(f"{'sigma_mu':>8} {'personalized':>13} {'one product':>12} {'random':>8} {'gain':>7}")
    for sigma_mu in args.sigma_mu:
        figures = []
        for task_seed in range(args.task_seeds):
            ctr = AdsEnv(sigma_mu=sigma_mu, n_eval=args.n_eval, task_seed=task_seed).eval_set().expected
            figures.append((ctr.max(axis=1).mean(), ctr.mean(axis=0).max(), ctr.mean()))
        personalized, one_product, random = np.mean(figures, axis=0)
        gain = personalized / one_product - 1.0
        print(f"{sigma_mu:>8.2f} {personalized:>12.3%} {one_product:>12.3%} {random:>8.3%} {gain:>+7.1%}")


if __name__ == "__main__":
    main()
