"""`skhbnn reproduce`: argument handling, the experiment's settings and table
(skhbnn.experiments), a reduced end-to-end run, and (slow) the real --quick
smoke run."""

import contextlib
import inspect
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from skhbnn import cli
from skhbnn.experiments import progress, seed

FIGURES = [
    "data.png",
    "surfaces_flat.png",
    "surfaces_hierarchical.png",
    "surfaces_informed.png",
    "uncertainty_flat.png",
    "uncertainty_hierarchical.png",
    "uncertainty_informed.png",
    "group_sd.png",
    "group_mean_surface.png",
    "weight_correlation_layer0.png",
]
POST_NUMBERS = ["86.78", "83.78", "91.11", "89.78", "91.56", "87.11"]
# 3 groups, tiny sampler, coarse grid, PyMC's sampler (compiled C is cached on
# disk): the whole pipeline in well under a minute.
REDUCED = [
    "--n-groups", "3", "--draws", "30", "--tune", "30", "--chains", "1",
    "--hier-tune", "30", "--grid-size", "20", "--sampler", "pymc",
]


def is_png(path: Path) -> bool:
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def cli_kwargs(argv):
    """The keywords of seed.reproduce that `skhbnn reproduce --out x ARGV` passes."""
    args = cli.build_parser().parse_args(["reproduce", "--out", "x", *argv])
    return cli._reproduce_kwargs(args)


def settings_from_cli(settings, argv):
    """``settings`` (a seed.*_settings function) called with the CLI's keywords."""
    kwargs = cli_kwargs(argv)
    return settings(**{k: kwargs[k] for k in inspect.signature(settings).parameters})


@pytest.mark.parametrize(
    "argv, expected",
    [
        ([], dict(draws=1000, tune=1000, chains=2)),
        (["--quick"], dict(draws=200, tune=200, chains=1)),
        (["--quick", "--draws", "50"], dict(draws=50, tune=200, chains=1)),
        (["--draws", "10", "--tune", "20", "--chains", "3"], dict(draws=10, tune=20, chains=3)),
    ],
)
def test_sampler_settings(argv, expected):
    assert settings_from_cli(seed.sampler_settings, argv) == expected
    kwargs = cli_kwargs(argv)
    assert kwargs["seed"] == 31 and kwargs["n_groups"] == 18 and kwargs["grid_size"] == 100


@pytest.mark.parametrize(
    "argv, expected",
    [
        # A full run samples the hierarchical model as the post: 1 chain, tune 5000.
        ([], dict(draws=1000, tune=5000, chains=1)),
        (["--draws", "500", "--tune", "300"], dict(draws=500, tune=5000, chains=1)),
        (["--hier-tune", "800", "--hier-chains", "2"], dict(draws=1000, tune=800, chains=2)),
        # --quick: every model gets the quick settings.
        (["--quick"], dict(draws=200, tune=200, chains=1)),
        (["--quick", "--hier-tune", "400"], dict(draws=200, tune=400, chains=1)),
    ],
)
def test_hierarchical_sampler_settings(argv, expected):
    assert settings_from_cli(seed.hierarchical_settings, argv) == expected


def test_cli_defaults_are_the_experiment_defaults():
    """`skhbnn reproduce --out x` and seed.reproduce("x") run the same experiment."""
    kwargs = cli_kwargs([])
    params = inspect.signature(seed.reproduce).parameters
    assert set(kwargs) == set(params) - {"command", "progress"}
    for name, value in kwargs.items():
        if name != "out":
            assert value == params[name].default, name


def test_python_call_is_recorded_as_the_call():
    arguments = dict(cli_kwargs(["--quick", "--seed", "7"]), command=None, progress=None)
    assert seed._python_call(seed.reproduce, arguments) == (
        "skhbnn.experiments.seed.reproduce(out='x', quick=True, seed=7)"
    )


