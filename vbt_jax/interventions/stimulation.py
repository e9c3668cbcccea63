"""Stimulation: a time-limited regional offset of a model's input parameter (TMS/tDCS-like)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jax import Array

from .._errors import ArgumentError, ShapeError
from .._labels import label_tuple as labels_of
from ._base import AbstractIntervention, as_region_tuple, is_tracer, region_indices


class Stimulation(AbstractIntervention):
    """Regional stimulation: ``parameter_i + amplitude_i`` for ``onset <= t < onset + duration``.

    A rectangular, TMS/tDCS-like perturbation modelled as an offset of a model's input
    parameter in the target regions. By default the parameter is the one the model class
    declares as its ``stimulus_parameter``: ``I_ext`` [nA] for reduced Wong-Wang, ``I`` for
    Montbrio-Pazo-Roxin, ``mu`` [1/ms] for Jansen-Rit; the Stuart-Landau model has no input
    term, so there the bifurcation parameter ``a`` [1/ms] is shifted: a positive amplitude
    brings the region towards, or past, its Hopf bifurcation, a tDCS-like change of
    excitability.

    :meth:`run` simulates the three periods (before, during, after) as consecutive
    :func:`vbt_jax.simulate` calls joined with ``resume=``, so the noise stream, the delay
    buffer and the monitors continue exactly: with a zero amplitude the result equals one
    uninterrupted run bit for bit.

    Attributes:
        targets: region indices or labels (static).
        amplitude: offset, scalar or one per target (leaf; the parameter's unit).
        onset: start [ms] (static).
        duration: length [ms] (static).
        parameter: the model field offset, or None for the ``stimulus_parameter`` its class
            declares (static).

    Raises (at construction):
        ArgumentError: no targets, ``onset < 0``, ``duration <= 0``, or an amplitude that is
            neither scalar nor one per target.
    """

    kind = "stimulation"

    targets: tuple[int | str, ...] = eqx.field(static=True)
    amplitude: float | Array
    onset: float = eqx.field(static=True)
    duration: float = eqx.field(static=True)
    parameter: str | None = eqx.field(static=True)

    def __init__(
        self,
        targets: Any,
        amplitude: float | Array,
        onset: float,
        duration: float,
        parameter: str | None = None,
    ):
        self.targets = as_region_tuple(targets, "Stimulation.targets")
        self.amplitude = amplitude
        self.onset = float(onset)
        self.duration = float(duration)
        self.parameter = parameter

    def __check_init__(self):
        if not (math.isfinite(self.onset) and self.onset >= 0):
            raise ArgumentError(f"Stimulation.onset must be >= 0 ms, got {self.onset}")
        if not (math.isfinite(self.duration) and self.duration > 0):
            raise ArgumentError(f"Stimulation.duration must be > 0 ms, got {self.duration}")
        shape = jnp.shape(self.amplitude)
        if shape not in ((), (len(self.targets),)):
            raise ShapeError(
                f"Stimulation.amplitude must be a scalar or ({len(self.targets)},) (one per "
                f"target), got shape {shape}"
            )

    def parameter_for(self, model: Any) -> str:
        """The field this stimulation offsets on ``model``: ``parameter``, or else the
        ``stimulus_parameter`` the model's class declares.

        Raises:
            ArgumentError: no ``parameter`` and a model class declaring no stimulus parameter,
                or a field the model lacks.
        """
        name = self.parameter
        cls = type(model).__name__
        fields = [f.name for f in dataclasses.fields(model)]
        if name is None:
            name = getattr(type(model), "stimulus_parameter", None)
            if name is None:
                raise ArgumentError(
                    f"Stimulation: {cls} declares no stimulus_parameter (the input a "
                    f"stimulation drives); pass parameter= one of its fields {fields}"
                )
        if name not in fields:
            raise ArgumentError(f"Stimulation: {cls} has no parameter {name!r}; it has {fields}")
        return name

    def offset(self, n_regions: int, labels: Any = None) -> Array:
        """The (N,) offset: ``amplitude`` in the targets, 0 elsewhere.

        Raises:
            ArgumentError: a target label not among ``labels`` or an index outside [0, N).
        """
        idx = region_indices(self.targets, labels_of(labels), n_regions, "Stimulation.targets")
        amp = jnp.broadcast_to(jnp.asarray(self.amplitude), (len(idx),))
        return jnp.zeros((n_regions,), amp.dtype).at[jnp.asarray(idx)].set(amp)

    def apply(self, model: Any, connectome: Any) -> Any:
        """The model while the stimulation is on (a new model; changed field becomes (N,))."""
        name = self.parameter_for(model)
        n = int(connectome.weights.shape[-1])
        old = jnp.asarray(getattr(model, name))
        if old.ndim != 0 and old.shape != (n,):
            raise ShapeError(
                f"Stimulation: {type(model).__name__}.{name} has shape {old.shape}, expected () "
                f"or ({n},)"
            )
        new = old + self.offset(n, connectome)
        return eqx.tree_at(lambda m: getattr(m, name), model, new)

    def run(
        self,
        model: Any,
        connectome: Any,
        *,
        duration: float,
        key: Array | None = None,
        **simulate_kwargs: Any,
    ):
        """Simulate ``model`` on ``connectome`` for ``duration`` ms with the stimulation.

        Up to three :func:`vbt_jax.simulate` calls (before the onset, during, after; empty
        periods are skipped), the later ones with ``resume=`` the previous ``final``, all with
        the same ``key`` and ``simulate_kwargs``; ``initial_state``/``history`` apply to the
        first. A window reaching past ``duration`` is cut at ``duration``.

        Args:
            model: the model without stimulation.
            connectome: the :class:`~vbt_jax.Connectome`.
            duration: total simulated time [ms].
            key: PRNG key, as for :func:`vbt_jax.simulate`.
            **simulate_kwargs: any other :func:`vbt_jax.simulate` argument (``dt``,
                ``monitors``, ``noise``, ``coupling``, ...) except ``resume``.

        Returns:
            A :class:`vbt_jax.Solution` whose samples and times are those of the segments
            joined in order; ``final`` continues the whole run; ``diverged`` is that of any
            segment.

        Raises:
            ArgumentError: an onset at or after ``duration``; period boundaries that are not
                whole multiples of ``dt`` and of every monitor's period; ``resume`` given; or
                as :meth:`apply`. ``simulate`` raises its own errors.
        """
        from .._integrate import Solution, simulate
        from ..monitors import Raw

        if "resume" in simulate_kwargs:
            raise ArgumentError("Stimulation.run: resume= is not supported (it starts a run)")
        if is_tracer(duration) or not duration > 0:
            raise ArgumentError(
                f"Stimulation.run: duration must be a concrete > 0 ms, got {duration}"
            )
        if self.onset >= duration:
            raise ArgumentError(
                f"Stimulation.run: onset {self.onset} ms is not before the end of the run "
                f"({duration} ms)"
            )
        dt = float(simulate_kwargs.get("dt", 0.1))
        monitors = simulate_kwargs.get("monitors", (Raw(),))
        if not isinstance(monitors, (tuple, list)):
            monitors = (monitors,)
        end = min(self.onset + self.duration, float(duration))
        bounds = [0.0, self.onset, end, float(duration)]
        for t in bounds[1:]:
            for what, p in [("dt", dt)] + [
                (f"monitor {m.name!r} period", m.period) for m in monitors
            ]:
                k = t / p
                if abs(k - round(k)) > 1e-6 * max(1.0, k):
                    raise ArgumentError(
                        f"Stimulation.run: time {t} ms (onset, end of stimulation or duration) is "
                        f"not a whole multiple of the {what} {p} ms; segments must end on samples"
                    )
        stimulated = self.apply(model, connectome)
        first = dict(simulate_kwargs)
        later = {k: v for k, v in simulate_kwargs.items() if k not in ("initial_state", "history")}
        sols, state = [], None
        for (t0, t1), m in zip(zip(bounds[:-1], bounds[1:]), (model, stimulated, model)):
            if t1 - t0 <= 0.5 * dt:
                continue
            kw = first if state is None else dict(later, resume=state)
            sol = simulate(m, connectome, duration=t1 - t0, key=key, **kw)
            sols.append(sol)
            state = sol.final
        if len(sols) == 1:
            return sols[0]
        ys = {k: jnp.concatenate([s.ys[k] for s in sols]) for k in sols[0].ys}
        ts = {k: jnp.concatenate([s.ts[k] for s in sols]) for k in sols[0].ts}
        diverged = sols[0].diverged
        for s in sols[1:]:
            diverged = diverged | s.diverged
        last = sols[-1]
        return Solution(
            ys=ys,
            ts=ts,
            final_state=last.final_state,
            final=last.final,
            diverged=diverged,
            labels=sols[0].labels,
            dt=last.dt,
            block=last.block,
        )

    def describe(self) -> str:
        amp = "traced" if is_tracer(self.amplitude) else np.asarray(self.amplitude).tolist()
        return (
            f"Stimulation of regions {list(self.targets)}: {self.parameter or 'the model input'} "
            f"+ {amp} from {self.onset:g} ms for {self.duration:g} ms."
        )
