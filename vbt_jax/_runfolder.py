"""Run an :class:`~vbt_jax.config.Experiment` and write its run folder (``vbt simulate``).

A run folder holds:

- ``config.toml``: a verbatim copy of the configuration file;
- ``versions.json``: python, jax, jaxlib, numpy, vbt_jax, platform, device;
- ``timeseries.npz``: for each of the ``raw`` and ``tavg`` monitors, ``<name>_data``
  ``(T, V, N)``, ``<name>_times_ms`` ``(T,)``, ``<name>_labels`` ``(V,)`` (variable names),
  plus ``regions`` ``(N,)``;
- ``bold.npz`` (with a BOLD monitor): ``data`` ``(T, N)``, ``times_ms``, ``labels`` (regions);
- ``eeg.npz`` (with an EEG monitor): ``data`` ``(T, M)``, ``times_ms``, ``labels`` (channels);
- ``fc.npy``: ``(N, N)`` functional connectivity of the BOLD signal if present, otherwise of the
  model's BOLD-drive variable in the ``tavg`` (else ``raw``) output; samples up to
  ``[simulation] transient`` are left out;
- ``summary.json``: durations, wall/compile/run times, output shapes, the FC source and, for the
  ``dk84`` connectome, the correlation of the simulated with the empirical FC; with an EEG
  monitor, ``eeg``: the alpha peak frequency and the relative band powers of the channel-mean
  Welch PSD after the transient (see :func:`eeg_spectrum`);
- PNG figures: ``timeseries_<raw|tavg>.png``, ``bold.png``, ``eeg.png``, ``fc.png``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import _plot
from ._errors import ConfigError, DivergenceError
from .config import Experiment
from .features import upper_r


@dataclass(frozen=True, eq=False)
class RunResult:
    """Outputs of :func:`run_experiment`, as NumPy arrays.

    Attributes:
        ys: monitor name -> samples (first axis time), segments concatenated.
        ts: monitor name -> sample times [ms] from the start of the run.
        labels: monitor name -> names of the variable axis (``raw``/``tavg``), else ``()``.
        final_state: ``(n_states, N)`` state at the end.
        compile_time_s: seconds spent tracing and compiling (once).
        run_time_s: seconds spent running the compiled simulation (all segments).
        segments: how many consecutive ``simulate`` calls made up the run.
    """

    ys: dict[str, np.ndarray]
    ts: dict[str, np.ndarray]
    labels: dict[str, tuple[str, ...]]
    final_state: np.ndarray
    compile_time_s: float
    run_time_s: float
    segments: int


def _period_steps(exp: Experiment) -> int:
    """Steps of the monitors' common sampling period (lcm of every monitor's period)."""
    sim = exp.config.simulation
    return math.lcm(*(round(p / sim.dt) for p in exp.config.monitors.periods().values()))


def auto_segments(exp: Experiment, *, max_segments: int = 10, min_steps: int = 1_000_000) -> int:
    """How many segments to split a run into for progress reporting.

    1 for runs of fewer than ``min_steps`` integration steps (a second compiled function, for
    the resumed calls, would cost more than the progress bar is worth) or whose duration is not
    a whole number of the monitors' common sampling period; otherwise the largest
    ``K <= max_segments`` that splits the run into equal segments of whole common periods.
    """
    sim = exp.config.simulation
    total, common = round(sim.duration / sim.dt), _period_steps(exp)
    if total < min_steps or total % common:
        return 1
    n_periods = total // common
    return max(k for k in range(1, max_segments + 1) if n_periods % k == 0)


def _segment_duration(exp: Experiment, segments: int) -> float:
    """Duration of one segment [ms]; segments must end on every monitor's sample boundary."""
    cfg = exp.config
    sim = cfg.simulation
    if isinstance(segments, bool) or not isinstance(segments, int) or segments < 1:
        raise ConfigError(f"segments must be a positive integer, got {segments!r}")
    if segments == 1:
        return sim.duration
    total = round(sim.duration / sim.dt)
    common = _period_steps(exp)
    if total % segments or (total // segments) % common:
        raise ConfigError(
            f"{cfg.path}: segments={segments}: duration={sim.duration} ms ({total} steps) does "
            f"not split into {segments} segments of a whole number of {common * sim.dt:g} ms "
            f"(the monitors' common sampling period)"
        )
    return (total // segments) * sim.dt


def run_experiment(
    exp: Experiment, *, segments: int | None = None, progress: bool = True
) -> RunResult:
    """Compile and run the experiment, as one or several exactly continued segments.

    The result equals ``simulate(model, connectome, key=jax.random.key(seed), ...)`` with the
    config's settings whatever the number of segments: segment ``k > 0`` continues the previous
    one with ``simulate(..., resume=sol.final)`` (same noise stream, delay buffer and monitor
    states), so splitting only adds a progress bar that advances per segment. Splitting
    compiles a second function (the resumed call), so short runs are not split by default.

    Args:
        exp: the built experiment.
        segments: number of equal consecutive ``simulate`` calls; None picks
            :func:`auto_segments`. Each must be a whole number of every monitor's period.
        progress: show messages and a tqdm bar on stderr.

    Returns:
        A :class:`RunResult`.

    Raises:
        ConfigError: ``segments`` does not divide the run into whole sampling periods.
        DivergenceError: the simulation produced NaN/inf.
    """
    import jax
    import jax.random as jr
    from tqdm.auto import tqdm

    from ._integrate import simulate

    cfg = exp.config
    sim = cfg.simulation
    if segments is None:
        segments = auto_segments(exp)
    seg_duration = _segment_duration(exp, segments)
    kwargs = exp.simulate_kwargs()
    kwargs["duration"] = seg_duration
    kwargs["on_divergence"] = "flag"
    model, conn = exp.model, exp.connectome
    n = conn.n_regions

    def log(msg: str) -> None:
        if progress:
            print(msg, file=sys.stderr, flush=True)

    x64 = jax.enable_x64(True) if sim.dtype == "float64" else contextlib.nullcontext()
    with x64:
        key = jr.key(sim.seed)
        # without a configured initial state, simulate() draws it from the key (inside the
        # compiled function, exactly as a direct call would)
        init = {} if exp.initial_state is None else {"initial_state": exp.initial_state}

        def first(k):
            return simulate(model, conn, key=k, **init, **kwargs)

        def resumed(k, state):
            return simulate(model, conn, key=k, resume=state, **kwargs)

        steps = round(seg_duration / sim.dt)
        log(
            f"compiling: {cfg.model.name} on {n} regions, {segments} segment(s) of {steps} "
            f"steps ..."
        )
        t0 = time.perf_counter()
        calls = [jax.jit(first).lower(key).compile()]
        if segments > 1:
            state_shape = jax.eval_shape(first, key).final
            calls.append(jax.jit(resumed).lower(key, state_shape).compile())
        compile_time = time.perf_counter() - t0
        log(f"compiled in {compile_time:.1f} s")

        parts: dict[str, list[np.ndarray]] = {}
        times: dict[str, list[np.ndarray]] = {}
        labels: dict[str, tuple[str, ...]] = {}
        run_time = 0.0
        bar = tqdm(
            total=segments,
            desc=f"simulating {sim.duration:g} ms",
            unit="segment",
            disable=not progress,
            file=sys.stderr,
        )
        sol = None
        with bar:
            for k in range(segments):
                t0 = time.perf_counter()
                sol = calls[0](key) if k == 0 else calls[1](key, sol.final)
                diverged = bool(sol.diverged)
                run_time += time.perf_counter() - t0
                if diverged:
                    raise DivergenceError(
                        f"{cfg.path}: the simulation diverged (NaN/inf) before "
                        f"t = {(k + 1) * seg_duration:g} ms; lower [coupling] G, [noise] nsig "
                        f"or [simulation] dt"
                    )
                for name, y in sol.ys.items():
                    parts.setdefault(name, []).append(np.asarray(y))
                    times.setdefault(name, []).append(np.asarray(sol.ts[name], np.float64))
                    labels[name] = tuple(sol.labels.get(name, ()))
                bar.update(1)
        return RunResult(
            ys={k: np.concatenate(v) for k, v in parts.items()},
            ts={k: np.concatenate(v) for k, v in times.items()},
            labels=labels,
            final_state=np.asarray(sol.final_state),
            compile_time_s=compile_time,
            run_time_s=run_time,
            segments=segments,
        )


# --------------------------------------------------------------------------- folder contents


def _fc(x: np.ndarray) -> np.ndarray:
    try:
        from .features import fc
    except ImportError:
        return np.corrcoef(x, rowvar=False)
    return np.asarray(fc(x), dtype=np.float64)


def _drive(exp: Experiment, res: RunResult, name: str) -> tuple[str, np.ndarray]:
    """The (T, N) series of the model's BOLD-drive variable (else the first) in raw/tavg."""
    labels = res.labels[name]
    var = exp.model.bold_var if exp.model.bold_var in labels else labels[0]
    return var, res.ys[name][:, labels.index(var), :]


def functional_connectivity(exp: Experiment, res: RunResult) -> tuple[np.ndarray | None, str]:
    """FC of the BOLD output, else of the BOLD-drive variable of tavg/raw, after the transient.

    Returns:
        ``(fc, source)``: ``(N, N)`` float64 matrix (None when fewer than 3 samples remain) and a
        description of the series it came from.
    """
    transient = exp.config.simulation.transient
    if "bold" in res.ys:
        source, x, t = "BOLD", res.ys["bold"], res.ts["bold"]
    else:
        name = "tavg" if "tavg" in res.ys else "raw" if "raw" in res.ys else None
        if name is None:
            return None, "none (no bold, tavg or raw monitor)"
        var, x = _drive(exp, res, name)
        source, t = f"{name} {var}", res.ts[name]
    x = np.asarray(x, dtype=np.float64)[t > transient]
    if x.shape[0] < 3:
        return None, f"{source} (fewer than 3 samples after the transient)"
    return _fc(x), source


def eeg_spectrum(times_ms: np.ndarray, eeg: np.ndarray, transient_ms: float) -> dict[str, Any]:
    """Spectral summary of the EEG after the transient, as the run folder's ``summary.json`` has it.

    Welch PSD of every channel (Hann windows of 2 s, half overlap: 0.5 Hz bins; the whole
    signal when it is shorter), averaged over channels; on that mean, the alpha peak frequency
    (:func:`~vbt_jax.features.alpha_peak_frequency`, 7-14 Hz) and the power of each of
    :data:`~vbt_jax.features.DEFAULT_BANDS` below the Nyquist frequency relative to their sum
    (:func:`~vbt_jax.features.relative_band_powers`); the alpha peak of each channel, as median
    and range.

    Returns:
        The ``eeg`` entry of ``summary.json``; ``{"skipped": reason}`` when under 1 s of signal
        remains after the transient (e.g. ``--quick`` runs) or the sampling rate is below 40 Hz.
    """
    from .features import DEFAULT_BANDS, alpha_peak_frequency, relative_band_powers, welch_psd

    times_ms = np.asarray(times_ms, dtype=np.float64)
    x = np.asarray(eeg, dtype=np.float64)[times_ms > transient_ms]
    if times_ms.size < 2 or x.shape[0] < 2:
        return {"skipped": "fewer than 2 EEG samples after the transient"}
    period_ms = float(times_ms[1] - times_ms[0])
    fs = 1000.0 / period_ms
    seconds = x.shape[0] * period_ms / 1000.0
    if seconds < 1.0 or fs < 40.0:
        return {
            "skipped": f"{seconds:.3g} s of EEG at {fs:.4g} Hz after the transient "
            "(a spectrum needs >= 1 s at >= 40 Hz)"
        }
    nperseg = min(x.shape[0], round(2.0 * fs))
    freqs, psd = welch_psd(x, fs, nperseg)  # (F,), (F, M)
    bands = {k: b for k, b in DEFAULT_BANDS.items() if b[1] <= fs / 2}
    mean_psd = psd.mean(axis=1)
    rel = relative_band_powers(freqs, mean_psd, bands)
    per_channel = np.asarray(alpha_peak_frequency(freqs, psd))
    return {
        "fs_hz": fs,
        "seconds": seconds,
        "welch_window_s": nperseg / fs,
        "alpha_peak_hz": float(alpha_peak_frequency(freqs, mean_psd)),
        "alpha_peak_hz_channels": {
            "median": float(np.median(per_channel)),
            "min": float(per_channel.min()),
            "max": float(per_channel.max()),
        },
        "relative_band_power": {k: float(v) for k, v in rel.items()},
        "bands_hz": {k: list(b) for k, b in bands.items()},
    }


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n", encoding="utf-8")


def write_run_folder(
    folder: str | Path,
    exp: Experiment,
    res: RunResult,
    *,
    figures: bool = True,
    started: float | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write the run folder's files (see the module docstring) into an existing folder.

    Args:
        folder: an existing folder (``config.toml`` and ``versions.json`` are written by
            :meth:`vbt_jax.jobs.RunFolder.write`).
        exp: the experiment that ran.
        res: its result.
        figures: draw the PNG figures.
        started: ``time.perf_counter()`` at the start of the run, for the wall time.
        extra: more entries for ``summary.json`` (e.g. command-line overrides).

    Returns:
        The summary written to ``summary.json``.
    """
    folder = Path(folder)
    cfg = exp.config
    regions = np.asarray(exp.connectome.labels)

    series = {}
    for name in ("raw", "tavg"):
        if name in res.ys:
            series[f"{name}_data"] = res.ys[name]
            series[f"{name}_times_ms"] = res.ts[name]
            series[f"{name}_labels"] = np.asarray(res.labels[name])
    if series:
        np.savez(folder / "timeseries.npz", regions=regions, **series)
    if "bold" in res.ys:
        np.savez(folder / "bold.npz", data=res.ys["bold"], times_ms=res.ts["bold"], labels=regions)
    if "eeg" in res.ys:
        np.savez(
            folder / "eeg.npz",
            data=res.ys["eeg"],
            times_ms=res.ts["eeg"],
            labels=np.asarray(exp.eeg_channels),
        )

    fc, fc_source = functional_connectivity(exp, res)
    fc_emp, r = None, None
    if fc is not None:
        np.save(folder / "fc.npy", fc)
        if cfg.connectome.source == "dk84" and fc.shape == (84, 84):
            from .readers import dk84_empirical_fc

            fc_emp = dk84_empirical_fc()
            r = upper_r(fc, fc_emp)
            r = None if not np.isfinite(r) else r

    sim = cfg.simulation
    summary: dict[str, Any] = {
        "config": str(cfg.path),
        "description": cfg.description,
        "model": cfg.model.name,
        "connectome": {
            "source": cfg.connectome.source,
            "name": exp.connectome.name,
            "n_regions": exp.connectome.n_regions,
            "normalise": cfg.connectome.normalise,
        },
        "simulation": dataclasses.asdict(sim),
        "duration_ms": sim.duration,
        "segments": res.segments,
        "compile_time_s": res.compile_time_s,
        "run_time_s": res.run_time_s,
        "monitors": {
            name: {"shape": list(y.shape), "period_ms": cfg.monitors.periods()[name]}
            for name, y in res.ys.items()
        },
        "fc_source": fc_source,
        "fc_nan_regions": None if fc is None else int(np.isnan(np.diag(fc)).sum()),
        "fc_empirical_r": r,
    }
    if "eeg" in res.ys:
        summary["eeg"] = eeg_spectrum(res.ts["eeg"], res.ys["eeg"], sim.transient)
    summary.update(extra or {})

    if figures:
        _figures(folder, exp, res, fc, fc_emp, fc_source, r)
    summary["wall_time_s"] = None if started is None else time.perf_counter() - started
    _write_json(folder / "summary.json", summary)
    return summary


def _figures(folder, exp, res, fc, fc_emp, fc_source, r) -> None:
    cfg = exp.config
    regions = exp.connectome.labels
    title = f"{cfg.model.name} on {exp.connectome.name}"
    for name, what in (("raw", "raw samples"), ("tavg", "temporal average")):
        if name in res.ys:
            var, x = _drive(exp, res, name)
            _plot.plot_timeseries(
                folder / f"timeseries_{name}.png",
                res.ts[name],
                x,
                regions,
                variable=var,
                title=f"{title}: {what} every {cfg.monitors.periods()[name]:g} ms",
            )
    if "bold" in res.ys:
        _plot.plot_bold(
            folder / "bold.png",
            res.ts["bold"],
            res.ys["bold"],
            regions,
            title=f"{title}: BOLD (TR {cfg.monitors.bold.tr:g} ms)",
            transient_ms=cfg.simulation.transient,
        )
    if "eeg" in res.ys:
        _plot.plot_eeg(
            folder / "eeg.png",
            res.ts["eeg"],
            res.ys["eeg"],
            exp.eeg_channels,
            title=f"{title}: EEG ({len(exp.eeg_channels)} channels)",
            transient_ms=cfg.simulation.transient,
        )
    if fc is not None:
        _plot.plot_fc(
            folder / "fc.png", fc, fc_emp, source=fc_source, r=r, labels=exp.connectome.labels
        )


__all__ = [
    "RunResult",
    "eeg_spectrum",
    "functional_connectivity",
    "auto_segments",
    "run_experiment",
    "write_run_folder",
]
