"""``vbt predict``: config validation, the twin reader, and the run folder against direct
computations (inference.treatment)."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import vbt_jax as vbt
from inference._arviz import from_dict
from inference._output import save_netcdf
from inference.treatment import load_predict_config, load_twin, predict_run_folder
from vbt_jax import ConfigError
from vbt_jax._cli import main

ROOT = Path(__file__).resolve().parents[1]
G0 = 8e-4


def _fake_twin(folder: Path, draws: int = 6, seed: int = 0) -> Path:
    """A run folder in the format `vbt fit` writes: posterior.nc (a, G) + config.toml."""
    conn = vbt.dk84()
    n = conn.n_regions
    rng = np.random.default_rng(seed)
    eta = -3.7 + 0.4 * rng.normal(size=(1, draws, n))
    G = G0 * np.exp(0.1 * rng.normal(size=(1, draws)))
    a = -G[..., None] * np.exp(eta)
    idata = from_dict(
        {"posterior": {"a": a.astype(np.float32), "G": G.astype(np.float32)}},
        coords={"region": list(conn.labels)},
        dims={"a": ["region"]},
    )
    folder.mkdir(parents=True)
    save_netcdf(idata, folder / "posterior.nc")
    shutil.copy(ROOT / "configs" / "fit_hopf_dk84.toml", folder / "config.toml")
    return folder


@pytest.fixture(scope="module")
def twin_dir(tmp_path_factory):
    return _fake_twin(tmp_path_factory.mktemp("twin") / "fit")


CONFIG = """
description = "test"
[predict]
twin = "{twin}"
doses = [0.0, 1.0, 3.0]
report_dose = 3.0
bands = {{ slow4 = [0.027, 0.073], slow5 = [0.01, 0.027] }}

[[predict.intervention]]
name = "psy"
kind = "drug"
preset = "psychedelic_5ht2a"

[[predict.intervention]]
name = "d2"
kind = "drug"
receptor = "D2"
efficacy = 0.4
ec50 = 2.0

[[predict.intervention]]
name = "lesion"
kind = "lesion"
regions = ["L.PCU"]
factor = 0.25

