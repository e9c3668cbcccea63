"""Experiment configs, the ``vbt`` CLI and run folders.

Config errors must name the file and the key; the objects a config builds must be the ones a
hand-written ``simulate`` call would use (checked on the numbers the simulation produces); every
shipped config must run through the CLI with ``--quick`` settings; run folders are written
atomically and never overwritten without ``--force``.
"""

from __future__ import annotations

import dataclasses
import json
import textwrap
import tomllib
from pathlib import Path

import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest
import scipy.stats

import vbt_jax as vbt
from vbt_jax._cli import main
from vbt_jax._errors import ConfigError
from vbt_jax._runfolder import run_experiment
from vbt_jax.config import build_experiment, load_config, model_class
from vbt_jax.models import MontbrioPazoRoxin
from vbt_jax.monitors import Bold, Raw, TemporalAverage

# simulation and fit configs (both simulate); predict configs are run in test_predict_cli.py
CONFIGS = [
    p
    for p in sorted((Path(__file__).parent.parent / "configs").glob("*.toml"))
    if "predict" not in tomllib.loads(p.read_text())
]

# A 4-region ring; tract lengths give delays of 6-10 steps at 3 mm/ms and dt 0.1 ms (short
# delays keep the coupling block, hence the compile time, small).
W4 = np.array(
    [[0, 1.0, 0, 0.5], [1.0, 0, 0.8, 0], [0, 0.8, 0, 1.0], [0.5, 0, 1.0, 0]], dtype=np.float64
)
L4 = np.array(
    [[0, 1.8, 0, 3.0], [1.8, 0, 2.4, 0], [0, 2.4, 0, 2.1], [3.0, 0, 2.1, 0]], dtype=np.float64
)

TINY = """
[simulation]
dt = 0.1
duration = 300.0
seed = 7

[connectome]
source = "conn/w.npy"
lengths = "conn/l.npy"
normalise = "max"

[model]
name = "mpr"

[model.parameters]
eta = [-4.6, -4.8, -5.0, -4.7]
J = 14.5

[model.initial_state]
r = 0.1
V = -2.0

[coupling]
kind = "linear"
G = 0.4

[noise]
nsig = [0.001, 0.01]

[monitors]
raw = { period = 1.0 }
tavg = { period = 10.0, variables = ["r"] }
bold = { tr = 100.0 }
"""

# deterministic, one raw monitor: the cheapest run to compile, for CLI mechanics
FAST = (
    TINY.replace("[noise]\nnsig = [0.001, 0.01]\n", "")
    .replace("duration = 300.0", "duration = 50.0")
    .replace('tavg = { period = 10.0, variables = ["r"] }\nbold = { tr = 100.0 }\n', "")
)


