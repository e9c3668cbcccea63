"""Every shipped fit config runs end to end with tiny settings (``vbt fit --quick``)."""

from __future__ import annotations

import json
import math
import tomllib
from pathlib import Path

import numpy as np
import pytest
from conftest import QUICK_DEMO_GROUP

from vbt_jax._cli import main

CONFIGS = sorted((Path(__file__).parent.parent / "configs").glob("*.toml"))
FIT_CONFIGS = [p for p in CONFIGS if "fit" in tomllib.loads(p.read_text())]


def test_fit_configs_present():
    assert {p.stem for p in FIT_CONFIGS} >= {"fit_hopf_dk84", "fit_hopf_fc_meg_dk84"}


def _quick_case(path):
    # the demo's quick fit is the session's shared one (conftest.quick_demo_fit)
    marks = [QUICK_DEMO_GROUP] if path.stem == "fit_hopf_dk84" else []
    return pytest.param(path, id=path.stem, marks=marks)


@pytest.mark.slow
@pytest.mark.parametrize("cfg_path", [_quick_case(p) for p in FIT_CONFIGS])
def test_fit_config_runs_quick(tmp_path, cfg_path, request):
    """`vbt fit --quick` writes a complete run folder with figures, removes its checkpoint and
    refuses to overwrite the folder without --force."""
    if cfg_path.stem == "fit_hopf_dk84":
        out = request.getfixturevalue("quick_demo_fit")
        tmp_path = out.parent
    else:
        out = tmp_path / "fit"
        assert main(["fit", str(cfg_path), "--quick", "--out", str(out), "--quiet"]) == 0
    argv = ["fit", str(cfg_path.resolve()), "--quick", "--out", str(out), "--quiet"]
    names = {p.name for p in out.iterdir()}
    assert {
        "posterior.nc",
        "summary.csv",
        "summary.md",
        "fit_quality.json",
        "config.toml",
        "versions.json",
        "fc_predicted.npy",
    } <= names
    q = json.loads((out / "fit_quality.json").read_text())
    # even a quick chain must beat the structural connectome itself as a predictor of the
    # held-out edges (log weights, scored on the same edges: r ~ 0.45)
    assert q["fc_r_heldout"] > q["baseline_sc_r_heldout"]
    assert 0.0 < q["baseline_regional_r_heldout"] < 1.0
    assert 0.0 <= q["heldout_coverage_90"] <= 1.0
    assert math.isfinite(q["sim_fc_r_all"]) and q["sim_check"] == "ok"
    # every shipped fit config names its likelihood route, in the JSON and the summary
    forward = tomllib.loads(cfg_path.read_text())["fit"]["forward"]
    route = {"hopf_linear": "linearised", "linearised": "linearised", "simulate": "simulation"}[
        forward
    ]
    assert q["route"] == route
    assert f"likelihood route: {route}." in (out / "summary.md").read_text()
    # convergence is reported even when it is fine, in the terms of the engine
    engine = tomllib.loads(cfg_path.read_text())["fit"]["engine"]
    if engine == "nuts":
        # (a quick run has one chain: R-hat is then reported as undefined)
        assert isinstance(q["divergences"], int) and "r_hat_max" in q
    else:
        assert q["divergences"] is None and math.isfinite(q["svi_loss_drift"])
        assert "SVI loss over the last tenth" in (out / "summary.md").read_text()
    assert "worst R-hat" in (out / "summary.md").read_text()
    figs = {p.name for p in (out / "figures").iterdir()}
    regional = [
        k
        for k, v in tomllib.loads(cfg_path.read_text())["fit"]["priors"].items()
        if v.get("regional")
    ]
    assert {"prior_posterior.png", "trace_rank.png", "fc_fit.png"} <= figs
    assert {f"regional_{k}.png" for k in regional} <= figs
    if "band_power_r" in q:
        assert q["band_power_r"] > 0.5 and "band_power_fit.png" in figs
    assert (out / "config.toml").read_text() == cfg_path.read_text()
    assert not list(tmp_path.glob("*.partial-*"))
    assert not (tmp_path / "fit.checkpoint").exists()
    assert main(argv) == 1


def _bold_config(tmp_path, data_lines: str) -> Path:
    base = (Path(__file__).parent.parent / "configs" / "fit_hopf_dk84.toml").read_text()
    text = base.replace('fc = "dk84"', data_lines)
    path = tmp_path / "fit_bold.toml"
    path.write_text(text)
    return path


