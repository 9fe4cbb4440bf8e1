"""Ads-v0: online advertising on RecoGym's user model (v1), re-implemented and vectorized in numpy."""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

from personalization_gym.checks import check_bool, check_choice, check_integer, check_number
from personalization_gym.core import BanditEnv, Batch

__all__ = ["REWARD_MODES", "AdsEnv", "click_probability"]

REWARD_MODES = ("click", "ctr")


def _sigmoid_inplace(z: np.ndarray) -> np.ndarray:
    """``z <- 1 / (1 + exp(-z))`` without temporaries (large arrays: allocation costs as much as the maths)."""
    np.negative(z, out=z)
    np.exp(z, out=z)
    z += 1.0
    return np.reciprocal(z, out=z)


def click_probability(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """RecoGym's squashing of a user-product affinity into a click-through rate, between 0.45 % and 2.9 %:
    ``f(x) = sigmoid(5 sigmoid(2 sigmoid(0.3 x) - 2) - 6)``. ``out=x`` computes it in place."""
    z = np.multiply(x, 0.3, out=out, dtype=np.float64)
    _sigmoid_inplace(z)
    z *= 2.0
    z -= 2.0
    _sigmoid_inplace(z)
    z *= 5.0
    z -= 6.0
    return _sigmoid_inplace(z)


def _flipped_rows(gamma: np.ndarray, n_flips: int) -> np.ndarray:
    """RecoGym's ``generate_beta``: swap the rows of the most correlated product pairs, each product once."""
    n_products = len(gamma)
    index = np.arange(n_products)
    if n_flips == 0:
        return index
    covariance = gamma @ gamma.T
    np.fill_diagonal(covariance, -np.inf)
    used = np.zeros(n_products, dtype=bool)
    flips = 0
    for flat in np.argsort(covariance, axis=None, kind="stable")[::-1]:
        i, j = divmod(int(flat), n_products)
        if i == j or used[i] or used[j]:
            continue
        index[i], index[j] = j, i
        used[i] = used[j] = True
        flips += 1
        if flips == n_flips:
            break
    return index


class AdsEnv(BanditEnv):
    """Online advertising: which product to advertise to a user, given their browsing session.

    ## Description

    The paper's online-advertising experiment (arXiv 2211.11869) used RecoGym (Criteo's recommendation
    simulator) with 50 products. This task re-implements RecoGym's generative model (v1) in numpy, with the
    context an ad server really sees: the user's organic browsing before the ad slot. (The paper's adapter
    fed agents Gaussian noise as the state, so its context carried no information about the user.)

    A task instance draws product embeddings ``Gamma ~ N(0, 1)^(P x K)`` and popularities
    ``mu ~ N(0, sigma_mu^2)^P``; the ad response uses ``beta = Gamma`` and ``mu_b = mu``, except that
    ``n_flips`` swaps the response rows of the most correlated product pairs, as RecoGym does. A user has a
    latent taste ``omega ~ N(0, sigma_omega_initial^2 I_K)``. Their organic session has at least one view;
    after each view it goes on with probability ``stay_organic`` (RecoGym: 1 - 0.25 - 0.01 = 0.74), otherwise
    the user reaches the ad slot. Each view is a product drawn from ``softmax(Gamma omega + mu)``, and between
    two views ``omega`` drifts by ``N(0, sigma_omega^2 I)`` (as in RecoGym, it drifts only while the session
    stays organic). At the ad slot, the click-through rate of product ``a`` is
    ``ctr[a] = f(beta omega + mu_b)[a]`` with RecoGym's squashing
    ``f(x) = sigmoid(5 sigmoid(2 sigmoid(0.3 x) - 2) - 6)``, between 0.45 % and 2.9 %.

    ## Action Space

    ``Discrete(n_products)``: the product to advertise.

    ## Observation Space

    ``Box(0, 1, (n_products + 1,), float32)``: the session's product-view counts divided by its length
    (frequencies summing to 1), then ``1 / session length``. With the length the counts themselves can be
    recovered, so the observation holds everything the session says about the user (up to the order of
    views); without it a one-view session and a long one would look alike. ``omega`` stays hidden
    (``Batch.hidden["omega"]``, with ``"omega_start"`` and ``"session_length"``).

    ## Rewards

    ``reward_mode="click"`` (default): 1 for a click, else 0, a Bernoulli draw with the CTR, what an ad server
    observes. ``reward_mode="ctr"``: the CTR itself, noise-free. Either way the expected reward (``expected``,
    ``info["expected_reward"]``) is the CTR, so evaluation is exact. With ``normalize=True`` every context's
    rewards go through the affine map ``r -> (r - mean_a ctr) / (max_a ctr - mean_a ctr)``, so that the mean
    over actions is 0 and the best action is 1, like the other tasks; with clicks, a click then scores
    ``(1 - mean) / (max - mean)`` (large, as CTRs are small) and no click ``-mean / (max - mean)``, and the
    expected reward is the normalized CTR.

    ## Starting State

    Each reset draws a new user and their session.

    ## Episode End

    Every episode ends after one step (``terminated=True``). ``info`` holds ``expected_reward``,
    ``optimal_reward`` and ``regret``.

    ## Arguments

    ```python
    import gymnasium as gym
    import personalization_gym

    env = gym.make("Personalization/Ads-v0", n_products=50, reward_mode="click", normalize=False)
    ```

    * ``n_products`` (50, the paper's), ``latent_dim`` (K = 5): sizes.
    * ``sigma_mu`` (3.0), ``sigma_omega_initial`` (1.0), ``sigma_omega`` (0.1), ``stay_organic`` (0.74),
      ``n_flips`` (0): RecoGym's model constants. With ``sigma_mu = 3`` popularity dominates and
      personalization gains a few percent of CTR; a smaller ``sigma_mu`` makes it matter more.
    * ``reward_mode`` (``"click"`` or ``"ctr"``), ``normalize`` (False).
    * ``n_eval`` (10,000), ``task_seed`` (0): ``task_rng`` draws ``Gamma`` and then ``mu``.

    ## Version History

    * v0: Initial version.
    """

    def __init__(
        self,
        n_products: int = 50,
        latent_dim: int = 5,
        sigma_mu: float = 3.0,
        sigma_omega_initial: float = 1.0,
        sigma_omega: float = 0.1,
        stay_organic: float = 0.74,
        n_flips: int = 0,
        reward_mode: str = "click",
        normalize: bool = False,
        n_eval: int = 10_000,
        task_seed: int = 0,
        render_mode: str | None = None,
    ) -> None:
        super().__init__(n_eval=n_eval, task_seed=task_seed, render_mode=render_mode)
        self.n_products = check_integer("n_products", n_products, minimum=2)
        self.latent_dim = check_integer("latent_dim", latent_dim, minimum=1)
        self.sigma_mu = check_number("sigma_mu", sigma_mu, at_least=0)
        self.sigma_omega_initial = check_number("sigma_omega_initial", sigma_omega_initial, at_least=0)
        self.sigma_omega = check_number("sigma_omega", sigma_omega, at_least=0)
        self.stay_organic = check_number("stay_organic", stay_organic, at_least=0, below=1)
        self.n_flips = check_integer("n_flips", n_flips, minimum=0)
        if self.n_flips > self.n_products // 2:
            raise ValueError(f"n_flips must be at most n_products // 2 = {self.n_products // 2}, got {n_flips}")
        check_choice("reward_mode", reward_mode, REWARD_MODES)
        self.reward_mode = reward_mode
        check_bool("normalize", normalize)
        self.normalize = normalize

        self.gamma = self.task_rng.normal(0.0, 1.0, size=(self.n_products, self.latent_dim))
        self.mu = self.task_rng.normal(0.0, self.sigma_mu, size=self.n_products)
        flipped = _flipped_rows(self.gamma, self.n_flips)
        self.beta, self.mu_b = self.gamma[flipped], self.mu[flipped]
        for array in (self.gamma, self.mu, self.beta, self.mu_b):
            array.flags.writeable = False
        self._gamma32, self._mu32 = self.gamma.astype(np.float32), self.mu.astype(np.float32)

        self.observation_space = spaces.Box(0.0, 1.0, shape=(self.n_products + 1,), dtype=np.float32)
        self.action_space = spaces.Discrete(self.n_products)
        self.check_eval_size()

    def sample(self, n: int, rng: np.random.Generator) -> Batch:
        n_products, latent_dim = self.n_products, self.latent_dim
        # Session lengths: at least one view, then each further view with probability stay_organic.
        lengths = rng.geometric(1.0 - self.stay_organic, size=n)
        omega_start = rng.normal(0.0, self.sigma_omega_initial, size=(n, latent_dim))
        # One row per view, all users' sessions end to end: no Python loop over views.
        n_views = int(lengths.sum())
        user = np.repeat(np.arange(n), lengths)
        first_view = np.cumsum(lengths) - lengths
        # The drift steps are drawn in float32 (half the cost); omega itself is summed in float64, as one running
        # sum over all sessions, from which each session's start is subtracted.
        drift = rng.standard_normal(size=(n_views, latent_dim), dtype=np.float32)
        drift *= self.sigma_omega
        walk = np.cumsum(drift, axis=0, dtype=np.float64)
        omega = walk
        omega += (omega_start - walk[first_view])[user]
        omega[first_view] = omega_start  # omega drifts between views, not before the first one
        # Each view ~ softmax(Gamma omega + mu), by inverting its cumulative distribution, in float32 (ample to
        # draw a product, and half the cost of the exponentials). Products along the first axis, so that the
        # running sum is one vectorized add per product.
        weights = self._gamma32 @ omega.T.astype(np.float32)
        weights += self._mu32[:, None]
        weights -= weights.max(axis=0)
        np.exp(weights, out=weights)
        for i in range(1, n_products):
            weights[i] += weights[i - 1]
        threshold = rng.random(n_views, dtype=np.float32) * weights[-1]
        product = np.minimum((weights <= threshold).sum(axis=0), n_products - 1)

        counts = np.bincount(user * n_products + product, minlength=n * n_products).reshape(n, n_products)
        obs = np.empty((n, n_products + 1), dtype=np.float32)
        np.divide(counts, lengths[:, None], out=obs[:, :n_products], casting="unsafe")
        obs[:, n_products] = 1.0 / lengths
        omega_end = omega[first_view + lengths - 1]
        affinity = omega_end @ self.beta.T
        affinity += self.mu_b
        ctr = click_probability(affinity, out=affinity)
        hidden = {"omega": omega_end, "omega_start": omega_start, "session_length": lengths, "ctr": ctr}
        return Batch(obs=obs, expected=self._rescale(ctr, ctr) if self.normalize else ctr, hidden=hidden)

    @staticmethod
    def _rescale(values: np.ndarray, ctr: np.ndarray) -> np.ndarray:
        """The per-context affine map that takes ``ctr`` to mean 0 over actions and best 1."""
        mean = ctr.mean(axis=1, keepdims=True)
        spread = ctr.max(axis=1, keepdims=True) - mean
        return (values - mean) / np.where(spread > 0, spread, 1.0)

    def realize(self, batch: Batch, actions: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        rows = np.arange(len(batch))
        ctr = batch.hidden["ctr"]
        if self.reward_mode == "ctr":
            return batch.expected[rows, actions]
        clicks = (rng.random(len(batch)) < ctr[rows, actions]).astype(np.float64)
        if not self.normalize:
            return clicks
        return self._rescale(clicks[:, None], ctr)[:, 0]
