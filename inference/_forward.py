"""Forward maps: twin parameters -> predicted data features.

Two routes, named by each map's ``route`` (``"linearised"`` or ``"simulation"``):

- :class:`HopfLinear`: the Stuart-Landau network linearised below the bifurcation. FC,
  regional amplitude and MEG/EEG band powers are exact functions of the parameters (a Cholesky
  solve and a spectral sum, no simulation), so they carry no simulation noise and NUTS gets
  exact, cheap gradients. This is the default for fitting fMRI FC.
- :class:`Linearised`: any model linearised at its fixed point (:func:`vbt_jax.linearise`),
  its BOLD FC with the haemodynamics in the linear system; Wong-Wang with feedback inhibition
  control solved again at every parameter set.
- :class:`Simulated`: any registered model through :func:`vbt_jax.simulate` with a fixed set of
  noise seeds (common random numbers, so the map from parameters to features is deterministic
  and differentiable); FC is averaged over seeds on the Fisher-z scale. Use it for what a
  linearisation cannot give (FCD, regimes near a limit cycle, bistable switching), with SVI
  or small NUTS runs.

Every forward map returns a dict with some of: ``"fc"`` (N, N), ``"amplitude"`` (N,),
``"band_power"`` (N, B) relative band powers, ``"fcd_quantiles"`` (Q,).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

import vbt_jax as vbt
from vbt_jax import ArgumentError, ShapeError

FEATURES = ("fc", "amplitude", "band_power", "fcd_quantiles")


def _aperiodic_band_power(bands: Array, exponent: Array) -> Array:
    """Relative power of a 1/f^exponent spectrum in each band (closed-form integral)."""
    lo, hi = bands[:, 0], bands[:, 1]
    e1 = 1.0 - exponent
    # integral of f^-x from lo to hi; the log form at x = 1 is the limit of the power form
    safe = jnp.where(jnp.abs(e1) < 1e-6, 1e-6, e1)
    p = jnp.where(
        jnp.abs(e1) < 1e-6,
        jnp.log(hi / lo),
        (hi**safe - lo**safe) / safe,
    )
    return p / p.sum()


def with_parameters(model: Any, coupling: Any, params: Mapping[str, Any]) -> tuple[Any, Any]:
    """The model and coupling with sampled values put in: every entry of ``params`` naming a
    model field replaces it (scalar or (N,)), ``G`` replaces the coupling's ``G``."""
    fields = {k: v for k, v in params.items() if hasattr(model, k) and k != "G"}
    if fields:
        model = eqx.tree_at(
            lambda m: [getattr(m, k) for k in fields],
            model,
            [jnp.asarray(v) for v in fields.values()],
            is_leaf=lambda x: x is None,
        )
    if "G" in params and coupling is not None:
        coupling = eqx.tree_at(lambda c: c.G, coupling, params["G"])
    return model, coupling


def monitor_series(sol: Any, name: str, model: Any) -> Array:
    """(T, N) series of monitor ``name``: BOLD/EEG's single signal, else the model's
    BOLD-drive variable (the first recorded variable if it is not recorded)."""
    ys = sol[name]
    if name in ("bold", "eeg"):
        return ys if ys.ndim == 2 else ys[:, 0, :]
    labels = sol.labels[name]
    return ys[:, labels.index(model.bold_var if model.bold_var in labels else labels[0]), :]


