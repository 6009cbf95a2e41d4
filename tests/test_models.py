"""Both back-ends of a model definition follow its one variable table.

For random structures (hypothesis), without sampling and without compiling
any PyMC function: the PyMC model (``build_pymc``) creates exactly the
table's variables, in its order, with its shapes and roles; the kernel
problem (``build_kernel``) expands into the same ordered shapes and its
unconstrained vector is the free variables laid end to end; the derived
lists (prediction, ADVI's start) and the compile cache key follow the table.

The case strategies here are shared with tests/test_kernel_properties.py,
which checks the numbers (log density, gradient, expanded values) of the
same cases against PyMC.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pymc  # noqa: F401  (imported first: it raises the recursion limit)
from hypothesis import HealthCheck, assume, event, example, given, settings
from hypothesis import strategies as st

from skhbnn.kernels import abi
from skhbnn.models import MODEL_KINDS, ROLES, FlatModel, HierarchicalModel
from skhbnn.network import ACTIVATIONS, NetworkSpec
from skhbnn.priors import JOINT, MvNormalPrior, PopulationPrior

PRIOR_KINDS = (None, "per_parameter", "joint", "population")


# --------------------------------------------------------------------------
# Cases: a structure plus the few numbers that make its data and priors.
# Each case is a small frozen record whose repr reproduces it exactly (a
# failing hypothesis example prints it), and builds its definition and data
# deterministically from its seed.
# --------------------------------------------------------------------------


def random_spd(rng, n, scale):
    """A random symmetric positive definite ``n x n`` matrix of scale ``scale**2``."""
    A = rng.normal(size=(n, n))
    return scale**2 * (A @ A.T / n + 0.2 * np.eye(n))


def mvnormal_prior(spec, kind, scale, rng, n_components=3):
    """A random informed prior: one block per parameter, one joint block, or
    a population prior (a mixture of ``n_components`` diagonal Normals,
    unequal weights)."""
    if kind == "population":
        S = n_components
        prior = PopulationPrior(
            means=scale * rng.normal(size=(S, spec.n_params)),
            sds=scale * rng.uniform(0.3, 1.5, size=(S, spec.n_params)),
            weights=rng.uniform(0.1, 1.0, size=S), layer_sizes=spec.layer_sizes,
        )
        prior.validate(spec)
        return prior
    sizes = {JOINT: spec.n_params} if kind == "joint" else spec.param_sizes()
    means = {k: scale * rng.normal(size=n) for k, n in sizes.items()}
    covs = {k: random_spd(rng, n, scale) for k, n in sizes.items()}
    prior = MvNormalPrior(means, covs, layer_sizes=spec.layer_sizes)
    prior.validate(spec)
    return prior


def regression_spec(spec):
    """A regression's network: one output."""
    return dataclasses.replace(spec, n_outputs=1)


def targets(rng, spec, likelihood, n_rows):
    """Class labels, or a regression's standardised-scale float targets."""
    if likelihood == "normal":
        return rng.normal(size=n_rows) * 1.3 + 0.2
    return rng.integers(0, max(spec.n_outputs, 2), n_rows)


@dataclass(frozen=True)
class FlatCase:
    spec: NetworkSpec
    prior_sd: float
    prior_kind: str | None  # one of PRIOR_KINDS
    prior_scale: float  # scale of an MvNormal prior's means and covariances
    n_rows: int
    x_scale: float
    seed: int
    weighted: bool = False  # sample weights (0, fractions, counts) or none
    likelihood: str = "categorical"  # or "normal": a regression (one output)
    noise_prior: float = 1.0
    n_components: int = 3  # of a population prior (a shape: part of the structure)

    @property
    def structure(self):
        components = self.n_components if self.prior_kind == "population" else None
        return ("flat", self.model_spec, self.prior_kind, self.likelihood, components)

    @property
    def model_spec(self):
        return regression_spec(self.spec) if self.likelihood == "normal" else self.spec

    def definition(self) -> FlatModel:
        prior = None
        if self.prior_kind is not None:
            rng = np.random.default_rng([self.seed, 1])
            prior = mvnormal_prior(
                self.model_spec, self.prior_kind, self.prior_scale, rng, self.n_components
            )
        return FlatModel(
            self.model_spec, prior_sd=self.prior_sd, prior=prior, likelihood=self.likelihood,
            noise_prior=self.noise_prior,
        )

    def data(self):
        rng = np.random.default_rng([self.seed, 0])
        X = self.x_scale * rng.normal(size=(self.n_rows, self.spec.n_features))
        return X, targets(rng, self.model_spec, self.likelihood, self.n_rows)

    def weights(self):
        """Each row's likelihood weight, or ``None``."""
        if not self.weighted:
            return None
        rng = np.random.default_rng([self.seed, 3])
        return rng.choice([0.0, 0.5, 1.0, 3.0], size=self.n_rows)

    def point_rng(self):
        return np.random.default_rng([self.seed, 2])


