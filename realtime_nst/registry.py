"""Shipped style models: found by name in the models folder, described by its manifest.json."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from .errors import ModelError

ENV_MODELS_DIR = "RTNST_MODELS_DIR"
MANIFEST = "manifest.json"
# Shipped files whose sha256 matched the manifest, by path, size and mtime: checked once, not per start.
VERIFIED_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rtnst" / "verified.json"


@dataclass(frozen=True)
class ShippedModel:
    name: str
    path: Path
    style: str
    tier: str
    default: bool
    entry: dict


def models_dir() -> Path:
    """$RTNST_MODELS_DIR, else models/ beside the package (a checkout or editable install), else the
    data folder a wheel install puts them in."""
    env = os.environ.get(ENV_MODELS_DIR)
    if env:
        return Path(env)
    here = Path(__file__).resolve().parent.parent / "models"
    if here.is_dir():
        return here
    return Path(sys.prefix) / "share" / "rtnst" / "models"


def shipped_models(folder: Path | None = None) -> list[ShippedModel]:
    folder = folder or models_dir()
    manifest = folder / MANIFEST
    if not manifest.is_file():
        return []
    try:
        entries = json.loads(manifest.read_text())["models"]
        return [ShippedModel(str(e["name"]), folder / str(e["file"]), str(e.get("style", e["name"])),
                             str(e.get("tier", "?")), bool(e.get("default")), e) for e in entries]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:  # bad JSON, or JSON of another shape
        raise ModelError(f"{manifest} is not a valid model manifest (expected {{\"models\": [{{\"name\": ..., "
                         f"\"file\": ...}}, ...]}}; {type(exc).__name__}: {exc})") from None


def resolve_model(model: str | os.PathLike | None) -> Path:
    """A path as given, or a shipped model by name ("starry_night" or "starry_night-quality")."""
    if model is not None and (Path(model).suffix == ".onnx" or Path(model).exists()):
        return Path(model)
    shipped = shipped_models()
    if model is None:
        default = [m for m in shipped if m.default] or shipped[:1]
        if not default:
            raise ModelError(f"no shipped models found in {models_dir()}; pass model FILE.onnx", param="model")
        verify(default[0])
        return default[0].path
    matches = [m for m in shipped if m.name == model] or [m for m in shipped if m.style == model and m.tier == "realtime"]
    matches = matches or [m for m in shipped if m.style == model]
    if not matches:
        names = ", ".join(m.name for m in shipped) or "none"
        raise ModelError(f"{model!r} is neither a model file nor a shipped model (shipped: {names})")
    verify(matches[0])
    return matches[0].path


def verify(model: ShippedModel, *, cache: Path | None = None) -> None:
    """Raise ModelError when a shipped model's file is missing or differs from the manifest's sha256
    (a damaged install would otherwise run silently with broken weights)."""
    expected = model.entry.get("sha256")
    if not expected:
        return
    try:
        stat = model.path.stat()
    except OSError:
        raise ModelError(f"shipped model {model.name}: {model.path} is missing; reinstall rtnst") from None
    cache = cache or VERIFIED_CACHE
    key, stamp = str(model.path.resolve()), [stat.st_size, stat.st_mtime_ns, expected]
    try:
        known = json.loads(cache.read_text())
    except (OSError, ValueError):
        known = {}
    if not isinstance(known, dict):  # a cache of another shape only costs a new check
        known = {}
    if known.get(key) == stamp:
        return
    digest = hashlib.sha256(model.path.read_bytes()).hexdigest()
    if digest != expected:
        raise ModelError(f"shipped model {model.name} is damaged: {model.path} does not match the sha256 in "
                         f"{MANIFEST}; reinstall rtnst")
    known[key] = stamp
    try:  # the cache only saves time: a read-only home is no error
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(known))
    except OSError:
        pass