@pytest.mark.parametrize(
    "argv",
    [
        [],  # no command
        ["reproduce"],  # no --out
        ["reproduce", "--out", "x", "--draws", "0"],
        ["reproduce", "--out", "x", "--chains", "two"],
        ["frobnicate"],
    ],
)
def test_bad_arguments_exit_with_usage(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    assert "usage" in capsys.readouterr().err


def test_grid_size_below_two_is_refused(tmp_path):
    with pytest.raises(SystemExit, match="--grid-size must be at least 2"):
        cli.main(["reproduce", "--out", str(tmp_path / "out"), "--grid-size", "1"])
    assert not (tmp_path / "out").exists()  # refused before anything ran


def test_format_table_puts_post_numbers_next_to_ours():
    results = {k: {"train": 90.0, "test": 88.5} for k in seed.POST_RESULTS}
    table = seed.format_table(results)
    assert table.count("\n") == 4  # header, rule, three models
    for number in POST_NUMBERS + ["90.00", "88.50"]:
        assert number in table


@pytest.mark.parametrize("bars", [False, True])
def test_progress_reports_stage_durations(bars):
    stream = io.StringIO()
    reporter = progress.Progress(stream=stream, bars=bars)
    with reporter.stage("a", "stage a", total=3) as step:
        for _ in range(3):
            step()
    with reporter.stage("b", "stage b", own_bar=True):
        pass
    assert set(reporter.durations) == {"a", "b"}
    text = stream.getvalue()
    assert "stage a: done in" in text and "stage b: done in" in text


def test_progress_has_no_bars_when_stderr_is_not_a_terminal():
    assert progress.Progress(stream=io.StringIO()).bars is False


@pytest.fixture(scope="module")
def reduced_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("reproduce")
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = cli.main(["reproduce", "--out", str(out), *REDUCED])
    return code, out, stdout.getvalue(), stderr.getvalue()


def test_reduced_run_prints_the_table(reduced_run):
    code, _, stdout, _ = reduced_run
    assert code == 0
    for label in seed.MODEL_LABELS.values():
        assert label in stdout
    for number in POST_NUMBERS:
        assert number in stdout


def test_reduced_run_writes_every_figure(reduced_run):
    _, out, _, _ = reduced_run
    for name in FIGURES:
        assert (out / name).is_file(), name
        assert is_png(out / name), name


def test_reduced_run_writes_results(reduced_run):
    _, out, stdout, stderr = reduced_run
    summary = json.loads((out / "results.json").read_text())
    assert summary["n_groups"] == 3 and summary["seed"] == 31
    assert summary["sampler"] == dict(draws=30, tune=30, chains=1, sampler="pymc")
    assert summary["hierarchical_sampler"] == dict(draws=30, tune=30, chains=1)
    assert sorted(summary["figures"]) == sorted(FIGURES)
    assert summary["command"] == " ".join(["skhbnn", "reproduce", "--out", str(out), *REDUCED])
    for key in seed.POST_RESULTS:
        acc = summary["accuracy_percent"][key]
        assert 0 <= acc["test"] <= 100 and 0 <= acc["train"] <= 100
        assert f"{acc['test']:.2f}" in stdout
    # Every stage reported its duration (the log is not a terminal: no bars).
    stages = ["flat", "hierarchical", "informed prior", "population prior", "evaluate",
              "figures"]
    assert set(summary["durations_s"]) == set(stages)
    assert stderr.count("done in") == len(stages)
    md = (out / "results.md").read_text()
    table = seed.format_table(summary["accuracy_percent"])
    assert table in md and table in stdout


def test_python_m_skhbnn_help():
    proc = subprocess.run(
        [sys.executable, "-m", "skhbnn", "reproduce", "--help"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "--quick" in proc.stdout and "--out" in proc.stdout
    assert "--n-groups" not in proc.stdout  # test-only knobs stay hidden


@pytest.mark.slow
def test_quick_command_end_to_end(tmp_path):
    """The real smoke run: all 18 groups, draws=tune=200, one chain."""
    script = Path(sys.executable).with_name("skhbnn")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "skhbnn"]
    proc = subprocess.run(
        [*command, "reproduce", "--quick", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    for number in POST_NUMBERS:
        assert number in proc.stdout
    for name in FIGURES:
        assert is_png(tmp_path / name), name
    summary = json.loads((tmp_path / "results.json").read_text())
    assert summary["n_groups"] == 18 and summary["quick"] is True
    # Even the smoke run must show the hierarchical model's advantage over
    # flat per-group fits on held-out points (full run: ~90 % vs ~84 %).
    acc = summary["accuracy_percent"]
    assert acc["hierarchical"]["test"] > acc["flat"]["test"]