@dataclass(frozen=True)
class HierarchicalCase:
    spec: NetworkSpec
    n_groups: int
    empty_group: int | None  # a group code with no rows, or None
    prior_sd: float
    group_sd_prior: float
    n_rows: int
    x_scale: float
    seed: int
    weighted: bool = False  # sample weights (0, fractions, counts) or none
    bias_group_sd_prior: float | None = None
    likelihood: str = "categorical"  # or "normal": a regression (one output)
    noise_prior: float = 1.0
    group_noise: bool = False

    @property
    def structure(self):
        noise = self.likelihood, self.likelihood == "normal" and self.group_noise
        return ("hierarchical", self.model_spec, self.n_groups, *noise)

    @property
    def model_spec(self):
        return regression_spec(self.spec) if self.likelihood == "normal" else self.spec

    def definition(self) -> HierarchicalModel:
        return HierarchicalModel(
            self.model_spec, self.n_groups, prior_sd=self.prior_sd,
            group_sd_prior=self.group_sd_prior, bias_group_sd_prior=self.bias_group_sd_prior,
            likelihood=self.likelihood, noise_prior=self.noise_prior,
            group_noise=self.group_noise,
        )

    def data(self):
        """X, y and group codes; every group but ``empty_group`` has rows, and
        the rows are shuffled (not sorted by group)."""
        rng = np.random.default_rng([self.seed, 0])
        X = self.x_scale * rng.normal(size=(self.n_rows, self.spec.n_features))
        y = targets(rng, self.model_spec, self.likelihood, self.n_rows)
        present = np.array([g for g in range(self.n_groups) if g != self.empty_group])
        codes = np.concatenate(
            [present, rng.choice(present, self.n_rows - present.size)]
        )
        return X, y, rng.permutation(codes)

    def weights(self):
        """Each row's likelihood weight, or ``None``."""
        if not self.weighted:
            return None
        rng = np.random.default_rng([self.seed, 3])
        return rng.choice([0.0, 0.5, 1.0, 3.0], size=self.n_rows)

    def point_rng(self):
        return np.random.default_rng([self.seed, 2])


specs = st.builds(
    NetworkSpec,
    n_features=st.integers(1, 4),
    hidden_layer_sizes=st.lists(st.integers(1, 5), min_size=1, max_size=3).map(tuple),
    n_outputs=st.sampled_from([1, 3, 4]),  # binary (one logit), 3 or 4 classes
    activation=st.sampled_from(ACTIVATIONS),
    use_bias=st.booleans(),
)
scales = st.sampled_from([0.2, 0.7, 1.0, 1.6, 3.0])
seeds = st.integers(0, 2**16)
rows = st.integers(10, 30)
likelihoods = st.sampled_from(["categorical", "categorical", "normal"])


@st.composite
def flat_cases(draw, spec=specs):
    return FlatCase(
        spec=draw(spec),
        prior_sd=draw(scales),
        prior_kind=draw(st.sampled_from(PRIOR_KINDS)),
        prior_scale=draw(scales),
        n_rows=draw(rows),
        x_scale=draw(scales),
        seed=draw(seeds),
        weighted=draw(st.booleans()),
        likelihood=draw(likelihoods),
        noise_prior=draw(scales),
    )


@st.composite
def hierarchical_cases(draw, spec=specs):
    n_groups = draw(st.integers(1, 5))
    empty = None if n_groups == 1 else draw(st.none() | st.integers(0, n_groups - 1))
    return HierarchicalCase(
        spec=draw(spec),
        n_groups=n_groups,
        empty_group=empty,
        prior_sd=draw(scales),
        group_sd_prior=draw(scales),
        n_rows=draw(rows),
        x_scale=draw(scales),
        seed=draw(seeds),
        weighted=draw(st.booleans()),
        bias_group_sd_prior=draw(st.none() | scales),
        likelihood=draw(likelihoods),
        noise_prior=draw(scales),
        group_noise=draw(st.booleans()),
    )