class HopfLinear(eqx.Module):
    """Analytic features of the Stuart-Landau network (Difference coupling, no delays).

    Parameters read from the params dict: ``a`` (bifurcation parameter, scalar or (N,), must
    be < 0, 1/ms), ``G`` (global coupling, 1/ms). Optional: ``nsig`` (noise, only the
    amplitude depends on it), and for band powers ``f_peak`` (Hz), ``aperiodic_exponent``,
    ``aperiodic_weight`` (see below).

    FC and amplitude: the stationary covariance of ``x`` solves ``B X + X B = -2 nsig I`` with
    ``B = diag(a) + G (W - diag(W 1))`` (W symmetric, one frequency for all regions), so
    FC = corr((-B)^-1) and does not depend on the frequency or the noise level, only on ``a / G``.

    Band powers (the joint fMRI + M/EEG model): the same network, with the same ``a`` and ``G``,
    is observed on a faster time scale. All rates are multiplied by ``s = 2 pi f_peak / omega``
    (``omega`` the BOLD-band frequency), i.e. the M/EEG system is the fMRI system with time
    rescaled so that its oscillators run at ``f_peak``: damping ratios and coupling relative to
    the frequency are shared, so one parameter set explains both modalities. The relative band
    powers of that linear spectrum are mixed with an aperiodic ``1/f^exponent`` background with
    weight ``aperiodic_weight`` (0 to 1).

    Attributes:
        weights: (N, N) symmetric structural weights.
        omega: angular frequency of the fMRI-band oscillators [rad/ms] (default 2 pi 0.05 Hz).
        nsig: noise used when ``nsig`` is not a parameter.
        bands: (B, 2) band edges in Hz (for ``band_power``), or None.
        features: which features to compute.
    """

    weights: Array
    omega: float = eqx.field(static=True, default=2 * math.pi * 0.05 / 1000.0)
    nsig: float = eqx.field(static=True, default=1e-10)
    bands: tuple[tuple[float, float], ...] | None = eqx.field(static=True, default=None)
    features: tuple[str, ...] = eqx.field(static=True, default=("fc",))
    route: ClassVar[str] = "linearised"

    def __check_init__(self):
        w = np.asarray(self.weights)
        if w.ndim != 2 or w.shape[0] != w.shape[1]:
            raise ShapeError(f"HopfLinear: weights must be (N, N), got shape {w.shape}")
        asym = float(np.max(np.abs(w - w.T))) if w.size else 0.0
        if asym > 1e-6 * max(float(np.max(np.abs(w))), 1e-30):
            raise ArgumentError(
                f"HopfLinear: weights must be symmetric (max |W - W^T| = {asym:.3g}); "
                "symmetrise the connectome (Connectome.symmetrised) or use Simulated"
            )
        bad = set(self.features) - {"fc", "amplitude", "band_power"}
        if bad:
            raise ArgumentError(f"HopfLinear cannot predict {sorted(bad)}; use Simulated")
        if "band_power" in self.features and self.bands is None:
            raise ArgumentError("HopfLinear: band_power needs bands (B, 2) in Hz")

    @property
    def n_regions(self) -> int:
        return self.weights.shape[0]

    def __call__(self, params: Mapping[str, Any]) -> dict[str, Array]:
        a, G = params["a"], params["G"]
        nsig = params.get("nsig", self.nsig)
        W = self.weights
        out: dict[str, Array] = {}
        if "fc" in self.features or "amplitude" in self.features:
            cov = vbt.hopf_covariance_symmetric(a, W, G, nsig)
            if "fc" in self.features:
                out["fc"] = vbt.linear_fc(cov, cov.shape[0])
            if "amplitude" in self.features:
                out["amplitude"] = jnp.sqrt(jnp.diagonal(cov))
        if "band_power" in self.features:
            f_peak = params["f_peak"]
            omega_m = 2 * math.pi * f_peak / 1000.0
            s = omega_m / self.omega
            bands = np.asarray(self.bands, float)
            rel = vbt.hopf_band_power(
                a * s, omega_m, W, G * s, 1.0, bands, relative=True, symmetric=True
            ).T
            w = params.get("aperiodic_weight", 0.0)
            bg = _aperiodic_band_power(jnp.asarray(bands), params.get("aperiodic_exponent", 1.0))
            out["band_power"] = (1.0 - w) * rel + w * bg[None, :]
        return out