def _write(folder: Path, text: str, name: str = "exp.toml") -> Path:
    (folder / "conn").mkdir(exist_ok=True)
    np.save(folder / "conn" / "w.npy", W4)
    np.save(folder / "conn" / "l.npy", L4)
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def _edit(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


# --------------------------------------------------------------------------- config errors

# (edit of TINY, fragments the message must contain); every message also starts with the path
LOAD_ERRORS = [
    (
        ("duration = 300.0", "dur = 300.0"),
        ["[simulation] unknown key 'dur'", "did you mean 'duration'", "expected one of: dt,"],
    ),
    (("dt = 0.1", 'dt = "abc"'), ["[simulation] dt must be a positive number (ms), got 'abc'"]),
    (("dt = 0.1", "dt = -0.1"), ["[simulation] dt must be a positive number (ms), got -0.1"]),
    (("dt = 0.1", "dt = true"), ["[simulation] dt must be a positive number (ms), got True"]),
    (("duration = 300.0", ""), ["[simulation] missing required key 'duration'"]),
    (("duration = 300.0", "duration = 300.05"), ["[simulation] duration must be a whole"]),
    (("seed = 7", "seed = -1"), ["[simulation] seed must be an integer"]),
    (("seed = 7", 'solver = "rk4"'), ["[simulation] solver must be one of 'heun', 'euler'"]),
    (("[simulation]", "[simulaton]"), ["unknown key 'simulaton'", "did you mean 'simulation'"]),
    (('source = "conn/w.npy"', 'source = "tvb:77"'), ["[connectome] source 'tvb:77'"]),
    (('source = "conn/w.npy"', 'source = "nope.npy"'), ["[connectome] source 'nope.npy' not"]),
    (('normalise = "max"', 'normalise = "l2"'), ["[connectome] normalise must be one of"]),
    (('name = "mpr"', 'name = "mprr"'), ["[model] name 'mprr'", "did you mean 'mpr'"]),
    (
        ("J = 14.5", "JJ = 14.5"),
        ["[model.parameters] unknown key 'JJ'", "did you mean 'J'", "Delta"],
    ),
    (("J = 14.5", 'J = "big"'), ["[model.parameters] J must be a number or a list"]),
    (("V = -2.0", ""), ["[model.initial_state] missing state variable(s) 'V'"]),
    (('kind = "linear"', 'kind = "cubic"'), ["[coupling] kind must be one of 'linear'"]),
    (("G = 0.4", "GG = 0.4"), ["[coupling] unknown key 'GG'", "did you mean 'G'"]),
    (("nsig = [0.001, 0.01]", "nsig = [0.001]"), ["[noise] nsig has 1 values", "('r', 'V')"]),
    (("nsig = [0.001, 0.01]", "nsig = -0.1"), ["[noise] nsig must be a non-negative number"]),
    (("nsig = [0.001, 0.01]", "nsig = { x = 0.1 }"), ["[noise.nsig] unknown key 'x'"]),
    (
        ('variables = ["r"]', 'variables = ["rate"]'),
        ["[monitors.tavg] variables: 'rate' is not a state variable"],
    ),
    (("raw = { period = 1.0 }", "raw = { period = 0.25 }"), ["[monitors.raw] period=0.25 ms"]),
    (("tr = 100.0", "tr = 400.0"), ["[monitors.bold] tr=400.0 ms is longer than"]),
    (("raw = { period = 1.0 }", "rawr = { period = 1.0 }"), ["[monitors] unknown key 'rawr'"]),
    (('name = "mpr"', 'name = "mpr"\nfic = true'), ["[model] fic and fic_rate apply to"]),
]


@pytest.mark.parametrize("edit, fragments", LOAD_ERRORS, ids=[e[1][0][:40] for e in LOAD_ERRORS])
def test_load_errors_name_file_and_key(tmp_path, edit, fragments):
    path = _write(tmp_path, _edit(TINY, *edit))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    msg = str(info.value)
    assert msg.startswith(str(path.resolve())), msg
    for fragment in fragments:
        assert fragment in msg, msg


BUILD_ERRORS = [
    (
        ("eta = [-4.6, -4.8, -5.0, -4.7]", "eta = [-4.6, -4.8, -5.0]"),
        ["[model.parameters] eta has 3 values; the connectome has 4 regions"],
    ),
    (("r = 0.1", "r = [0.1, 0.2]"), ["[model.initial_state] r has 2 values"]),
    (
        ("bold = { tr = 100.0 }", 'eeg = { gain = "tvb62" }'),
        ["[monitors.eeg] gain 'tvb62' is the 62 x 76 gain", "has 4 regions"],
    ),
]


@pytest.mark.parametrize("edit, fragments", BUILD_ERRORS, ids=[e[1][0][:40] for e in BUILD_ERRORS])
def test_build_errors_name_file_and_key(tmp_path, edit, fragments):
    path = _write(tmp_path, _edit(TINY, *edit))
    cfg = load_config(path)  # valid on its own: the problem needs the connectome's N
    with pytest.raises(ConfigError) as info:
        build_experiment(cfg)
    msg = str(info.value)
    assert msg.startswith(str(path.resolve())), msg
    for fragment in fragments:
        assert fragment in msg, msg


def test_eeg_gain_path_shape_checked(tmp_path):
    np.save(tmp_path / "gain.npy", np.ones((5, 3)))
    path = _write(tmp_path, _edit(TINY, "bold = { tr = 100.0 }", 'eeg = { gain = "gain.npy" }'))
    with pytest.raises(ConfigError, match=r"\[monitors.eeg\] gain .* \(M, 4\) matrix"):
        build_experiment(load_config(path))
    np.save(tmp_path / "gain.npy", np.ones((4, 6)))  # (N regions, M channels)
    msg = r"gain.npy' looks transposed: its shape is \(4, 6\) but \(M channels, 4 regions\)"
    with pytest.raises(ConfigError, match=msg + r" = \(6, 4\) is expected"):
        build_experiment(load_config(path))


def test_unreadable_and_invalid_toml(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[simulation\ndt = 0.1\n")
    with pytest.raises(ConfigError, match=r"bad.toml: not valid TOML"):
        load_config(bad)


# --------------------------------------------------------------------------- parsed values


def test_parsed_values_defaults_and_frozen(tmp_path, monkeypatch):
    sub = tmp_path / "configs"
    sub.mkdir()
    path = _write(sub, TINY)
    monkeypatch.chdir(tmp_path)  # relative paths resolve against the config's folder, not cwd
    cfg = load_config(path)
    assert cfg.connectome.source == str((sub / "conn" / "w.npy").resolve())
    assert cfg.simulation.solver == "heun" and cfg.simulation.speed == 3.0  # defaults
    assert cfg.connectome.allow_isolated is False
    assert cfg.model.parameters["eta"] == (-4.6, -4.8, -5.0, -4.7)
    assert cfg.noise.nsig == (0.001, 0.01)
    assert cfg.monitors.periods() == {"raw": 1.0, "tavg": 10.0, "bold": 100.0}
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.simulation.dt = 1.0  # type: ignore[misc]
    # quick: three samples of the slowest monitor (BOLD, 100 ms) but at least 100 ms
    assert cfg.quick().simulation.duration == 300.0
    assert cfg.with_simulation(seed=3).simulation.seed == 3
    with pytest.raises(ConfigError, match=r"\[simulation\] duration must be a positive number"):
        cfg.with_simulation(duration=-5.0)


def test_noise_table_and_zero_noise(tmp_path):
    cfg = load_config(_write(tmp_path, _edit(TINY, "nsig = [0.001, 0.01]", "nsig = { V = 0.02 }")))
    assert cfg.noise.nsig == (0.0, 0.02)  # unlisted states get no noise
    cfg = load_config(_write(tmp_path, _edit(TINY, "nsig = [0.001, 0.01]", "nsig = 0.0")))
    assert cfg.noise is None
    assert build_experiment(cfg).noise is None


def test_wong_wang_fic_sets_inhibitory_weights(tmp_path):
    from vbt_jax.models.wong_wang import with_fic

    text = """
    [simulation]
    dt = 0.1
    duration = 100.0
    [connectome]
    source = "conn/w.npy"
    [model]
    name = "wong_wang"
    fic = true
    fic_rate = 3.0
    [coupling]
    G = 0.5
    [monitors]
    tavg = { period = 10.0 }
    """
    exp = build_experiment(load_config(_write(tmp_path, text)))
    w = W4 / W4.max()
    expected = with_fic(model_class("wong_wang")(), w, 0.5, target_rate=3.0).J_i
    np.testing.assert_array_equal(np.asarray(exp.model.J_i), expected)
    assert type(exp.coupling).__name__ == "Linear" and exp.coupling.G == 0.5
    # the regions really differ (FIC is per region), so the check above can fail
    assert np.ptp(expected) > 1e-3


# --------------------------------------------------------------------------- numbers


def _reference(seed: int, G: float, *, noise: bool = True, initial_state: bool = True, bold=True):
    """The simulation TINY describes, written by hand against the library API; ``G`` traced."""
    conn = vbt.Connectome(W4, L4).normalised("max")
    model = MontbrioPazoRoxin(eta=jnp.array([-4.6, -4.8, -5.0, -4.7]), J=14.5)
    monitors = (Raw(period=1.0),)
    if bold:
        monitors += (TemporalAverage(period=10.0, variables=("r",)), Bold(period=100.0))
    kwargs = dict(
        dt=0.1,
        duration=300.0,
        noise=vbt.Additive(nsig=jnp.array([0.001, 0.01])) if noise else None,
        monitors=monitors,
        speed=3.0,
        on_divergence="flag",
    )
    if initial_state:
        kwargs["initial_state"] = jnp.array([0.1, -2.0])

    @jax.jit
    def run(key, g):
        return vbt.simulate(model, conn, key=key, coupling=vbt.Linear(G=g), **kwargs)

    return run(jr.key(seed), G), run(jr.key(seed), 2 * G)


def test_run_matches_hand_written_simulate_and_segments_are_exact(tmp_path):
    exp = build_experiment(load_config(_write(tmp_path, TINY)))
    one = run_experiment(exp, segments=1, progress=False)
    ref, other = _reference(7, 0.4)
    # the same float32 computation on the same device; allow last-bit differences from fusion
    for name in ("raw", "tavg", "bold"):
        np.testing.assert_allclose(one.ys[name], np.asarray(ref[name]), rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(one.ts[name], np.asarray(ref.ts[name]), rtol=1e-7)
    assert one.ys["raw"].shape == (300, 2, 4) and one.labels["raw"] == ("r", "V")
    assert one.ys["bold"].shape == (3, 4) and one.labels["tavg"] == ("r",)
    # a different coupling gives a different run, so the comparison above can fail
    assert not np.allclose(one.ys["raw"], np.asarray(other["raw"]), rtol=1e-3)

    # three resumed segments (each 100 ms = one BOLD sample) continue the run exactly: same
    # noise stream, delay buffer and haemodynamic state
    three = run_experiment(exp, segments=3, progress=False)
    assert three.segments == 3
    for name in ("raw", "tavg", "bold"):
        np.testing.assert_allclose(three.ys[name], one.ys[name], rtol=1e-6, atol=1e-9)
        np.testing.assert_array_equal(three.ts[name], one.ts[name])
    with pytest.raises(ConfigError, match="segments=7"):
        run_experiment(exp, segments=7, progress=False)


def test_random_initial_state_is_the_one_simulate_draws(tmp_path):
    text = _edit(FAST, "[model.initial_state]\nr = 0.1\nV = -2.0\n", "")
    exp = build_experiment(load_config(_write(tmp_path, text.replace("50.0", "300.0"))))
    res = run_experiment(exp, progress=False)
    ref, _ = _reference(7, 0.4, noise=False, initial_state=False, bold=False)
    np.testing.assert_allclose(res.ys["raw"], np.asarray(ref["raw"]), rtol=1e-6, atol=1e-9)
    # not the configured initial state of TINY: the draw really comes from the seed
    assert not np.allclose(res.ys["raw"][0, :, 0], [0.1, -2.0], atol=0.05)


# --------------------------------------------------------------------------- CLI


def _summary(folder: Path) -> dict:
    return json.loads((folder / "summary.json").read_text())


def _check_folder(out: Path, cfg_path: Path, figures: bool = True) -> None:
    cfg = load_config(cfg_path, extra_sections=("fit",)).quick()
    mons = cfg.monitors.periods()
    assert (out / "config.toml").read_text() == cfg_path.read_text()
    versions = json.loads((out / "versions.json").read_text())
    assert versions["jax"] == jax.__version__ and versions["vbt_jax"] == vbt.__version__
    summary = _summary(out)
    assert summary["duration_ms"] == cfg.simulation.duration and summary["quick"] is True
    n = summary["connectome"]["n_regions"]
    if "raw" in mons or "tavg" in mons:
        with np.load(out / "timeseries.npz") as z:
            for name in ("raw", "tavg"):
                if name in mons:
                    t = z[f"{name}_times_ms"]
                    np.testing.assert_allclose(np.diff(t), mons[name], rtol=1e-5)
                    assert z[f"{name}_data"].shape == (t.size, z[f"{name}_labels"].size, n)
    for name in ("bold", "eeg"):
        assert (out / f"{name}.npz").exists() == (name in mons)
    if "bold" in mons:
        with np.load(out / "bold.npz") as z:
            np.testing.assert_allclose(z["times_ms"], mons["bold"] * np.arange(1, 4), rtol=1e-6)
            assert z["data"].shape == (3, n) and np.all(np.isfinite(z["data"]))
    if "eeg" in mons:
        with np.load(out / "eeg.npz") as z:
            assert z["data"].shape[1] == z["labels"].size == 62
            # average reference: the channel mean is zero at every sample
            np.testing.assert_allclose(
                z["data"].mean(axis=1), 0.0, atol=1e-5 * np.abs(z["data"]).max()
            )
    fc = np.load(out / "fc.npy")
    assert fc.shape == (n, n)
    np.testing.assert_allclose(fc, fc.T, atol=1e-6)
    np.testing.assert_allclose(np.diag(fc), 1.0, atol=1e-5)
    if cfg.connectome.source == "dk84":
        i, j = np.triu_indices(84, k=1)
        expected = scipy.stats.pearsonr(fc[i, j], vbt.dk84_empirical_fc()[i, j])[0]
        assert summary["fc_empirical_r"] == pytest.approx(expected, abs=1e-9)
    else:
        assert summary["fc_empirical_r"] is None
    pngs = {p.name for p in out.glob("*.png")}
    if figures:
        expected_pngs = {"fc.png"} | {f"timeseries_{m}.png" for m in ("raw", "tavg") if m in mons}
        expected_pngs |= {f"{m}.png" for m in ("bold", "eeg") if m in mons}
        assert pngs == expected_pngs
    else:
        assert not pngs


def _config_param(path: Path):
    marks = [] if path.stem == "mpr_dk84" else [pytest.mark.slow]
    return pytest.param(path, id=path.stem, marks=marks)


@pytest.mark.parametrize("cfg_path", [_config_param(p) for p in CONFIGS])
def test_shipped_config_runs_quick(tmp_path, cfg_path):
    cfg = load_config(cfg_path, extra_sections=("fit",))
    if cfg.connectome.source.startswith("tvb:") or cfg.monitors.eeg is not None:
        pytest.importorskip("tvb_data")
    out = tmp_path / "run"
    assert main(["simulate", str(cfg_path), "--quick", "--out", str(out), "--quiet"]) == 0
    _check_folder(out, cfg_path)
    assert not list(tmp_path.glob("*.partial-*"))


@pytest.mark.parametrize("cfg_path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_shipped_config_validates(cfg_path, capsys):
    """`vbt validate` accepts every shipped simulation and fit config, and for a fit config
    also reads its data and builds its priors (predict configs: test_predict_cli.py)."""
    cfg = load_config(cfg_path, extra_sections=("fit",))
    if cfg.connectome.source.startswith("tvb:") or cfg.monitors.eeg is not None:
        pytest.importorskip("tvb_data")
    assert main(["validate", str(cfg_path)]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert out.startswith(f"{cfg_path.resolve()}: OK") and "connectome" in out
    fit = tomllib.loads(cfg_path.read_text()).get("fit")
    if fit is not None:
        assert "[fit]" in out and "sampled values" in out and "engine" in out
    if fit is not None and fit.get("data", {}).get("band_power") == "meg_hansen":
        # regions the MEG maps do not cover are left out of the likelihood, and it says so
        from vbt_jax.readers import meg_band_power

        absent = int(meg_band_power(allow_missing=True).missing.sum())
        assert absent > 0 and f"; {absent} regions without values left out" in out


def test_shipped_configs_present():
    assert {p.stem for p in CONFIGS} >= {"mpr_dk84", "jr_eeg_tvb76", "rww_bold_dk84", "hopf_dk84"}


def test_failure_mid_write_leaves_no_folder(tmp_path, monkeypatch):
    from vbt_jax import _plot

    path = _write(tmp_path, FAST)
    (tmp_path / "runs").mkdir()
    out = tmp_path / "runs" / "a"

    def boom(*args, **kwargs):
        raise RuntimeError("disk full while drawing")

    monkeypatch.setattr(_plot, "plot_fc", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        main(["simulate", str(path), "--out", str(out), "--quiet"])
    # the partial folder had files in it (npz, json, earlier figures) and is gone
    assert not out.exists()
    assert list((tmp_path / "runs").iterdir()) == []


def test_divergence_reported_and_no_folder(tmp_path, capsys):
    path = _write(tmp_path, _edit(FAST, "G = 0.4", "G = 1e6"))
    out = tmp_path / "run"
    assert main(["simulate", str(path), "--out", str(out), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "diverged" in err and "[coupling] G" in err
    assert not out.exists() and not list(tmp_path.glob("run.partial-*"))


def test_no_overwrite_without_force(tmp_path, capsys):
    path = _write(tmp_path, FAST)
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("earlier results")
    assert main(["simulate", str(path), "--out", str(out), "--quiet"]) == 1
    assert "--force" in capsys.readouterr().err
    assert (out / "keep.txt").read_text() == "earlier results"

    args = ["simulate", str(path), "--out", str(out), "--quiet", "--force", "--no-figures"]
    assert main(args + ["--seed", "3", "--duration", "20"]) == 0
    assert not (out / "keep.txt").exists()
    summary = _summary(out)
    assert summary["cli_overrides"] == {"seed": 3, "duration": 20.0}
    assert summary["simulation"]["seed"] == 3
    with np.load(out / "timeseries.npz") as z:
        assert z["raw_data"].shape == (20, 2, 4)
    assert not list(out.glob("*.png"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["conn", "exp.toml", "run"]


def test_cli_prints_run_folders_as_absolute_paths(tmp_path, capsys, monkeypatch):
    """A relative --out is reported resolved ("wrote /abs/run"), so it can be found from
    any folder; stdout carries the same path alone (for scripts)."""
    path = _write(tmp_path, FAST)
    monkeypatch.chdir(tmp_path)
    assert main(["simulate", path.name, "--out", "run", "--no-figures"]) == 0
    cap = capsys.readouterr()
    out = (tmp_path / "run").resolve()
    assert f"wrote {out}" in cap.err and cap.out.strip() == str(out)


def test_validate_info_and_reserved_commands(tmp_path, capsys):
    path = _write(tmp_path, FAST)
    assert main(["validate", str(path)]) == 0
    out = capsys.readouterr().out
    assert "OK" in out and "4 regions" in out and "500 steps" in out
    bad = _write(tmp_path, _edit(FAST, "dt = 0.1", "dt = 0"), "bad.toml")
    assert main(["validate", str(bad)]) == 1
    assert "[simulation] dt must be a positive number (ms), got 0" in capsys.readouterr().err
    assert main(["info"]) == 0
    assert jax.__version__ in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["predict"])  # argparse usage error: the config is required
    with pytest.raises(SystemExit):
        main(["fit"])  # argparse usage error: the config is required
    with pytest.raises(SystemExit):
        main(["simulate"])  # argparse usage error


# ------------------------------------------------------------------ compilation cache


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"HOME": "/h"}, "/h/.cache/vbt_jax/xla"),
        ({"HOME": "/h", "XDG_CACHE_HOME": "/x"}, "/x/vbt_jax/xla"),
        ({"HOME": "/h", "VBT_CACHE_DIR": "/v"}, "/v"),
        ({"HOME": "/h", "VBT_CACHE_DIR": "off"}, None),
        ({"HOME": "/h", "VBT_CACHE_DIR": ""}, None),
        ({"HOME": "/h", "VBT_CACHE_DIR": "off", "JAX_COMPILATION_CACHE_DIR": "/j"}, "/j"),
    ],
)
def test_cache_dir_resolution(env, expected, monkeypatch):
    from vbt_jax._cli import _cache_dir

    monkeypatch.setenv("HOME", env["HOME"])  # what "~" expands to
    got = _cache_dir(env)
    assert (None if got is None else str(got)) == expected


def test_cli_keeps_compilation_cache_where_told(tmp_path):
    """A fresh ``vbt`` process writes its compiled programs into ``VBT_CACHE_DIR``; a second
    run of the same config loads them (JAX logs hits, no misses; same outputs);
    ``VBT_CACHE_DIR=off`` writes none."""
    import os
    import subprocess
    import sys

    path = _write(tmp_path, FAST)
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("JAX_COMPILATION_CACHE_DIR", "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS")
    }
    env["XDG_CACHE_HOME"] = str(tmp_path / "xdg")

    def vbt_run(*args, cache, log=False):
        cmd = [sys.executable, "-m", "vbt_jax._cli", *args]
        extra = {"VBT_CACHE_DIR": cache, "JAX_LOG_COMPILES": "1" if log else "0"}
        res = subprocess.run(cmd, env={**env, **extra}, capture_output=True, text=True)
        assert res.returncode == 0, res.stderr
        return res.stdout + res.stderr

    def simulate(out, cache, log=False):
        args = ("simulate", str(path), "--out", str(tmp_path / out), "--quiet", "--no-figures")
        return vbt_run(*args, cache=cache, log=log)

    cache = tmp_path / "cache"
    assert f"jax cache   {cache}" in vbt_run("info", cache=str(cache))
    simulate("a", str(cache))
    first = {p.name for p in cache.iterdir() if p.name.endswith("-cache")}
    assert first, "no compiled program was cached"
    log = simulate("b", str(cache), log=True)  # JAX then logs every cache hit and miss
    assert log.count("Persistent compilation cache hit") >= len(first) // 2, log
    assert "Persistent compilation cache miss" not in log, log
    with np.load(tmp_path / "a" / "timeseries.npz") as a:
        with np.load(tmp_path / "b" / "timeseries.npz") as b:
            np.testing.assert_array_equal(a["raw_data"], b["raw_data"])

    simulate("c", "off")
    assert not (tmp_path / "xdg" / "vbt_jax").exists()
    assert "off (VBT_CACHE_DIR)" in vbt_run("info", cache="off")


# ------------------------------------------------------------------------ EEG summary


def test_eeg_summary_against_scipy(tmp_path, capsys):
    """The ``eeg`` entry of summary.json (and the line printed) against a SciPy float64
    recomputation from the run folder's own eeg.npz: Welch PSD, parabolic alpha peak on the
    log channel-mean PSD, trapezoid band powers."""
    import scipy.integrate
    import scipy.signal

    pytest.importorskip("tvb_data")
    cfg = Path(__file__).parent.parent / "configs" / "jr_eeg_tvb76.toml"
    out = tmp_path / "jr"
    argv = ["simulate", str(cfg), "--duration", "6000", "--out", str(out), "--no-figures"]
    assert main(argv) == 0
    summary = json.loads((out / "summary.json").read_text())["eeg"]
    with np.load(out / "eeg.npz") as z:
        t, x = z["times_ms"], z["data"].astype(np.float64)
    x = x[t > 2000.0]  # the config's transient
    fs = 1000.0 / (t[1] - t[0])
    assert fs == summary["fs_hz"] == 500.0 and summary["seconds"] == x.shape[0] / fs == 4.0

    f, p = scipy.signal.welch(x, fs=fs, window="hann", nperseg=1000, noverlap=500, axis=0)
    mean = p.mean(axis=1)
    sel = np.flatnonzero((f >= 7.0) & (f <= 14.0))
    k = sel[np.argmax(mean[sel])]
    a, b, c = np.log(mean[k - 1 : k + 2])
    peak = f[k] + 0.5 * (a - c) / (a - 2 * b + c) * (f[1] - f[0])
    assert 9.0 < peak < 11.5, "Jansen-Rit at mu 0.26 is an alpha oscillator"
    np.testing.assert_allclose(summary["alpha_peak_hz"], peak, rtol=0, atol=1e-4)

    def power(lo, hi):
        m = (f >= lo) & (f <= hi)  # the band edges fall on the 0.5 Hz bins
        return scipy.integrate.trapezoid(mean[m], f[m])

    total = power(1.0, 60.0)
    for name, (lo, hi) in summary["bands_hz"].items():
        np.testing.assert_allclose(
            summary["relative_band_power"][name], power(lo, hi) / total, rtol=1e-4, err_msg=name
        )
    assert abs(sum(summary["relative_band_power"].values()) - 1.0) < 1e-5
    ch = summary["alpha_peak_hz_channels"]
    assert ch["min"] <= ch["median"] <= ch["max"]
    assert f"EEG: alpha peak {summary['alpha_peak_hz']:.2f} Hz" in capsys.readouterr().err


def test_eeg_summary_skips_short_signals():
    from vbt_jax._runfolder import eeg_spectrum

    t = 2.0 * np.arange(1, 401)  # 0.8 s at 500 Hz
    got = eeg_spectrum(t, np.random.default_rng(0).normal(size=(400, 3)), transient_ms=0.0)
    assert "needs >= 1 s" in got["skipped"]
    assert "fewer than 2" in eeg_spectrum(t, np.zeros((400, 3)), transient_ms=1e6)["skipped"]


def test_unusable_cache_folder_is_reported_once_and_skipped(tmp_path, capsys):
    from vbt_jax._cli import _use_compilation_cache

    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    assert _use_compilation_cache({"VBT_CACHE_DIR": str(blocker / "cache")}) is None
    err = capsys.readouterr().err
    assert f"compilation cache {blocker / 'cache'} is not usable" in err
    assert err.count("\n") == 1