# Explicit edge cases, run on top of the generated ones (whatever hypothesis
# draws): each kind of flat prior, exactly one group, a group without rows
# (the last one, and the first one), sample weights, and 3 hidden layers with
# biases.
FLAT_EDGES = [
    FlatCase(NetworkSpec(2, (3,), 3, "relu", True), 1.0, kind, 0.7, 17, 1.0, 11, kind == "joint")
    for kind in PRIOR_KINDS
]
FLAT_EDGES += [  # regressions: no prior, a joint prior with sample weights
    FlatCase(NetworkSpec(2, (3,), 1, "tanh", True), 1.0, None, 0.7, 15, 1.0, 12, False, "normal"),
    FlatCase(NetworkSpec(3, (2, 2), 1, "relu", True), 0.7, "joint", 0.7, 13, 1.6, 13, True,
             "normal", 0.3),
]
HIERARCHICAL_EDGES = [
    HierarchicalCase(NetworkSpec(3, (4,), 3, "relu", True), 1, None, 1.3, 0.7, 12, 1.0, 5),
    HierarchicalCase(NetworkSpec(2, (3,), 1, "tanh", False), 5, 4, 0.7, 1.6, 14, 1.0, 6, True),
    HierarchicalCase(NetworkSpec(1, (2, 3, 2), 4, "logistic", True), 3, 0, 3.0, 0.2, 10, 1.6, 7),
    # regressions: one noise sd; one per group, a group without rows, weights
    HierarchicalCase(NetworkSpec(2, (3,), 1, "tanh", True), 3, None, 1.0, 1.0, 15, 1.0, 8,
                     likelihood="normal"),
    HierarchicalCase(NetworkSpec(2, (2,), 1, "tanh", False), 4, 1, 1.0, 0.7, 16, 1.0, 9, True,
                     likelihood="normal", noise_prior=0.5, group_noise=True),
]


def with_examples(cases):
    """Decorator: run ``cases`` as explicit hypothesis examples."""

    def decorate(test):
        for case in reversed(cases):
            test = example(case)(test)
        return test

    return decorate


# --------------------------------------------------------------------------
# The checks
# --------------------------------------------------------------------------

BUILDING = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
KEYS = settings(max_examples=200, deadline=None, derandomize=True)


def static_shape(var):
    shape = var.type.shape
    if None in shape:  # not known statically: evaluate the shape graph
        shape = tuple(int(s) for s in var.shape.eval())
    return tuple(shape)


def check_table(definition):
    table = definition.variables()
    names = [v.name for v in table]
    assert len(set(names)) == len(names)
    assert all(v.role in ROLES for v in table)
    # free variables come first, then the deterministic weights
    roles = [v.free for v in table]
    assert roles == sorted(roles, reverse=True)
    spec = definition.spec
    weights = [v for v in table if v.role == "weight"]
    assert [v.name for v in weights] == list(spec.param_shapes())
    for v in table:
        if v.param is not None and v.param in spec.param_shapes():
            assert v.layer == spec.layer_of(v.param)
    assert all(v.param == v.name for v in weights)
    assert definition.posterior_shapes() == {v.name: v.shape for v in table}
    assert list(definition.posterior_shapes()) == names
    assert definition.free_variables() == tuple(v for v in table if v.free)
    return table