def _subject_series(n_vol: int, n_regions: int = 84, seed: int = 0) -> np.ndarray:
    """One synthetic subject: volumes drawn from the analytic Hopf covariance (dk84)."""
    import jax.numpy as jnp

    import vbt_jax as vbt

    conn = vbt.dk84().normalised("max")
    a = -8e-4 * np.exp(np.random.default_rng(seed).normal(-3.7, 0.5, size=n_regions))
    cov = np.asarray(
        vbt.hopf_covariance_symmetric(jnp.asarray(a), jnp.asarray(conn.weights), 8e-4, 1e-10),
        float,
    )
    rng = np.random.default_rng(seed + 1)
    return rng.multivariate_normal(np.zeros(n_regions), cov, size=n_vol)


def test_fit_from_region_timeseries(tmp_path):
    """[fit.data] bold = a time x region table: FC and the number of volumes come from it."""
    import vbt_jax as vbt
    from inference.fit import load_fit_config, setup_fit

    x = _subject_series(300)
    labels = vbt.dk84().labels
    table = tmp_path / "sub-01_regions.tsv"
    np.savetxt(table, x, delimiter="\t", header="\t".join(labels), comments="")
    cfg = load_fit_config(_bold_config(tmp_path, f'bold = "{table.name}"\ntr = 0.72'))
    setup = setup_fit(cfg)
    lik = setup.twin.likelihoods[0]
    assert lik.n_timepoints == 300
    # the loader removes each region's linear trend (and z-scores, which leaves r unchanged)
    from scipy.signal import detrend

    want = np.corrcoef(detrend(x, axis=0, type="linear"), rowvar=False)
    np.testing.assert_allclose(setup.fc, want, atol=1e-10)
    i, j = lik.index
    np.testing.assert_allclose(setup.data["fc"], np.arctanh(want[i, j]), atol=1e-8)
    # the same subject stored region x time, said so with time_axis = 1
    table_t = tmp_path / "sub-01_regions_by_time.tsv"
    np.savetxt(table_t, x.T, delimiter="\t")
    cfg_t = load_fit_config(
        _bold_config(tmp_path, f'bold = "{table_t.name}"\ntr = 0.72\ntime_axis = 1')
    )
    setup_t = setup_fit(cfg_t)
    assert setup_t.twin.likelihoods[0].n_timepoints == 300
    np.testing.assert_allclose(setup_t.fc, want, atol=1e-10)


def test_fit_bold_errors(tmp_path):
    from inference.fit import load_fit_config, setup_fit
    from vbt_jax import ConfigError, ShapeError

    x = _subject_series(200)[:, :83]
    table = tmp_path / "short.tsv"
    np.savetxt(table, x, delimiter="\t")
    with pytest.raises(ConfigError, match="tr"):
        load_fit_config(_bold_config(tmp_path, f'bold = "{table.name}"'))
    with pytest.raises(ConfigError, match="atlas"):
        (tmp_path / "b.nii.gz").write_bytes(b"")
        load_fit_config(_bold_config(tmp_path, 'bold = "b.nii.gz"'))
    cfg = load_fit_config(_bold_config(tmp_path, f'bold = "{table.name}"\ntr = 0.72'))
    with pytest.raises(ShapeError, match="short.tsv: 83 regions.*has 84"):
        setup_fit(cfg)
    with pytest.raises(
        ConfigError, match=r"\[fit.data\].*time_axis must be 0 \(rows are volumes\)"
    ):
        load_fit_config(_bold_config(tmp_path, f'bold = "{table.name}"\ntr = 0.72\ntime_axis = 2'))
    with pytest.raises(ConfigError, match="time_axis apply to a bold series"):
        load_fit_config(_bold_config(tmp_path, 'fc = "dk84"\ntime_axis = 1'))
    # a region x time table read as time x region: refused before anything compiles
    np.savetxt(tmp_path / "by_region.tsv", _subject_series(200).T, delimiter="\t")
    cfg = load_fit_config(_bold_config(tmp_path, 'bold = "by_region.tsv"\ntr = 0.72'))
    with pytest.raises(ShapeError, match=r"by_region.tsv: the table looks transposed: shape "
                       r"\(84, 200\).*\[fit.data\] time_axis = 1"):  # fmt: skip
        setup_fit(cfg)


