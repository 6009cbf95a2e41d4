import numpy as np
import pytest

from skhbnn.alignment import align, align_chains, align_draws
from skhbnn.network import NetworkSpec, forward
from skhbnn.priors import MvNormalPrior, informed_prior

SPEC = NetworkSpec(2, (4, 3), 1, "tanh", use_bias=True)


def _fake_posterior(rng, n_draws=200):
    """One chain of group means concentrated around a random mode."""
    centre = {k: rng.normal(size=s) * 2 for k, s in SPEC.param_shapes().items()}
    return {
        k: (c + 0.1 * rng.normal(size=(n_draws, *c.shape)))[None] for k, c in centre.items()
    }


def _permute_and_flip(params, rng):
    """An equivalent mode: hidden units permuted and sign-flipped."""
    out = {k: v.copy() for k, v in params.items()}
    for layer in range(SPEC.n_layers - 1):
        n = SPEC.layer_sizes[layer + 1]
        perm, sign = rng.permutation(n), rng.choice([-1.0, 1.0], size=n)
        out[f"w{layer}"] = out[f"w{layer}"][..., perm] * sign
        out[f"b{layer}"] = out[f"b{layer}"][..., perm] * sign
        out[f"w{layer + 1}"] = out[f"w{layer + 1}"][..., perm, :] * sign[:, None]
    return out


def test_permuted_copy_is_the_same_function():
    rng = np.random.default_rng(0)
    post = _fake_posterior(rng, n_draws=3)
    X = rng.normal(size=(10, 2))
    flipped = _permute_and_flip(post, rng)
    np.testing.assert_allclose(forward(flipped, X, SPEC), forward(post, X, SPEC), atol=1e-12)


def test_pooling_with_a_mode_permuted_copy_gives_the_same_prior():
    rng = np.random.default_rng(1)
    post = _fake_posterior(rng)
    sds = {k: np.full((1, 200), 0.3) for k in SPEC.param_shapes()}
    alone = informed_prior(post, sds, SPEC)
    copy = _permute_and_flip(post, rng)
    pooled_post = {k: np.concatenate([post[k], copy[k]], axis=0) for k in post}
    pooled_sds = {k: np.concatenate([v, v], axis=0) for k, v in sds.items()}
    pooled = informed_prior(pooled_post, pooled_sds, SPEC)
    for k in SPEC.param_shapes():
        np.testing.assert_allclose(pooled.means[k], alone.means[k], atol=1e-10)
        np.testing.assert_allclose(pooled.covs[k], alone.covs[k], atol=1e-10)
    # Without alignment the two modes average into mush: a visibly different prior.
    mush = informed_prior(pooled_post, pooled_sds, SPEC, align=False)
    assert np.abs(mush.means["w0"] - alone.means["w0"]).max() > 0.5


def test_align_chains_leaves_reference_and_input_untouched():
    rng = np.random.default_rng(2)
    post = _fake_posterior(rng)
    copy = _permute_and_flip(post, rng)
    two = {k: np.concatenate([v, copy[k]]) for k, v in post.items()}
    before = {k: v.copy() for k, v in two.items()}
    aligned = align_chains(two, SPEC)
    for k in two:
        np.testing.assert_array_equal(two[k], before[k])
        np.testing.assert_array_equal(aligned[k][0], two[k][0])
        np.testing.assert_allclose(aligned[k][1], aligned[k][0], atol=1e-12)


def _switch_labels_per_draw(post, rng, every=3):
    """Label switching inside one chain: every ``every``-th draw is an equivalent
    mode (units permuted and sign-flipped), the others stay as they are."""
    out = {k: v.copy() for k, v in post.items()}
    for s in range(0, post["w0"].shape[1], every):
        draw = {k: v[:, s : s + 1] for k, v in out.items()}
        switched = _permute_and_flip(draw, rng)
        for k in out:
            out[k][:, s : s + 1] = switched[k]
    return out


def test_align_draws_undoes_label_switching_inside_a_chain():
    rng = np.random.default_rng(4)
    post = _fake_posterior(rng)
    sds = {k: np.full((1, 200), 0.3) for k in SPEC.param_shapes()}
    switched = _switch_labels_per_draw(post, rng)
    clean = informed_prior(post, sds, SPEC, align="draws")
    fixed = informed_prior(switched, sds, SPEC, align="draws")
    for k in SPEC.param_shapes():
        np.testing.assert_allclose(fixed.covs[k], clean.covs[k], atol=1e-10)
    # Chain alignment cannot see it: one chain, one (mixed) mean.
    mush = informed_prior(switched, sds, SPEC, align="chains")
    assert np.abs(mush.covs["w0"] - clean.covs["w0"]).max() > 0.5
    # The network function of every draw is unchanged by the alignment.
    aligned = align_draws(switched, SPEC)
    X = rng.normal(size=(7, 2))
    np.testing.assert_allclose(
        forward(aligned, X, SPEC), forward(switched, X, SPEC), atol=1e-10
    )


