"""Study configuration: one set of defaults (`defaults.yaml`), overrides deep-merged on top.

`load_config(path_or_mapping, preset=None)` returns the resolved config as plain dicts. Every key
of an override must exist in the defaults (at any depth), else `ConfigError` names the key path
(e.g. `gan.stpes`); values are type-checked against the defaults' types. `validate` then checks
values up front (before any stage runs): names looked up at run time (CNN architecture and recipe,
GAN presets and last blocks, spectral classifiers, FID extractor, robustness grid) against the
library's own registries, and counts/fractions against their valid ranges.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Collection, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ganforensics.detectors.cnn.archs import ARCHS
from ganforensics.detectors.cnn.recipes import RECIPES
from ganforensics.detectors.one_class import FEATURES as ONE_CLASS_FEATURES
from ganforensics.detectors.one_class import MODELS as ONE_CLASS_MODELS
from ganforensics.errors import ConfigError
from ganforensics.evaluate.detection import GRIDS
from ganforensics.gan.augment import parse_policy
from ganforensics.gan.config import PRESETS as GAN_PRESETS
from ganforensics.gan.nets import LAST_BLOCKS, SIZES, parse_last_block
from ganforensics.gan.objectives import resolve as resolve_objectives
from ganforensics.metrics.features import EXTRACTORS
from ganforensics.spectral.classifiers import CLASSIFIERS
from ganforensics.study.setups import SIMULATOR_SOURCES, check_arms, check_train_setups

PRESETS = {"default": None, "quick": "quick.yaml", "seeds3": "seeds3.yaml",
           "sampled": "sampled.yaml", "objectives": "objectives.yaml",
           "oneclass": "oneclass.yaml", "npr": "npr.yaml", "lskd": "lskd.yaml"}
"""Named presets: packaged YAML files of overrides beside defaults.yaml (applied in the order
given, before a config file)."""

# keys whose default is null (or that accept more than one type): allowed types
_NULLABLE: dict[str, tuple[type, ...]] = {
    "data.sources": (list, type(None)),
    "data.max_patches": (int, type(None)),
    "gan.n_d": (int, type(None)),
    "seeds": (list, type(None)),
    "detectors.train_setup": (str, list),
    "simulator.steps": (int, type(None)),
    "simulator.batch_size": (int, type(None)),
    "simulator.lr": (float, type(None)),
    "detectors.cnn.lr": (float, type(None)),
    "simulator.width": (int, type(None)),
    "simulator.bottleneck": (int, type(None)),
}
# the keys a mapping item of gan.setups may hold, with their types
SETUP_KEYS: dict[str, tuple[type, ...]] = {
    "name": (str,),
    "last_block": (str,),
    "preset": (str,),
    "steps": (int,),
    "objectives": (list,),
    "objective_params": (dict,),
}
# enumerated values, checked against the library's own registries (a tuple of names or a dict
# keyed by name) so that the names live in one place
_REGISTRIES: dict[str, Collection[Any]] = {
    "gan.preset": GAN_PRESETS,
    "detectors.cnn.arch": ARCHS,
    "detectors.cnn.recipe": RECIPES,
    "detectors.npr.arch": ARCHS,
    "detectors.npr.recipe": RECIPES,
    "detectors.spectral_decay.classifier": CLASSIFIERS,
    "detectors.spectral_profile.classifier": CLASSIFIERS,
    "detectors.one_class.features": ONE_CLASS_FEATURES,
    "detectors.one_class.model": ONE_CLASS_MODELS,
    "detectors.lskd.arch": ARCHS,
    "detectors.lskd.recipe": RECIPES,
    "quality.extractor": EXTRACTORS,
    "evaluate.grid": GRIDS,
}
# choices with no registry in the library (Recipe.monitor is compared with "val_acc")
_CHOICES: dict[str, tuple[str, ...]] = {
    "detectors.cnn.monitor": ("val_acc", "val_loss"),
    "simulator.source": SIMULATOR_SOURCES,
    "gan.source": SIMULATOR_SOURCES,
}
# integer keys and their smallest valid value (KID and covariances need at least 2 images)
_MINIMUM: dict[str, int] = {
    "gan.steps": 1, "gan.batch_size": 1, "gan.checkpoint_every": 1,
    "fakes.n_train": 1, "fakes.n_val": 1, "fakes.n_test": 2, "quality.kid_subsets": 1,
    "quality.kid_subset_size": 2, "quality.grid": 1, "detectors.cnn.epochs": 1,
    "detectors.cnn.batch_size": 1, "detectors.npr.epochs": 1, "detectors.npr.batch_size": 1,
    "bypass.n_train": 1, "bypass.draws": 1, "explain.top_k": 1,
    "explain.random_draws": 1, "explain.n_samples": 1, "evaluate.resamples": 0,
    "quality.fid_resamples": 0, "quality.n": 2,
    "detectors.lskd.epochs": 1, "detectors.lskd.batch_size": 1,
    "detectors.lskd.n_per_class.train": 1, "detectors.lskd.n_per_class.val": 1,
    "detectors.lskd.n_per_class.test": 1,
}


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe YAML loader that refuses a key given twice in one mapping (plain YAML keeps the
    last one silently, so a second `gan:` block would drop the first)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
            except TypeError:  # an unhashable key: the base class reports it
                continue
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (line {key_node.start_mark.line + 1})",
                    key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def load_yaml(text: str) -> Any:
    """`text` parsed as YAML, safely, refusing duplicate keys (`yaml.YAMLError` otherwise)."""
    return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass


def _read_package_yaml(name: str) -> dict[str, Any]:
    text = resources.files("ganforensics.study").joinpath(name).read_text(encoding="utf-8")
    data = load_yaml(text)
    if not isinstance(data, dict):
        raise ConfigError(f"package file study/{name} is not a mapping")  # pragma: no cover
    return data


def defaults() -> dict[str, Any]:
    """A fresh copy of the defaults (`study/defaults.yaml`)."""
    return _read_package_yaml("defaults.yaml")


def preset_overrides(preset: str) -> dict[str, Any]:
    """Overrides of a named preset ("default" has none; the others are `study/<file>`)."""
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r} (known: {', '.join(PRESETS)})")
    name = PRESETS[preset]
    return {} if name is None else _read_package_yaml(name)


def parse_seeds(text: str) -> list[int]:
    """`2021,2022,2023` -> [2021, 2022, 2023] (the CLI's --seeds); `ConfigError` otherwise."""
    parts = [p.strip() for p in text.split(",")]
    try:
        return [int(p) for p in parts]
    except ValueError:
        raise ConfigError(f"--seeds: expected comma-separated integers such as "
                          f"2021,2022,2023, got {text!r}") from None


def _check_seeds(seeds: Any) -> None:
    """`seeds` is null or a non-empty list of distinct integers."""
    if seeds is None:
        return
    if not seeds:
        raise ConfigError("config key 'seeds' must list at least one seed (or be null)")
    for i, s in enumerate(seeds):
        if isinstance(s, bool) or not isinstance(s, int) or s < 0:
            raise ConfigError(f"config key 'seeds[{i}]' must be a non-negative integer, "
                              f"got {s!r}")
    dup = sorted({s for s in seeds if seeds.count(s) > 1})
    if dup:
        raise ConfigError(f"config key 'seeds' must not repeat a seed (repeated: "
                          f"{', '.join(map(str, dup))})")


def _type_name(types: tuple[type, ...]) -> str:
    names = {bool: "true/false", int: "integer", float: "number", str: "string", list: "list",
             dict: "mapping", type(None): "null"}
    return " or ".join(names.get(t, t.__name__) for t in types)


def _type_ok(value: Any, types: tuple[type, ...]) -> bool:
    if isinstance(value, bool):
        return bool in types
    if isinstance(value, int) and float in types:
        return True
    return isinstance(value, types)


def _expected_types(path: str, default: Any) -> tuple[type, ...]:
    if path in _NULLABLE:
        return _NULLABLE[path]
    if isinstance(default, bool):
        return (bool,)
    if isinstance(default, float):
        return (float,)
    if isinstance(default, int):
        return (int,)
    if isinstance(default, str):
        return (str,)
    if isinstance(default, list):
        return (list,)
    if isinstance(default, dict):
        return (dict,)
    return (type(default),)


def merge(base: Mapping[str, Any], over: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Deep-merge `over` into a copy of `base`; unknown keys and wrong types are ConfigErrors."""
    if not isinstance(over, Mapping):
        where = prefix.rstrip(".") or "the config"
        raise ConfigError(f"{where}: expected a mapping of keys, got {type(over).__name__}")
    out = copy.deepcopy(dict(base))
    for key, value in over.items():
        path = f"{prefix}{key}"
        if not isinstance(key, str) or key not in base:
            known = ", ".join(sorted(str(k) for k in base))
            raise ConfigError(f"unknown config key '{path}' (known keys here: {known})")
        default = base[key]
        if isinstance(default, dict):
            if not isinstance(value, Mapping):
                raise ConfigError(f"config key '{path}' must be a mapping, got {value!r}")
            out[key] = merge(default, value, prefix=f"{path}.")
            continue
        types = _expected_types(path, default)
        if not _type_ok(value, types):
            raise ConfigError(
                f"config key '{path}' must be {_type_name(types)}, got {value!r} "
                f"({type(value).__name__})"
            )
        out[key] = float(value) if float in types and isinstance(value, int) else value
    return out


def _registry(registry: Collection[Any]) -> tuple[str, ...]:
    """The names of a library registry (a tuple of names or a dict keyed by name)."""
    return tuple(str(n) for n in registry)


def _unknown_value(path: str, value: Any, known: tuple[Any, ...]) -> ConfigError:
    return ConfigError(
        f"config key '{path}': unknown value {value!r} (known: {', '.join(map(str, known))})"
    )


def _check_last_block(path: str, value: str) -> None:
    """As the GAN stage parses it (`gan.nets.parse_last_block`), listing `LAST_BLOCKS`."""
    known = _registry(LAST_BLOCKS)
    try:
        parse_last_block(value)
    except ConfigError:
        raise _unknown_value(path, value, known) from None


def _normalise_setups(items: list[Any], preset: str) -> list[dict[str, Any]]:
    setups: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        path = f"gan.setups[{i}]"
        raw = item
        if isinstance(item, str):
            item = {"name": item, "last_block": item}
        if not isinstance(item, Mapping):
            raise ConfigError(f"{path}: must be a last-block name or a mapping, got {item!r}")
        for key, value in item.items():
            if key not in SETUP_KEYS:
                raise ConfigError(
                    f"unknown config key '{path}.{key}' (known: {', '.join(SETUP_KEYS)})"
                )
            if not _type_ok(value, SETUP_KEYS[key]):
                raise ConfigError(
                    f"config key '{path}.{key}' must be {_type_name(SETUP_KEYS[key])}, "
                    f"got {value!r}"
                )
        if "last_block" not in item and "name" not in item:
            raise ConfigError(f"{path}: needs at least 'last_block' (or 'name')")
        last = str(item.get("last_block", item.get("name")))
        entry = {"name": str(item.get("name", last)), "last_block": last,
                 "preset": str(item.get("preset", preset))}
        _check_last_block(path if isinstance(raw, str) else f"{path}.last_block", last)
        presets = _registry(GAN_PRESETS)
        if entry["preset"] not in presets:
            raise _unknown_value(f"{path}.preset", entry["preset"], presets)
        if "steps" in item:
            if item["steps"] < 1:
                raise ConfigError(
                    f"config key '{path}.steps' must be at least 1, got {item['steps']!r}"
                )
            entry["steps"] = int(item["steps"])
        if item.get("objectives"):
            try:
                params = resolve_objectives(item["objectives"], item.get("objective_params"))
            except ConfigError as e:
                raise ConfigError(f"{path}: {e}") from None
            entry["objectives"] = list(params)
            entry["objective_params"] = params
        elif item.get("objective_params"):
            raise ConfigError(f"{path}.objective_params: set without {path}.objectives")
        setups.append(entry)
    names = [s["name"] for s in setups]
    for i, n in enumerate(names):
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", n):
            raise ConfigError(
                f"gan.setups[{i}].name {n!r}: use letters, digits, '.', '_' or '-' only"
            )
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"gan.setups: setup names must be unique (repeated: {', '.join(dup)})")
    return setups


def _check_lskd(c: dict[str, Any]) -> None:
    """`detectors.lskd`: alphas in [0, 1), positive temperatures, neither empty nor repeated
    (normalised to floats), aug_prob in [0, 1]."""
    checks = {"alphas": (lambda v: 0 <= v < 1, "a number in [0, 1)"),
              "temperatures": (lambda v: v > 0, "a positive number")}
    for key, (ok, what) in checks.items():
        values = c[key]
        if not values:
            raise ConfigError(f"config key 'detectors.lskd.{key}' must list at least one value")
        for i, v in enumerate(values):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not ok(v):
                raise ConfigError(f"config key 'detectors.lskd.{key}[{i}]' must be {what}, "
                                  f"got {v!r}")
        if len(set(values)) != len(values):
            raise ConfigError(f"config key 'detectors.lskd.{key}' must not repeat a value, "
                              f"got {values!r}")
        c[key] = [float(v) for v in values]
    if not 0 <= c["aug_prob"] <= 1:
        raise ConfigError(f"config key 'detectors.lskd.aug_prob' must be in [0, 1], "
                          f"got {c['aug_prob']}")


def _get(cfg: Mapping[str, Any], path: str) -> Any:
    node: Any = cfg
    for part in path.split("."):
        node = node[part]
    return node


def validate(cfg: dict[str, Any]) -> dict[str, Any]:
    """Value checks beyond types; normalises `gan.setups` to mappings. Returns `cfg`."""
    _check_seeds(cfg["seeds"])
    check_arms(cfg)
    for path, minimum in _MINIMUM.items():
        value = _get(cfg, path)
        if value < minimum:
            raise ConfigError(f"config key '{path}' must be at least {minimum}, got {value!r}")
    sizes = _registry(SIZES)
    if str(cfg["data"]["size"]) not in sizes:
        raise _unknown_value("data.size", cfg["data"]["size"], sizes)
    for path, where in _REGISTRIES.items():
        known = _registry(where)
        value = _get(cfg, path)
        if value not in known:
            raise _unknown_value(path, value, known)
    for path, choices in _CHOICES.items():
        value = _get(cfg, path)
        if value not in choices:
            raise _unknown_value(path, value, choices)
    if cfg["data"]["max_patches"] is not None and cfg["data"]["max_patches"] < 1:
        raise ConfigError(
            f"config key 'data.max_patches' must be at least 1 or null, "
            f"got {cfg['data']['max_patches']!r}"
        )
    if cfg["data"]["sources"] is not None:
        for i, src in enumerate(cfg["data"]["sources"]):
            if not isinstance(src, str):
                raise ConfigError(f"config key 'data.sources[{i}]' must be a folder path string")
    lr = cfg["detectors"]["cnn"]["lr"]
    if lr is not None and lr <= 0:
        raise ConfigError(f"config key 'detectors.cnn.lr' must be a number > 0 or null, got {lr!r}")
    p = cfg["detectors"]["cnn"]["aug_prob"]
    if not 0 <= p <= 1:
        raise ConfigError(f"config key 'detectors.cnn.aug_prob' must be in [0, 1], got {p}")
    oc = cfg["detectors"]["one_class"]
    if not 0 <= oc["target_fpr"] < 1 or not 0 < oc["edge_quantile"] <= 1:
        raise ConfigError("config keys 'detectors.one_class.target_fpr' must be in [0, 1) and "
                          f"'edge_quantile' in (0, 1], got {oc['target_fpr']}, "
                          f"{oc['edge_quantile']}")
    if oc["doping"] < 0 or oc["compare_ratio"] <= 0:
        raise ConfigError("config keys 'detectors.one_class.doping' must be >= 0 and "
                          f"'compare_ratio' > 0, got {oc['doping']}, {oc['compare_ratio']}")
    _check_lskd(cfg["detectors"]["lskd"])
    frac = cfg["spectra"]["top_fraction"]
    if not 0 < frac <= 1:
        raise ConfigError(f"config key 'spectra.top_fraction' must be in (0, 1], got {frac}")
    try:
        cfg["gan"]["augment"] = list(parse_policy(cfg["gan"]["augment"]))
    except ConfigError as exc:
        raise ConfigError(f"config key 'gan.augment': {str(exc).removeprefix('augment: ')}"
                          ) from None
    if not 0 <= cfg["gan"]["ema"] < 1:
        raise ConfigError(f"config key 'gan.ema' must be in [0, 1), got {cfg['gan']['ema']}")
    if not (isinstance(cfg["gan"]["d_depth"], int) and cfg["gan"]["d_depth"] >= 1):
        raise ConfigError("config key 'gan.d_depth' must be a positive integer, got "
                          f"{cfg['gan']['d_depth']!r}")
    n_d = cfg["gan"]["n_d"]
    if n_d is not None and not (isinstance(n_d, int) and not isinstance(n_d, bool) and n_d >= 1):
        raise ConfigError(f"config key 'gan.n_d' must be a positive integer or null, got {n_d!r}")
    if not cfg["gan"]["setups"]:
        raise ConfigError("config key 'gan.setups' must name at least one setup")
    cfg["gan"]["setups"] = _normalise_setups(cfg["gan"]["setups"], cfg["gan"]["preset"])
    check_train_setups(cfg)
    b, n_fakes = cfg["bypass"], cfg["fakes"]["n_train"]
    if b["enabled"] and b["n_train"] > n_fakes:
        raise ConfigError(
            f"config key 'bypass.n_train' = {b['n_train']} exceeds fakes.n_train = {n_fakes} "
            f"(each bypass draw takes that many of the training setup's train fakes)"
        )
    return cfg


def read_overrides(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a YAML file of overrides (an empty file means no overrides)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: config file not found")
    try:
        data = load_yaml(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML ({str(exc).splitlines()[0]})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{p}: not a UTF-8 text file") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{p}: the top level must be a mapping of keys, got {type(data).__name__}"
        )
    return data


def load_config(
    overrides: str | os.PathLike[str] | Mapping[str, Any] | None = None,
    *,
    preset: str | Sequence[str] = "default",
    seeds: Sequence[int] | None = None,
) -> dict[str, Any]:
    """The resolved study config: defaults, then the preset(s) in order, then `overrides` (file
    or mapping), then `seeds` (the CLI's --seeds) when given."""
    cfg = defaults()
    for name in [preset] if isinstance(preset, str) else preset:
        cfg = merge(cfg, preset_overrides(name))
    if overrides is not None:
        if isinstance(overrides, Mapping):
            over = dict(overrides)
            cfg = merge(cfg, over)
        else:
            try:
                cfg = merge(cfg, read_overrides(overrides))
            except ConfigError as exc:
                if str(overrides) in str(exc):
                    raise
                raise ConfigError(f"{overrides}: {exc}") from None
    if seeds is not None:
        cfg["seeds"] = list(seeds)
    return validate(cfg)