def test_validate_checks_the_fit_data_before_compiling(tmp_path, capsys):
    """``vbt validate`` on a fit config reads its data as ``vbt fit`` would and prints what
    will be fitted: the regions, the data file (absolute), the sampled values and the engine."""
    x = _subject_series(200)
    table = tmp_path / "sub.tsv"
    np.savetxt(table, x, delimiter="\t")
    good = _bold_config(tmp_path, f'bold = "{table.name}"\ntr = 0.72')
    assert main(["validate", str(good)]) == 0
    out = capsys.readouterr().out
    assert "[fit]" in out and f"data        FC 84 x 84 from {table.resolve()}; volumes 200" in out
    assert "regions     84 (dk84_hcp: L.BSTS, L.CACG, L.CMFG, ..., R.CER)" in out
    assert "bold        tr 0.72 s" in out
    # G, a_mu, a_beta, a_tau, 84 regional values (partially centred: their decentred site is
    # sampled), sigma_fc
    assert "prior       a: regional, maps strength, centring learnt before sampling" in out
    sampled = "G 1, a_mu 1, a_beta 1, a_tau 1, a_eta_decentered 84, sigma_fc 1"
    assert f"parameters  89 sampled values ({sampled})" in out
    assert "engine      nuts, 2 chain(s) x (500 warm-up + 2000 draws), target_accept 0.95" in out


def _bad_data(tmp_path, case: str) -> tuple[Path, str]:
    """A fit config whose data do not fit the DK-84 connectome, and what the error must say."""
    import vbt_jax as vbt

    labels = list(vbt.dk84().labels)
    x = _subject_series(200)
    if case == "regions":
        np.savetxt(tmp_path / "sub.tsv", x[:, :83], delimiter="\t")
        return _bold_config(tmp_path, 'bold = "sub.tsv"\ntr = 0.72'), "83 regions"
    if case == "labels":
        labels[5], labels[6] = labels[6], labels[5]
        np.savetxt(tmp_path / "sub.tsv", x, delimiter="\t", header="\t".join(labels), comments="")
        return _bold_config(
            tmp_path, 'bold = "sub.tsv"\ntr = 0.72'
        ), f"index 5: time series {labels[5]!r}"
    if case == "fc":
        np.save(tmp_path / "fc.npy", np.eye(76))
        return _bold_config(tmp_path, 'fc = "fc.npy"'), "fc.npy"
    if case == "map":
        np.save(tmp_path / "map.npy", np.ones(68))
        text = _bold_config(tmp_path, 'fc = "dk84"').read_text()
        path = tmp_path / "fit_bold.toml"
        path.write_text(text.replace('maps = ["strength"]', 'maps = ["map.npy"]'))
        return path, "with N = 84, got shape (68,)"
    np.savez(tmp_path / "ref.npz", edges=np.linspace(0, 1, 11), hist=np.ones(9))
    text = _bold_config(tmp_path, 'fc = "dk84"').read_text()
    path = tmp_path / "fit_bold.toml"
    path.write_text(text.replace('fcd_reference = "dk84"', 'fcd_reference = "ref.npz"'))
    return path, "edges must be (B + 1,) and hist (B,), got (11,) and (9,)"


@pytest.mark.parametrize("case", ["regions", "labels", "fc", "fcd_reference", "map"])
def test_validate_fails_as_fit_does(tmp_path, capsys, monkeypatch, case):
    """Data that do not fit the connectome (a BOLD table with 83 regions or two labels
    swapped, an FC matrix of another size, a malformed FCD reference, a prior's map file of
    another length) fail ``vbt validate``
    with exactly the message ``vbt fit`` gives, naming the config's section and key and the
    data file; neither gets as far as the sampler."""
    import inference.fit._job as job

    def no_engine(*args, **kwargs):
        raise AssertionError("the sampler must not start on invalid data")

    monkeypatch.setattr(job, "run_engine", no_engine)
    path, says = _bad_data(tmp_path, case)
    assert main(["validate", str(path)]) == 1
    err_validate = capsys.readouterr().err
    key = {"fcd_reference": "[fit.data] fcd_reference", "fc": "[fit.data] fc"}.get(
        case, "[fit.priors.a] maps 'map.npy'" if case == "map" else "[fit.data] bold"
    )
    assert err_validate.startswith(f"vbt validate: error: {path.resolve()}: {key}")
    assert says in err_validate
    assert main(["fit", str(path), "--out", str(tmp_path / "out"), "--quiet"]) == 1
    err_fit = capsys.readouterr().err
    assert err_fit.removeprefix("vbt fit: ") == err_validate.removeprefix("vbt validate: ")
    assert not (tmp_path / "out").exists()