class Linearised(eqx.Module):
    """FC of any model linearised at its fixed point (:func:`vbt_jax.linearise`): exact in the
    small-noise limit, no simulation noise, gradients through the implicit fixed point.

    Parameters in the params dict that name a field of the model replace it (scalar or (N,));
    ``G`` sets the coupling's ``G``. With ``fic`` the Wong-Wang inhibitory weights ``J_i`` are
    solved again for every parameter set (:func:`vbt_jax.models.feedback_inhibition`), which
    also gives the fixed point exactly. Delays are ignored (see :mod:`vbt_jax._linear`).

    Attributes:
        model, connectome, coupling, noise: the network (as for :func:`vbt_jax.simulate`).
        observe: ``"bold"`` (Balloon-Windkessel BOLD in the linear system) or ``"neural"``.
        balloon: haemodynamic parameters for ``observe="bold"`` (defaults when ``None``).
        bold_scale: factor on the neural drive of the haemodynamics (as the BOLD monitor's
            ``scale``; the FC does not depend on it, the amplitude does).
        fic: re-solve feedback inhibition control at every parameter set (Wong-Wang only).
        fic_rate: its target excitatory rate [Hz].
        features: ``("fc",)`` and optionally ``"amplitude"`` (sd of the observation).
    """

    model: Any
    connectome: Any
    coupling: Any
    noise: Any
    observe: str = eqx.field(static=True, default="bold")
    balloon: Any = None
    bold_scale: float = 1.0
    fic: bool = eqx.field(static=True, default=False)
    fic_rate: float = eqx.field(static=True, default=3.0)
    features: tuple[str, ...] = eqx.field(static=True, default=("fc",))
    route: ClassVar[str] = "linearised"

    def __check_init__(self):
        if self.observe not in ("bold", "neural"):
            raise ArgumentError(
                f"Linearised: observe must be 'bold' or 'neural', got {self.observe!r}"
            )
        bad = set(self.features) - {"fc", "amplitude"}
        if bad:
            raise ArgumentError(f"Linearised cannot predict {sorted(bad)}; use Simulated")
        if self.fic and not hasattr(self.model, "J_i"):
            raise ArgumentError(
                f"Linearised: fic=True needs a Wong-Wang model, got {type(self.model).__name__}"
            )

    @property
    def n_regions(self) -> int:
        return self.connectome.n_regions

    def network(self, params: Mapping[str, Any]) -> tuple[Any, Any, Array | None]:
        """The model and coupling at ``params`` (feedback inhibition solved again with
        ``fic``), and the fixed point when it is known (``fic``), else ``None``. The simulated
        check of a fit runs this network."""
        from vbt_jax.models import feedback_inhibition

        model, coupling = with_parameters(self.model, self.coupling, params)
        guess = None
        if self.fic:
            b = getattr(coupling, "b", 0.0)
            model, guess = feedback_inhibition(
                model, self.connectome.weights, coupling.G, target_rate=self.fic_rate, b=b
            )
        return model, coupling, guess

    def linearise(self, params: Mapping[str, Any]):
        """The :class:`vbt_jax.LinearisedNetwork` at ``params``."""
        model, coupling, guess = self.network(params)
        return vbt.linearise(
            model,
            self.connectome,
            noise=self.noise,
            coupling=coupling,
            observe=self.observe,
            balloon=self.balloon,
            bold_scale=self.bold_scale,
            guess=guess,
        )

    def __call__(self, params: Mapping[str, Any]) -> dict[str, Array]:
        """The features, and ``"stationary"``: whether the linearised network has a stationary
        distribution at ``params`` (a finite covariance: the Lyapunov solution of an unstable
        Jacobian, or a fixed point Newton did not find, is not). Where it has none the features
        are set to a finite placeholder and the Twin gives the draw zero density."""
        lin = self.linearise(params)
        cov = lin.covariance()
        fc = vbt.linear_fc(cov, cov.shape[0])
        ok = jnp.all(jnp.isfinite(fc))
        out = {"fc": jnp.where(ok, fc, jnp.eye(fc.shape[0], dtype=fc.dtype)), "stationary": ok}
        if "amplitude" in self.features:
            amp = jnp.sqrt(jnp.diagonal(cov))
            out["amplitude"] = jnp.where(ok, amp, jnp.ones_like(amp))
        return out