def check_pymc(definition, model, weighted):
    table = definition.variables()
    free = definition.free_variables()
    assert [v.name for v in model.free_RVs] == [v.name for v in free]
    assert [v.name for v in model.deterministics] == [v.name for v in table if not v.free]
    variables = model.free_RVs + model.deterministics
    assert [(v.name, static_shape(v)) for v in variables] == [(v.name, v.shape) for v in table]
    # only HalfNormal group sds are transformed (to their log)
    transformed = {rv.name for rv in model.free_RVs if model.rvs_to_transforms[rv] is not None}
    positive = ("group_sd", "noise")
    assert transformed == {v.name for v in free if v.role in positive}
    assert [v.name for v in model.value_vars] == [
        f"{v.name}_log__" if v.role in positive else v.name for v in free
    ]
    # the likelihood: observed, or a weighted potential of the same name
    assert ("sample_weight" in model.named_vars) == weighted
    # a population prior's mixture density is a potential of its own
    mixture = ["theta_prior"] if any(v.role == "mixture" for v in free) else []
    if weighted:
        assert [v.name for v in model.observed_RVs] == []
        assert [v.name for v in model.potentials] == mixture + ["y_obs"]
    else:
        assert [v.name for v in model.observed_RVs] == ["y_obs"]
        assert [v.name for v in model.potentials] == mixture
    for name in definition.prediction_names() + definition.advi_start_names():
        assert name in model.named_vars
    advi = set(definition.advi_start_names())
    assert advi <= {v.name for v in model.free_RVs}


def check_kernel(definition, problem):
    table = definition.variables()
    assert problem.kind == definition.kind
    assert isinstance(problem.shapes, dict)
    assert list(problem.shapes.items()) == [(v.name, v.shape) for v in table]
    assert problem.n_dim == sum(v.size for v in definition.free_variables())
    assert problem.n_expanded == sum(v.size for v in table)
    slot = abi.F_EXPANDED if definition.kind == "flat" else abi.H_EXPANDED
    assert problem.header[slot] == problem.n_expanded
    assert problem.header[abi.P] == definition.spec.n_params
    assert problem.header[abi.N_LAYERS] == definition.spec.n_layers


def check_derived(definition):
    table = definition.variables()
    names = [v.name for v in table]
    prediction = definition.prediction_names()
    assert len(set(prediction)) == len(prediction)
    assert set(prediction) <= set(names)
    assert {v.name for v in table if v.role == "weight"} <= set(prediction)
    assert definition.advi_start_names() == [
        v.name for v in table if v.free and v.role in ("raw", "mean")
    ]


@BUILDING
@with_examples(FLAT_EDGES)
@given(flat_cases())
def test_flat_backends_follow_the_table(case):
    definition = case.definition()
    X, y = case.data()
    table = check_table(definition)
    spec = case.model_spec
    regression = case.likelihood == "normal"
    raws = [v for v in table if v.role in ("raw", "mixture")]
    if case.prior_kind == "population":
        assert [(v.name, v.shape, v.role) for v in raws] == [
            ("theta", (spec.n_params,), "mixture")
        ]
    elif case.prior_kind is None:
        assert [v.name for v in raws] == [f"{p}_raw" for p in spec.param_shapes()]
        assert [v.shape for v in raws] == list(spec.param_shapes().values())
    elif case.prior_kind == "joint":
        assert [(v.name, v.shape) for v in raws] == [("joint_raw", (spec.n_params,))]
    else:
        assert [(v.name, v.shape) for v in raws] == [
            (f"{p}_raw", (n,)) for p, n in spec.param_sizes().items()
        ]
    # a regression's noise sd follows the raw variables
    noise = [("sigma", ())] if regression else []
    assert [(v.name, v.shape) for v in table if v.free] == [(v.name, v.shape) for v in raws] + noise
    assert definition.prediction_names() == [*(n for n, _ in noise), *spec.param_shapes()]
    assert definition.advi_start_names() == [v.name for v in raws if v.role == "raw"]
    check_derived(definition)
    weights = case.weights()
    check_pymc(definition, definition.build_pymc(X, y, None, weights), case.weighted)
    check_kernel(definition, definition.build_kernel(X, y, None, weights))