def test_simulate_check_leaves_out_diverged_draws():
    """A posterior draw whose simulation diverges is counted, warned about and left out of the
    FC/FCD check instead of failing the fit; if every draw diverges, the error says so."""
    import dataclasses

    from inference.fit import load_fit_config, setup_fit, simulate_check

    cfg = load_fit_config(Path(__file__).parent.parent / "configs" / "fit_hopf_dk84.toml")
    cfg = dataclasses.replace(cfg, experiment=cfg.experiment.with_simulation(duration=80_000.0))
    setup = setup_fit(cfg)
    n = setup.fc.shape[0]
    a_ok = np.full(n, -8e-4 * math.exp(-3.7))
    a_bad = np.full(n, 10.0)  # growth x 11 per 1 ms step: overflows within ~40 steps
    flat = {"G": np.full(3, 8e-4), "a": np.stack([a_ok, a_bad, a_ok])}
    with pytest.warns(RuntimeWarning, match="1 of 3 posterior draws diverged"):
        q, fc_sim, _ = simulate_check(setup, flat, 3, progress=False)
    assert q["sim_diverged"] == 1 and q["sim_draws"] == 2
    assert len(q["sim_fc_r_per_draw"]) == 2
    assert np.isfinite(fc_sim).all() and math.isfinite(q["sim_fc_r_all"])
    q, fc_sim, _ = simulate_check(
        setup, {"G": flat["G"][:2], "a": np.stack([a_bad, a_bad])}, 2, False
    )
    assert q["sim_check"] == "failed" and fc_sim is None
    assert "every one of the 2 simulated posterior draws diverged" in q["sim_check_reason"]


def test_simulate_check_detects_draws_the_step_cannot_integrate():
    """Draws whose fast modes make the Heun step at dt = 1 ms unstable (a = -3/ms: |R(-3)| =
    2.5 per step) are not simulated; the advice names the step that would be stable (2/3 ms
    for a real mode) and the range of a that separates them."""
    import dataclasses

    from inference.fit import load_fit_config, setup_fit, simulate_check

    cfg = load_fit_config(Path(__file__).parent.parent / "configs" / "fit_hopf_dk84.toml")
    cfg = dataclasses.replace(cfg, experiment=cfg.experiment.with_simulation(duration=80_000.0))
    setup = setup_fit(cfg)
    n = setup.fc.shape[0]
    a_ok = np.full(n, -8e-4 * math.exp(-3.7))
    a_fast = np.full(n, -3.0)
    flat = {"G": np.full(3, 8e-4), "a": np.stack([a_ok, a_fast, a_ok])}
    with pytest.warns(RuntimeWarning, match="1 of 3 check draws make the explicit heun step"):
        q, fc_sim, _ = simulate_check(setup, flat, 3, progress=False)
    assert q["sim_unstable"] == 1 and q["sim_draws"] == 2 and q["sim_diverged"] == 0
    assert q["sim_check"] == "ok" and np.isfinite(fc_sim).all()
    advice = q["sim_unstable_advice"]
    dt_ok = float(advice.split("dt <= ")[1].split(" ms")[0])
    # the coupling (G ~ 8e-4/ms) shifts the local rate of -3/ms by less than 0.1%
    assert dt_ok == pytest.approx(2 / 3, rel=2e-3)
    assert "a in [-3, -3] for unstable draws" in advice
    with pytest.warns(RuntimeWarning):
        q, fc_sim, _ = simulate_check(setup, {"G": flat["G"][:1], "a": a_fast[None]}, 1, False)
    assert q["sim_check"] == "failed" and fc_sim is None and "dt <=" in q["sim_check_reason"]


def test_fit_writes_the_posterior_when_the_simulated_check_fails(tmp_path):
    """Noise that overflows every simulated draw fails the check, not the fit: the run folder
    is written with the check marked failed and the reason in fit_quality.json and summary.md;
    the convergence entries are there even for SVI, where they do not apply."""
    from inference.fit import fit_run_folder, load_fit_config

    base = (Path(__file__).parent.parent / "configs" / "fit_hopf_dk84.toml").read_text()
    text = (
        base.replace("nsig = [2e-10, 2e-10]", "nsig = [1e36, 1e36]")
        .replace('engine = "nuts"', 'engine = "svi"')
        .replace("duration = 740000.0", "duration = 80000.0")
    )
    path = tmp_path / "fit_noisy.toml"
    path.write_text(text)
    cfg = load_fit_config(path).quick()
    out = fit_run_folder(cfg, tmp_path / "run", progress=False, figures=False)
    q = json.loads((out / "fit_quality.json").read_text())
    assert q["sim_check"] == "failed" and "diverged" in q["sim_check_reason"]
    assert (out / "posterior.nc").is_file() and math.isfinite(q["fc_r_heldout"])
    assert q["divergences"] is None and q["r_hat_max"] is None
    md = (out / "summary.md").read_text()
    assert "simulated FC/FCD check: failed" in md and "divergent transitions: not applicable" in md
    assert not (tmp_path / "run.checkpoint").exists()