[[predict.intervention]]
name = "stim"
kind = "stimulation"
targets = ["R.RMFG", "L.RMFG"]
amplitude = -1e-6
"""


def _config(tmp_path, twin, text=CONFIG, name="p.toml"):
    p = tmp_path / name
    p.write_text(text.format(twin=twin))
    return p


def _fc(a, W, G):
    return np.asarray(vbt.hopf_fc_symmetric(np.asarray(a, np.float64), W, float(G)))


def _gbc(fc):
    return (fc.sum(1) - 1.0) / (fc.shape[0] - 1)


@pytest.fixture(scope="module")
def run(twin_dir, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pred")
    cfg = load_predict_config(_config(tmp, twin_dir))
    out = predict_run_folder(cfg, tmp / "out", progress=False)
    return cfg, out


def test_run_folder_contents(run):
    _, out = run
    for f in (
        "predictions.nc",
        "summary.csv",
        "ranking.csv",
        "report.md",
        "twin.json",
        "config.toml",
        "versions.json",
        "figures/dose_response.png",
        "figures/ranking.png",
        "figures/fc_change.png",
        "figures/gbc_change.png",
        "figures/band_power_change.png",
    ):
        assert (out / f).is_file(), f
    assert not list(out.parent.glob("out.partial-*"))
    report = (out / "report.md").read_text()
    assert "## Ranking at dose 3" in report and "figures/dose_response.png" in report
    info = json.loads((out / "twin.json").read_text())
    assert info["draws_used"] == 6 and info["kinds"]["lesion"] == "lesion"


def test_predictions_match_direct_computation(run, twin_dir):
    """Every number in the file against a direct float64 computation, one draw at a time."""
    import arviz as az

    cfg, out = run
    twin = load_twin(twin_dir)
    conn = vbt.dk84().normalised("max")  # the fit config's [connectome]
    W = np.asarray(conn.weights, np.float64)
    np.testing.assert_array_equal(twin.weights, W)
    labels = conn.labels
    ds = az.from_netcdf(out / "predictions.nc").predictions
    iu = np.triu_indices(len(labels), 1)
    rho_d2 = vbt.receptor_map("D2", labels, allow_missing=True).values
    ok = ~np.isnan(rho_d2)
    rho_d2 = np.where(ok, (rho_d2 - np.nanmin(rho_d2)) / (np.nanmax(rho_d2) - np.nanmin(rho_d2)), 0)
    Wl = W.copy()
    p = labels.index("L.PCU")
    Wl[p, :] *= 0.25
    Wl[:, p] *= 0.25
    W_pcu = Wl  # the self-connection is scaled once: it is a single entry of the mask
    W_pcu[p, p] = W[p, p] * 0.25
    off = np.zeros(len(labels))
    off[[labels.index("R.RMFG"), labels.index("L.RMFG")]] = -1e-6
    for d in (0, 4):
        a, G = twin.a[d], twin.G[d]
        fc0 = _fc(a, W, G)
        occ = 3.0 / (3.0 + 2.0)  # Hill 1, ec50 2, dose 3
        cases = {
            "d2": _fc(a * (1 + 0.4 * occ * rho_d2), W, G),
            "lesion": _fc(a, W_pcu, G),
            "stim": _fc(a + off, W, G),
        }
        for name, fc1 in cases.items():
            sel = dict(draw=d, intervention=name, dose=3.0)
            got = ds["gbc_change"].sel(**sel).values
            # float32 batched vs float64 direct: GBC changes are O(1e-3..1e-2)
            np.testing.assert_allclose(got, _gbc(fc1) - _gbc(fc0), atol=2e-6)
            np.testing.assert_allclose(
                ds["mean_fc_change"].sel(**sel).values, fc1[iu].mean() - fc0[iu].mean(), atol=2e-6
            )
        # the band powers at baseline: relative power in the two bands, in config order
        bp = np.asarray(
            vbt.hopf_band_power(
                a, twin.omega, W, G, 1.0, {"slow4": (0.027, 0.073), "slow5": (0.01, 0.027)}
            )
        )
        np.testing.assert_allclose(ds["band_power_base"].sel(draw=d).values, bp, atol=1e-5)
    # lesion and stimulation do not depend on the dose; a drug at dose 0 changes nothing
    g = ds["gbc_change"]
    np.testing.assert_array_equal(
        g.sel(intervention="lesion", dose=0.0).values, g.sel(intervention="lesion", dose=3.0)
    )
    assert np.all(g.sel(intervention="psy", dose=0.0).values == 0.0)
    assert list(ds["kind"].values) == ["drug", "drug", "lesion", "stimulation"]


def test_summary_csv_and_ranking(run):
    import csv

    import arviz as az

    cfg, out = run
    ds = az.from_netcdf(out / "predictions.nc").predictions
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert len(rows) == 4 * 3
    r = next(x for x in rows if x["intervention"] == "d2" and float(x["dose"]) == 3.0)
    m = ds["mean_fc_change"].sel(intervention="d2", dose=3.0).values
    assert float(r["mean_fc_change"]) == pytest.approx(m.mean(), rel=1e-5, abs=1e-9)
    assert float(r["mean_fc_change_lo"]) == pytest.approx(np.quantile(m, 0.05), rel=1e-5)
    dist, base = ds["distance"].values, ds["distance_base"].values
    k = 2
    p_imp = (dist[:, 1, k] < base).mean()
    assert float(r["prob_improves"]) == pytest.approx(p_imp)
    rank = {
        x["intervention"]: float(x["prob_best"])
        for x in csv.DictReader((out / "ranking.csv").open())
    }
    best = np.argmin(dist[:, :, k], axis=1)
    expect = np.bincount(best, minlength=4) / best.size
    assert [rank[n] for n in ("psy", "d2", "lesion", "stim")] == pytest.approx(expect.tolist())
    # best first by P(best), ties by P(improves): a P(best) of 0 does not hide P(improves)
    table = list(csv.DictReader((out / "ranking.csv").open()))
    assert [int(x["rank"]) for x in table] == [1, 2, 3, 4]
    keys = [(-float(x["prob_best"]), -float(x["prob_improves"])) for x in table]
    assert keys == sorted(keys)
    p_by_name = {x["intervention"]: float(x["prob_improves"]) for x in table}
    names = ("psy", "d2", "lesion", "stim")
    assert [p_by_name[n] for n in names] == pytest.approx(
        [(dist[:, i, k] < base).mean() for i in range(4)]
    )
    report = (out / "report.md").read_text()
    rows = [ln for ln in report.splitlines() if ln.startswith("| ") and ln[2].isdigit()]
    assert [ln.split(" | ")[1] for ln in rows[:4]] == [x["intervention"] for x in table]


def test_unstable_intervention_is_flagged(twin_dir, tmp_path):
    # a stimulation pushing one region far past its bifurcation: no stationary state
    text = CONFIG.replace("amplitude = -1e-6", "amplitude = 1.0")
    cfg = load_predict_config(_config(tmp_path, twin_dir, text))
    out = predict_run_folder(cfg, tmp_path / "out", progress=False, figures=False)
    import arviz as az

    ds = az.from_netcdf(out / "predictions.nc").predictions
    assert ds["unstable"].sel(intervention="stim").values.all()
    assert not ds["unstable"].sel(intervention="psy").values.any()
    assert np.isnan(ds["mean_fc"].sel(intervention="stim").values).all()
    assert (
        "pushes 100% of the posterior draws past the bifurcation" in (out / "report.md").read_text()
    )
    # an unstable intervention is never ranked best, nor said to improve: it comes last
    import pandas as pd

    rank = pd.read_csv(out / "ranking.csv", index_col="intervention")
    assert rank.loc["stim", "prob_best"] == 0 and rank.loc["stim", "prob_improves"] == 0
    assert rank.loc["stim", "prob_unstable"] == 1
    assert rank.loc["stim", "rank"] == rank["rank"].max()


@pytest.mark.parametrize(
    "old,new,match",
    [
        ("doses = [0.0, 1.0, 3.0]", "doses = [0.0, -1.0]", r"\[predict\] doses must be"),
        ("report_dose = 3.0", "report_dose = 2.0", "report_dose 2 is not one of doses"),
        ('preset = "psychedelic_5ht2a"', 'preset = "lsd"', "preset must be one of"),
        ('kind = "lesion"', 'kind = "surgery"', r"\[predict.intervention.2\] kind must be one of"),
        ('receptor = "D2"', 'receptor = "D9"', "receptor 'D9' is neither a map file"),
        (
            'receptor = "D2"',
            'receptor = "D2"\nvalue_column = "D2"',
            "value_column apply to a recep",
        ),
        ('regions = ["L.PCU"]', 'regions = ["L.XYZ"]', r"\[predict.intervention.2\].*L.XYZ"),
        ('targets = ["R.RMFG", "L.RMFG"]', "targets = []", "a stimulation needs targets"),
        ("efficacy = 0.4\n", "", "missing required key 'efficacy'"),
        ('name = "d2"', 'name = "psy"', "intervention names repeat"),
        ("[predict]", "[predict]\ndraw = 3", "unknown key 'draw' \\(did you mean 'draws'"),
        ("bands = {", "bandz = {", "unknown key 'bandz'"),
    ],
)
def test_config_errors_name_the_key(twin_dir, tmp_path, old, new, match):
    text = CONFIG.replace(old, new)
    assert text != CONFIG
    with pytest.raises(ConfigError, match=match):
        cfg = load_predict_config(_config(tmp_path, twin_dir, text))
        predict_run_folder(cfg, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()
    assert not list(tmp_path.glob("out.partial-*"))


def test_missing_twin_says_how_to_make_one(tmp_path):
    cfg = load_predict_config(_config(tmp_path, tmp_path / "nowhere"))
    with pytest.raises(ConfigError, match="is not a vbt fit run folder.*vbt fit configs"):
        predict_run_folder(cfg, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_cli_shipped_config_quick(twin_dir, tmp_path, capsys):
    """configs/predict_dk84.toml with tiny settings on a twin folder given by --twin."""
    out = tmp_path / "pred"
    rc = main(
        [
            "predict",
            str(ROOT / "configs" / "predict_dk84.toml"),
            "--twin",
            str(twin_dir),
            "--out",
            str(out),
            "--quick",
            "--quiet",
            "--no-figures",
        ]
    )
    assert rc == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert (out / "predictions.nc").is_file() and not (out / "figures").exists()
    # an existing folder is kept without --force
    rc = main(
        [
            "predict",
            str(ROOT / "configs" / "predict_dk84.toml"),
            "--twin",
            str(twin_dir),
            "--out",
            str(out),
            "--quick",
            "--quiet",
        ]
    )
    assert rc == 1 and "already exists" in capsys.readouterr().err
    # the shipped config's default twin is runs/demo next to the configs folder
    cfg = load_predict_config(ROOT / "configs" / "predict_dk84.toml")
    assert cfg.twin.resolve() == (ROOT / "runs" / "demo").resolve()


def test_observed_session_and_simulated_fcd(twin_dir, tmp_path):
    """[[predict.observed]] (a synthetic on-drug session of the twin at the configured
    efficacy) and [predict.simulate] (quick: one draw, 200 s) end to end."""
    import arviz as az

    twin = load_twin(twin_dir)
    W, labels = twin.weights, twin.labels
    from vbt_jax.interventions import psychedelic_5ht2a

    rho = np.asarray(psychedelic_5ht2a("hopf").regional_density(labels), np.float64)
    rng = np.random.default_rng(0)
    n = len(labels)
    iu = np.triu_indices(n, 1)

    def scan(fc):
        z = np.arctanh(fc[iu]) + rng.normal(size=iu[0].size) / np.sqrt(1200 - 3)
        m = np.eye(n)
        m[iu] = m.T[iu] = np.tanh(z)
        return m

    a, G = twin.a[2], twin.G[2]
    np.save(tmp_path / "pre.npy", scan(_fc(a, W, G)))
    np.save(tmp_path / "post.npy", scan(_fc(a * (1 - 0.5 * (3 / 4) * rho), W, G)))
    text = CONFIG + (
        '\n[[predict.observed]]\nintervention = "psy"\ndose = 3.0\nfc_pre = "pre.npy"\n'
        'fc_post = "post.npy"\nn_timepoints = 1200\n\n[predict.simulate]\ndraws = 1\n'
    )
    cfg = load_predict_config(_config(tmp_path, twin_dir, text)).quick()
    assert cfg.sim_draws == 1 and cfg.sim_duration == 200_000.0
    out = predict_run_folder(cfg, tmp_path / "out", progress=False)
    chk = json.loads((out / "observed_check.json").read_text())[0]
    assert chk["intervention"] == "psy" and chk["dose"] == 3.0
    # generated at the configured efficacy -0.5: not flagged, efficacy covered
    assert chk["p_mean_fc"] > 0.05
    lo, hi = chk["efficacy_interval"]
    assert lo <= -0.5 <= hi
    ds = az.from_netcdf(out / "predictions.nc").predictions
    assert ds["sim_fcd"].dims == ("sim_draw", "variant", "fcd_value")
    assert list(ds["variant"].values) == ["baseline", "psy", "d2", "lesion", "stim"]
    assert np.all(ds["sim_fcd_ks"].sel(variant="baseline").values == 0.0)
    fcd = ds["sim_fcd"].values
    assert np.all(np.isfinite(fcd)) and np.all(np.abs(fcd) <= 1.0)
    report = (out / "report.md").read_text()
    assert "## Checks against observed on-drug data" in report
    assert "## Simulated FCD at dose 3" in report
    assert (out / "figures" / "fcd.png").is_file()
    assert (out / "figures" / "observed_0.png").is_file()


def test_observed_section_errors(twin_dir, tmp_path):
    np.save(tmp_path / "post.npy", np.eye(84))
    base = CONFIG + (
        '\n[[predict.observed]]\nintervention = "lesion"\ndose = 1.0\nfc_pre = "dk84"\n'
        'fc_post = "post.npy"\nn_timepoints = 1200\n'
    )
    with pytest.raises(ConfigError, match=r"\[predict.observed.0\] intervention 'lesion' is a"):
        load_predict_config(_config(tmp_path, twin_dir, base))
    base = base.replace('intervention = "lesion"', 'intervention = "psy"')
    with pytest.raises(ConfigError, match="intervention 'LSD' is not one of"):
        load_predict_config(
            _config(
                tmp_path, twin_dir, base.replace('intervention = "psy"', 'intervention = "LSD"')
            )
        )
    with pytest.raises(ConfigError, match="fc_post 'nope.npy' not found"):
        load_predict_config(_config(tmp_path, twin_dir, base.replace("post.npy", "nope.npy")))
    with pytest.raises(ConfigError, match="n_timepoints must be an integer > 3"):
        load_predict_config(
            _config(tmp_path, twin_dir, base.replace("n_timepoints = 1200", "n_timepoints = 2"))
        )


def test_validate_reads_the_twin_and_every_file_before_compiling(twin_dir, tmp_path, capsys):
    """``vbt validate`` on a predict config loads the twin, places every intervention on its
    regions and reads the observed sessions, as ``vbt predict`` does before compiling."""
    np.save(tmp_path / "post.npy", np.eye(84))
    observed = (
        '\n[[predict.observed]]\nintervention = "psy"\ndose = 1.0\nfc_pre = "dk84"\n'
        'fc_post = "post.npy"\nn_timepoints = 1200\n'
    )
    good = _config(tmp_path, twin_dir, CONFIG + observed)
    assert main(["validate", str(good)]) == 0
    out = capsys.readouterr().out
    assert f"{good.resolve()}: OK" in out
    assert f"twin        {twin_dir.resolve()} (6 of 6 posterior draws, 84 regions)" in out
    assert "intervention lesion: lesion" in out and "observed    psy at dose 1" in out
    # an FC of another size: found by validate, naming the section, key, file and both sizes
    np.save(tmp_path / "post.npy", np.eye(76))
    assert main(["validate", str(good)]) == 1
    err = capsys.readouterr().err
    assert "[predict.observed.0] fc_post" in err and "76 x 76; the twin has 84" in err
    # a stimulation target the twin does not have
    bad = _config(tmp_path, twin_dir, CONFIG.replace('"R.RMFG"', '"R.XYZ"'), name="q.toml")
    assert main(["validate", str(bad)]) == 1
    assert "R.XYZ" in capsys.readouterr().err


def test_receptor_map_file_with_a_named_column(twin_dir, tmp_path):
    """A drug's receptor file is read by its label and value columns; its densities must be
    >= 0 and cover every region unless the config says otherwise."""
    from inference.treatment._twin import build_interventions

    labels = vbt.dk84().labels
    dens = np.linspace(0.5, 2.0, 84)
    dens[7] = -0.5
    rows = [f"{lab},{float(dens[k])!r},{1.0 + k}\n" for k, lab in enumerate(labels) if k != 3]
    (tmp_path / "pet.csv").write_text("region,D2,D1\n" + "".join(rows))

    def config(column, more=""):
        drug = f'receptor = "pet.csv"\nlabel_column = "region"\nvalue_column = "{column}"\n'
        text = CONFIG.replace('receptor = "D2"\n', drug + more)
        return load_predict_config(_config(tmp_path, twin_dir, text))

    absent = rf"pet.csv: no value for 1 of 84 regions \(absent from the file\): \['{labels[3]}'\]"
    with pytest.raises(ConfigError, match=rf"\[predict.intervention.1\] \('d2'\): .*{absent}"):
        build_interventions(config("D1"), labels)
    drugs = build_interventions(config("D1", "allow_missing = true\n"), labels)
    expect = np.arange(84) / 83.0  # the D1 column (1 + k) min-max scaled; region 3 absent: 0
    expect[3] = 0.0
    np.testing.assert_allclose(np.asarray(drugs["d2"].regional_density(labels)), expect, atol=1e-6)
    with pytest.raises(ConfigError, match=rf"pet.csv: densities must be >= 0, but region "
                       rf"'{labels[7]}' \(region 7\) has -0.5"):  # fmt: skip
        build_interventions(config("D2", "allow_missing = true\n"), labels)
    drugs = build_interventions(config("D2", "allow_missing = true\ndensity = false\n"), labels)
    assert float(drugs["d2"].regional_density(labels)[7]) == 0.0  # the minimum of the map


def test_validate_summary_names_files_and_settings(twin_dir, tmp_path, capsys):
    """The summary gives the twin's regions, the doses, the target's source and distance, what
    each intervention acts on and a receptor map file by its absolute path."""
    labels = vbt.dk84().labels
    np.save(tmp_path / "d1.npy", np.linspace(0.0, 1.0, len(labels)))
    text = CONFIG + (
        '\n[[predict.intervention]]\nname = "own map"\nkind = "drug"\nreceptor = "d1.npy"\n'
        'parameter = "a"\nefficacy = 0.3\n'
    )
    text = text.replace("report_dose", 'target_fc = "dk84"\nreport_dose')
    path = _config(tmp_path, twin_dir, text)
    assert main(["validate", str(path)]) == 0
    out = capsys.readouterr().out
    assert "regions     84 (dk84_hcp: L.BSTS, L.CACG, L.CMFG, ..., R.CER)" in out
    assert f"fit config  {twin_dir.resolve() / 'config.toml'}" in out
    assert "doses       0, 1, 3 x EC50 (report at 3)" in out
    assert "target      FC 84 x 84 from dk84; distance corr" in out
    assert "intervention psy: drug, preset psychedelic_5ht2a" in out
    assert "intervention d2: drug, receptor D2" in out
    assert f"intervention own map: drug, receptor map {(tmp_path / 'd1.npy').resolve()}" in out
    assert "intervention lesion: lesion, L.PCU scaled by 0.25" in out
    assert "intervention stim: stimulation, targets R.RMFG, L.RMFG" in out


def _bad_receptor(tmp_path, case: str) -> tuple[str, str]:
    """A drug on a receptor map file that does not fit the twin, and what the error says."""
    if case == "npy":
        np.save(tmp_path / "rec.npy", np.ones(76))
        return "rec.npy", "must be (N,) in connectome order with N = 84, got shape (76,)"
    (tmp_path / "rec.csv").write_text("label,value\nnot_a_region,1.0\nnor_this,2.0\n")
    return "rec.csv", "not_a_region"


@pytest.mark.parametrize("case", ["npy", "csv"])
def test_validate_fails_on_a_bad_receptor_map_as_predict_does(
    twin_dir, tmp_path, capsys, monkeypatch, case
):
    """A receptor map file of another length, or whose labels name none of the twin's regions,
    fails ``vbt validate`` with the message ``vbt predict`` gives (naming the config, the
    intervention's table and the file), before anything is predicted."""
    import inference.treatment._effects as effects

    def no_prediction(*args, **kwargs):
        raise AssertionError("nothing may be predicted from an invalid config")

    monkeypatch.setattr(effects, "predict_interventions", no_prediction)
    name, says = _bad_receptor(tmp_path, case)
    text = CONFIG.replace('receptor = "D2"', f'receptor = "{name}"\nparameter = "a"')
    path = _config(tmp_path, twin_dir, text)
    assert main(["validate", str(path)]) == 1
    err_validate = capsys.readouterr().err
    assert err_validate.startswith(
        f"vbt validate: error: {path.resolve()}: [predict.intervention.1] ('d2'): "
    )
    assert str((tmp_path / name).resolve()) in err_validate and says in err_validate
    assert main(["predict", str(path), "--out", str(tmp_path / "out"), "--quiet"]) == 1
    err_predict = capsys.readouterr().err
    assert err_predict.removeprefix("vbt predict: ") == err_validate.removeprefix("vbt validate: ")
    assert not (tmp_path / "out").exists()


def test_validate_reads_target_fc_labels(twin_dir, tmp_path, capsys):
    """A target FC table whose header names the regions in another order is refused, naming
    the key, the file and the first differing label on both sides."""
    labels = list(vbt.dk84().labels)
    swapped = labels[:]
    swapped[0], swapped[1] = swapped[1], swapped[0]
    fc = np.asarray(vbt.dk84_empirical_fc(), float)
    np.fill_diagonal(fc, 1.0)
    table = tmp_path / "target.tsv"
    np.savetxt(table, fc, delimiter="\t", header="\t".join(swapped), comments="")
    text = CONFIG.replace("report_dose", 'target_fc = "target.tsv"\nreport_dose')
    path = _config(tmp_path, twin_dir, text)
    assert main(["validate", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"[predict] target_fc {table.resolve()}: region labels differ" in err
    assert f"index 0: file {swapped[0]!r} vs twin {labels[0]!r}" in err
    np.savetxt(table, fc, delimiter="\t", header="\t".join(labels), comments="")
    assert main(["validate", str(path)]) == 0
    assert f"target      FC 84 x 84 from {table.resolve()}" in capsys.readouterr().out


def test_shipped_predict_configs_validate(twin_dir, tmp_path, capsys):
    """Every shipped predict config validates against a twin (its twin key pointed at one)."""
    import tomllib

    configs = sorted((ROOT / "configs").glob("*.toml"))
    shipped = [p for p in configs if "predict" in tomllib.loads(p.read_text())]
    assert shipped
    for src in shipped:
        text = src.read_text()
        twin = tomllib.loads(text)["predict"]["twin"]
        path = tmp_path / src.name
        path.write_text(text.replace(f'"{twin}"', f'"{twin_dir}"', 1))
        assert main(["validate", str(path)]) == 0, capsys.readouterr().err
        assert f"{path.resolve()}: OK" in capsys.readouterr().out


def test_predict_prints_absolute_paths(twin_dir, tmp_path, capsys, monkeypatch):
    """A relative --out is reported resolved, with the report's path."""
    path = _config(tmp_path, twin_dir)
    monkeypatch.chdir(tmp_path)
    assert main(["predict", path.name, "--out", "pred", "--draws", "3", "--no-figures"]) == 0
    cap = capsys.readouterr()
    out = (tmp_path / "pred").resolve()
    assert f"wrote {out} (report: {out / 'report.md'})" in cap.err
    assert f"posterior draws of {twin_dir.resolve()}" in cap.err
    assert cap.out.strip() == str(out)
