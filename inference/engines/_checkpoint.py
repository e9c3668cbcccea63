"""Checkpoint folders: the fingerprint of a run, and the state and chunks it resumes from.

A folder holds ``meta.json`` (the run's settings, a digest of its data and one digest per model
site: :func:`open_checkpoint` refuses a folder of another run) and, per engine, a
:class:`Store`: the sampler state with the iterations done per phase, and the kept outputs of
each chunk. Every file is written atomically (a temporary file, fsync, rename), so a killed
run leaves either the old or the new version.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np
from numpyro import handlers

from vbt_jax import CheckpointError


def _atomic_write(path: Path, write) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _save_pickle(path: Path, obj: Any) -> None:
    _atomic_write(path, lambda f: pickle.dump(jax.device_get(obj), f))


def _load_pickle(path: Path) -> Any:
    with open(path, "rb") as f:
        return pickle.load(f)


def _digest(h, x) -> None:
    """Feed an array into a hash, floats rounded to 5 significant digits (a resumed run
    recomputes the model's values, which need not agree to the last bit across devices)."""
    a = np.asarray(x)
    if np.issubdtype(a.dtype, np.floating):
        m, e = np.frexp(a.astype(np.float64))
        a = np.stack([np.round(m, 5), e.astype(np.float64)])
    h.update(str(a.shape).encode())
    h.update(np.ascontiguousarray(a).tobytes())


def model_fingerprint(model, data: Mapping[str, Any] | None) -> dict[str, str]:
    """A digest per site of a NumPyro model, covering everything a draw depends on.

    The model is traced once at a fixed key: each sample site contributes its distribution
    (class, structure and parameters, as a pytree) and value, each deterministic site its
    value (observed values are the data, which the checkpoint hashes apart). A changed
    prior, fixed value, forward map or likelihood changes the digest of a site (a prior's
    draw, the observed site's location, or a distribution's class).

    Returns:
        site name -> 16-hex-digit digest, in trace order.
    """
    with handlers.block():
        tr = handlers.trace(handlers.seed(model, jax.random.PRNGKey(0))).get_trace(data)
    out = {}
    for name, site in tr.items():
        if site["type"] not in ("sample", "deterministic"):
            continue
        h = hashlib.sha256(site["type"].encode())
        if site["type"] == "sample":
            leaves, treedef = jax.tree_util.tree_flatten(site["fn"])
            h.update(str(treedef).encode())
            h.update(str(bool(site["is_observed"])).encode())
            for leaf in leaves:
                _digest(h, leaf)
        if not site.get("is_observed", False):  # observed values are the data, hashed apart
            _digest(h, site["value"])
        out[name] = h.hexdigest()[:16]
    return out


def _fingerprint(settings: Mapping[str, Any], data: Mapping[str, Any] | None) -> str:
    h = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
    for k in sorted(data or {}):
        h.update(k.encode())
        h.update(np.ascontiguousarray(np.asarray(data[k], np.float64)).tobytes())
    return h.hexdigest()[:16]


def open_checkpoint(
    checkpoint: str | Path | None,
    settings: Mapping[str, Any],
    data: Mapping[str, Any] | None,
    model=None,
) -> Path | None:
    """Create (or reopen) a checkpoint folder for a run of this model with these settings and
    data; None without a checkpoint. Raises CheckpointError if it holds another run's state."""
    if checkpoint is None:
        return None
    folder = Path(checkpoint)
    if folder.exists() and not folder.is_dir():
        raise CheckpointError(f"checkpoint {folder}: exists and is not a folder")
    sites = model_fingerprint(model, data) if model is not None else {}
    meta = dict(settings=dict(settings), fingerprint=_fingerprint(settings, data), sites=sites)
    path = folder / "meta.json"
    if path.exists():
        _check_meta(folder, json.loads(path.read_text()), meta)
    else:
        folder.mkdir(parents=True, exist_ok=True)
        _atomic_write(path, lambda f: f.write(json.dumps(meta, default=str).encode()))
    return folder


def _check_meta(folder: Path, old: dict, new: dict) -> None:
    start_over = (
        f"the saved draws cannot be combined with this run's; to start over, delete {folder} "
        "(or give the run another output folder)"
    )
    old_sites, new_sites = old.get("sites", {}), new["sites"]
    if old_sites != new_sites:
        changed = [k for k in new_sites if k in old_sites and old_sites[k] != new_sites[k]]
        added = [k for k in new_sites if k not in old_sites]
        removed = [k for k in old_sites if k not in new_sites]
        parts = [
            f"{what}: {', '.join(map(repr, names))}"
            for what, names in (("changed", changed), ("new", added), ("gone", removed))
            if names
        ]
        raise CheckpointError(
            f"{folder}: holds a checkpoint of a different model (sites {'; '.join(parts)}: a "
            f"prior, fixed value, forward map or likelihood was edited); {start_over}"
        )
    if old.get("fingerprint") != new["fingerprint"]:
        s_old, s_new = old.get("settings", {}), new["settings"]
        diff = [
            f"{k}: {s_old.get(k)!r} -> {s_new.get(k)!r}"
            for k in sorted(set(s_old) | set(s_new))
            if s_old.get(k) != s_new.get(k)
        ]
        what = "settings differ: " + ", ".join(diff) if diff else "the data differ"
        raise CheckpointError(
            f"{folder}: holds a checkpoint of a different run ({what}); {start_over}"
        )


class Saved(NamedTuple):
    """What a :class:`Store` holds: the sampler state, the iterations done per phase and the
    kept outputs of each chunk so far, in order."""

    state: Any
    done: tuple[int, ...]
    outputs: list[dict[str, np.ndarray]]


@dataclasses.dataclass(frozen=True)
class Store:
    """The resumable state of one engine in a checkpoint folder.

    ``{prefix}_state.pkl`` holds the sampler state, the iterations done per phase and the
    number of chunk files; ``{prefix}_chunk_{k:04d}.npz`` the outputs of kept chunk ``k``.
    A chunk file is written before the state that counts it, so a run killed between the
    two recomputes that chunk and overwrites its file.
    """

    folder: Path
    prefix: str

    @property
    def state_path(self) -> Path:
        return self.folder / f"{self.prefix}_state.pkl"

    def chunk_path(self, k: int) -> Path:
        return self.folder / f"{self.prefix}_chunk_{k:04d}.npz"

    def exists(self) -> bool:
        return self.state_path.exists()

    def load(self, n_phases: int) -> Saved | None:
        """The saved run, or None if nothing is saved yet.

        Raises:
            CheckpointError: the state file lacks the per-phase progress of ``n_phases``
                phases (written by an earlier layout of the engines), or a chunk it counts
                is missing.
        """
        if not self.exists():
            return None
        saved = _load_pickle(self.state_path)
        done = saved.get("done") if isinstance(saved, dict) else None
        if not isinstance(done, (list, tuple)) or len(done) != n_phases:
            raise CheckpointError(
                f"{self.state_path}: not a checkpoint of this version of the engines "
                f"(expected the iterations done in each of {n_phases} phases, got "
                f"{done!r}); to start over, delete {self.folder}"
            )
        outputs = []
        for k in range(saved["n_chunks"]):
            path = self.chunk_path(k)
            if not path.exists():
                raise CheckpointError(
                    f"{self.state_path}: counts {saved['n_chunks']} chunks but {path.name} "
                    f"is missing; to start over, delete {self.folder}"
                )
            with np.load(path) as z:
                outputs.append({n: z[n] for n in z.files})
        return Saved(saved["state"], tuple(int(d) for d in done), outputs)

    def save(
        self,
        state: Any,
        done: tuple[int, ...],
        n_chunks: int,
        output: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        """Write ``output`` (if given) as chunk ``n_chunks - 1``, then the state."""
        if output is not None:
            _atomic_write(self.chunk_path(n_chunks - 1), lambda f: np.savez(f, **output))
        _save_pickle(self.state_path, dict(state=state, done=list(done), n_chunks=n_chunks))