@BUILDING
@with_examples(HIERARCHICAL_EDGES)
@given(hierarchical_cases())
def test_hierarchical_backends_follow_the_table(case):
    definition = case.definition()
    X, y, codes = case.data()
    table = check_table(definition)
    spec, G = case.model_spec, case.n_groups
    regression = case.likelihood == "normal"
    layers = range(spec.n_layers)
    expected_sds = [f"sd{l}" for l in layers] + ([f"sd_b{l}" for l in layers] if spec.use_bias else [])
    assert [v.name for v in table if v.role == "group_sd"] == expected_sds
    for v in table:
        if v.role in ("raw", "weight"):
            assert v.shape == (G, *spec.param_shapes()[v.param])
        elif v.role == "mean":
            assert v.shape == spec.param_shapes()[v.param]
        elif v.role == "noise":
            assert v.shape == ((G,) if case.group_noise else ())
        else:
            assert v.shape == ()
    noise = [v for v in table if v.role == "noise"]
    assert [v.name for v in noise] == (["sigma"] if regression else [])
    # the noise sd follows the group sds
    free = [v.name for v in table if v.free]
    assert free[: len(expected_sds) + len(noise)] == expected_sds + [v.name for v in noise]
    assert definition.advi_start_names() == [
        v.name for v in table if v.free and v.role in ("raw", "mean")
    ]
    # prediction reads every posterior variable but the raw offsets
    assert sorted(definition.prediction_names()) == sorted(
        v.name for v in table if v.role != "raw"
    )
    check_derived(definition)
    weights = case.weights()
    check_pymc(definition, definition.build_pymc(X, y, codes, weights), case.weighted)
    problem = definition.build_kernel(X, y, codes, weights)
    check_kernel(definition, problem)
    n_noise = sum(v.size for v in noise)
    assert problem.n_dim == len(expected_sds) + n_noise + (G + 1) * spec.n_params
    assert problem.header[abi.N_NOISE] == n_noise
    assert problem.header[abi.H_GROUPS] == G
    assert problem.header[abi.H_NSD] == len(expected_sds)


def test_model_kinds_lists_both_kinds():
    assert MODEL_KINDS == {"flat": FlatModel, "hierarchical": HierarchicalModel}
    assert all(model.kind == kind for kind, model in MODEL_KINDS.items())


# Few structures, so that two draws often share one.
small_specs = st.builds(
    NetworkSpec,
    n_features=st.integers(1, 2),
    hidden_layer_sizes=st.lists(st.integers(1, 2), min_size=1, max_size=2).map(tuple),
    n_outputs=st.sampled_from([1, 3]),
    activation=st.sampled_from(ACTIVATIONS[:2]),
    use_bias=st.booleans(),
)
any_cases = flat_cases(small_specs) | hierarchical_cases(small_specs)


@KEYS
@given(any_cases, any_cases)
def test_cache_key_identifies_the_structure(a, b):
    key_a, key_b = a.definition().cache_key(), b.definition().cache_key()
    event(f"same structure: {a.structure == b.structure}")
    assert (key_a == key_b) == (a.structure == b.structure)
    if key_a == key_b:
        assert hash(key_a) == hash(key_b)
        # equal keys: the same variable table, only values differ
        assert a.definition().variables() == b.definition().variables()


@KEYS
@given(flat_cases() | hierarchical_cases(), seeds, scales, scales, rows)
def test_cache_key_ignores_values(case, seed, s1, s2, n_rows):
    """Prior scales, an MvNormal prior's means and covariances and the data
    are ``pm.Data`` values: they do not change the key."""
    assume(seed != case.seed)
    fields = {"seed": seed, "prior_sd": s1, "x_scale": s2, "n_rows": n_rows}
    if isinstance(case, FlatCase):
        fields["prior_scale"] = s2
    else:
        fields["group_sd_prior"] = s2
        fields["bias_group_sd_prior"] = s1
    other = dataclasses.replace(case, **fields)
    assert other.definition().cache_key() == case.definition().cache_key()
    assert hash(other.definition().cache_key()) == hash(case.definition().cache_key())


def test_cache_key_differs_between_kinds_groups_and_priors():
    spec = NetworkSpec(2, (3,), 1, "tanh", use_bias=True)
    rng = np.random.default_rng(0)
    keys = [FlatModel(spec, prior=None).cache_key()]
    keys += [
        FlatModel(spec, prior=mvnormal_prior(spec, kind, 1.0, rng)).cache_key()
        for kind in ("per_parameter", "joint", "population")
    ]
    keys += [FlatModel(spec, prior=mvnormal_prior(spec, "population", 1.0, rng, 5)).cache_key()]
    keys += [HierarchicalModel(spec, g).cache_key() for g in (1, 2, 3)]
    keys += [FlatModel(NetworkSpec(2, (3,), 1, "tanh", use_bias=False)).cache_key()]
    keys += [FlatModel(NetworkSpec(2, (3,), 1, "relu", use_bias=True)).cache_key()]
    keys += [HierarchicalModel(NetworkSpec(2, (3,), 3, "tanh", use_bias=True), 2).cache_key()]
    assert len(set(keys)) == len(keys)