class Simulated(eqx.Module):
    """Features from :func:`vbt_jax.simulate` with fixed noise seeds.

    Parameters in the params dict that name a field of the model (``eta``, ``a``, ``w_p``...)
    replace it (scalar or (N,)); ``G`` sets the coupling's ``G``; ``nsig`` scales the noise
    (a scalar multiplying every configured nsig). The simulations for the ``n_seeds`` keys run
    under ``vmap``; FC is the tanh of the mean Fisher-z FC over seeds.

    Attributes:
        experiment: a built :class:`vbt_jax.config.Experiment` (model, connectome, coupling,
            noise, monitors, timing).
        keys: (S,) PRNG keys (one simulation each).
        features: which features to compute.
        source: monitor whose series gives FC/FCD/amplitude (``"bold"``, ``"tavg"``, ``"raw"``).
        fcd_window, fcd_step: FCD windows in samples of ``source``.
        quantiles: the FCD value quantiles to predict.
        bands: (B, 2) Hz for band powers of ``band_source`` (``"eeg"`` or ``"tavg"``/``"raw"``).
    """

    experiment: Any = eqx.field(static=True)
    keys: Array
    features: tuple[str, ...] = eqx.field(static=True, default=("fc",))
    source: str = eqx.field(static=True, default="bold")
    band_source: str = eqx.field(static=True, default="eeg")
    fcd_window: int = eqx.field(static=True, default=30)
    fcd_step: int = eqx.field(static=True, default=2)
    quantiles: tuple[float, ...] = eqx.field(
        static=True, default=(0.05, 0.15, 0.25, 0.35, 0.45, 0.55, 0.65, 0.75, 0.85, 0.95)
    )
    bands: tuple[tuple[float, float], ...] | None = eqx.field(static=True, default=None)
    route: ClassVar[str] = "simulation"

    def __check_init__(self):
        names = [m.name for m in self.experiment.monitors]
        need = set()
        if set(self.features) & {"fc", "fcd_quantiles", "amplitude"}:
            need.add(self.source)
        if "band_power" in self.features:
            need.add(self.band_source)
            if self.bands is None:
                raise ArgumentError("Simulated: band_power needs bands (B, 2) in Hz")
        missing = need - set(names)
        if missing:
            raise ArgumentError(
                f"Simulated: the experiment has monitors {names} but the features need "
                f"{sorted(missing)}"
            )
        bad = set(self.features) - set(FEATURES)
        if bad:
            raise ArgumentError(f"Simulated: unknown features {sorted(bad)}; known: {FEATURES}")

    @property
    def n_regions(self) -> int:
        return self.experiment.connectome.n_regions

    def _period(self, name: str) -> float:
        for m in self.experiment.monitors:
            if m.name == name:
                return m.period
        raise ArgumentError(f"no monitor {name!r}")

    def _one(self, params: Mapping[str, Any], key: Array) -> dict[str, Array]:
        exp = self.experiment
        model, coupling = with_parameters(exp.model, exp.coupling, params)
        noise = exp.noise
        if noise is not None and "nsig" in params:
            noise = eqx.tree_at(lambda n: n.nsig, noise, noise.nsig * params["nsig"])
        kw = exp.simulate_kwargs()
        kw.update(coupling=coupling, noise=noise)
        init = exp.initial_state
        sol = vbt.simulate(
            model,
            exp.connectome,
            key=key,
            initial_state=None if init is None else jnp.asarray(init),
            **kw,
        )
        transient = exp.config.simulation.transient
        out = {}
        if set(self.features) & {"fc", "fcd_quantiles", "amplitude"}:
            x = monitor_series(sol, self.source, model)[self._skip(self.source, transient) :]
            if "fc" in self.features:
                out["fc_z"] = vbt.features.fisher_z(vbt.features.fc(x))
            if "amplitude" in self.features:
                out["amplitude"] = jnp.std(x, axis=0)
            if "fcd_quantiles" in self.features:
                m = vbt.features.fcd(x, self.fcd_window, self.fcd_step)
                vals = vbt.features.fcd_values(
                    m, min_separation=max(1, math.ceil(self.fcd_window / self.fcd_step))
                )
                out["fcd_quantiles"] = jnp.quantile(vals, jnp.asarray(self.quantiles))
        if "band_power" in self.features:
            y = monitor_series(sol, self.band_source, model)
            y = y[self._skip(self.band_source, transient) :]
            fs = 1000.0 / self._period(self.band_source)
            nper = min(y.shape[0], int(2 ** math.floor(math.log2(max(8, 2 * fs)))))
            freqs, psd = vbt.features.welch_psd(y, fs, nper)
            bands = {f"b{k}": tuple(b) for k, b in enumerate(np.asarray(self.bands).tolist())}
            p = vbt.features.band_powers(freqs, psd, bands)
            p = jnp.stack([p[f"b{k}"] for k in range(len(bands))], axis=-1)
            out["band_power"] = p / p.sum(axis=-1, keepdims=True)
        return out

    def _skip(self, name: str, transient: float) -> int:
        # samples are stamped at the end of their window, t_k = (k + 1) period: keep t > transient
        return int(math.floor(transient / self._period(name) + 1e-9))

    def __call__(self, params: Mapping[str, Any]) -> dict[str, Array]:
        per_seed = jax.vmap(lambda k: self._one(params, k))(self.keys)
        out = {}
        if "fc_z" in per_seed:
            out["fc"] = jnp.tanh(per_seed["fc_z"].mean(axis=0))
        for k in ("amplitude", "fcd_quantiles", "band_power"):
            if k in per_seed:
                out[k] = per_seed[k].mean(axis=0)
        return out


def required_parameters(forward: Any) -> tuple[str, ...]:
    """Parameters a forward map cannot run without."""
    if isinstance(forward, HopfLinear):
        req = ["a", "G"]
        if "band_power" in forward.features:
            req.append("f_peak")
        return tuple(req)
    return ()


def forward_features(forward: Any) -> Sequence[str]:
    return tuple(forward.features)


__all__ = ["HopfLinear", "Linearised", "Simulated", "FEATURES", "required_parameters"]