def test_align_draws_handles_chains_and_a_group_axis():
    rng = np.random.default_rng(5)
    post = _fake_posterior(rng, n_draws=30)
    copy = _permute_and_flip(post, rng)
    two = {k: np.concatenate([v, copy[k]]) for k, v in post.items()}
    grouped = {k: np.repeat(v[:, :, None], 3, axis=2) for k, v in two.items()}  # (C, S, G, ...)
    aligned = align_draws(grouped, SPEC)
    for k in SPEC.param_shapes():
        assert aligned[k].shape == grouped[k].shape
        np.testing.assert_allclose(aligned[k][1], aligned[k][0], atol=1e-12)


@pytest.mark.parametrize("bad", ["draw", "yes", 1.5, 0])
def test_align_option_is_validated(bad):
    with pytest.raises(ValueError, match="align must be one of"):
        align({}, SPEC, bad)


def test_align_booleans_mean_draws_and_none():
    rng = np.random.default_rng(6)
    post = _fake_posterior(rng, n_draws=10)
    assert align(post, SPEC, False) is post
    on = align(post, SPEC, True)
    for k in post:
        np.testing.assert_array_equal(on[k], align_draws(post, SPEC)[k])


def test_informed_prior_moments_match_the_seeds_sampling_recipe():
    """The exact moments equal the post's Monte-Carlo recipe in the limit."""
    rng = np.random.default_rng(3)
    spec = NetworkSpec(1, (2,), 1, "tanh", use_bias=False)
    mu = {"w0": rng.normal(size=(1, 300, 1, 2)), "w1": rng.normal(size=(1, 300, 2, 1))}
    sd = {"w0": np.abs(rng.normal(size=(1, 300))), "w1": np.abs(rng.normal(size=(1, 300)))}
    exact = informed_prior(mu, sd, spec, align=False)
    # The post: for each draw, 200 weights from N(mu, sd^2); mean and cov of all.
    draws = mu["w0"][0].reshape(300, 1, -1) + sd["w0"][0][:, None, None] * rng.normal(
        size=(300, 200, 2)
    )
    draws = draws.reshape(-1, 2)
    np.testing.assert_allclose(exact.means["w0"], draws.mean(0), atol=0.05)
    np.testing.assert_allclose(exact.covs["w0"], np.cov(draws.T), atol=0.08)


def test_informed_prior_is_positive_definite_with_one_draw():
    spec = NetworkSpec(2, (3,), 1, "tanh", use_bias=False)
    mu = {k: np.zeros((1, 1, *s)) for k, s in spec.param_shapes().items()}
    sd = {k: np.full((1, 1), 0.5) for k in spec.param_shapes()}
    prior = informed_prior(mu, sd, spec)
    prior.validate(spec)
    np.testing.assert_allclose(prior.covs["w0"], 0.25 * np.eye(6))


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda p: p.means.pop("b0"), "has parameters"),
        (lambda p: p.means.__setitem__("w0", np.zeros(5)), "shape"),
        (lambda p: p.covs.__setitem__("w0", np.eye(5)), "shape"),
        (lambda p: p.covs.__setitem__("w0", np.triu(np.ones((8, 8)))), "not symmetric"),
        (lambda p: p.covs.__setitem__("w0", -np.eye(8)), "positive definite"),
        (lambda p: p.means.__setitem__("w0", np.full(8, np.nan)), "NaN"),
    ],
)
def test_prior_validation_errors(mutate, match):
    spec = NetworkSpec(2, (4,), 1, "tanh", use_bias=True)
    prior = MvNormalPrior(
        means={k: np.zeros(int(np.prod(s))) for k, s in spec.param_shapes().items()},
        covs={k: np.eye(int(np.prod(s))) for k, s in spec.param_shapes().items()},
    )
    prior.validate(spec)
    mutate(prior)
    with pytest.raises(ValueError, match=match):
        prior.validate(spec)


def test_joint_prior_blocks_are_the_per_parameter_priors():
    """The joint prior adds cross-layer covariance; its diagonal blocks are
    exactly the per-parameter priors."""
    rng = np.random.default_rng(4)
    post = _fake_posterior(rng)
    sds = {k: np.abs(rng.normal(size=(1, 200))) for k in SPEC.param_shapes()}
    per = informed_prior(post, sds, SPEC)
    joint = informed_prior(post, sds, SPEC, joint=True)
    assert list(joint.means) == ["joint"]
    joint.validate(SPEC)
    start = 0
    for name in SPEC.param_shapes():
        d = per.means[name].size
        block = slice(start, start + d)
        np.testing.assert_allclose(joint.means["joint"][block], per.means[name])
        np.testing.assert_allclose(joint.covs["joint"][block, block], per.covs[name])
        start += d
    assert start == joint.means["joint"].size
