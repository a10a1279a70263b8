"""Settings files and overrides, shared by every command with a config: YAML file <- dotted
`--set KEY=VALUE` overrides, validated as one pydantic model with one-line errors."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from chromaref.platform.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML config file as a dict (empty file: {}).

    Raises:
        ConfigError: missing, unreadable, not YAML, or not a mapping at the top.
    """
    path = Path(path)
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        first = str(exc).strip().splitlines()[0]
        raise ConfigError(f"{path}: not valid YAML ({first})") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: expected a mapping of settings, got {type(values).__name__}")
    return values


def parse_assignment(text: str) -> tuple[str, Any]:
    """`--set loss.chroma_weight=2` -> ("loss.chroma_weight", 2); the value is read as YAML."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set expects KEY=VALUE, got {text!r}")
    try:
        return key.strip(), yaml.safe_load(raw)
    except yaml.YAMLError:
        raise ConfigError(f"--set {text}: the value is not valid YAML") from None


def resolve_settings(
    model: type[M],
    base: dict[str, Any] | None = None,
    overrides: dict[str, Any] | None = None,
    *,
    source: str = "config",
) -> M:
    """Defaults <- `base` (a YAML file's dict) <- `overrides` (dotted keys), as one `model`.

    Raises:
        ConfigError: one line naming every bad key or value, and `source`.
    """
    values = copy.deepcopy(base or {})
    for key, value in (overrides or {}).items():
        _set_dotted(values, key, value)
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise ConfigError(_one_line(exc, source)) from None


def _set_dotted(values: dict[str, Any], key: str, value: Any) -> None:
    """values["a"]["b"] = value for key "a.b", creating the sections on the way."""
    *sections, leaf = key.split(".")
    for section in sections:
        inner = values.setdefault(section, {})
        if not isinstance(inner, dict):
            raise ConfigError(f"setting {key}: {section} is not a section")
        values = inner
    values[leaf] = value


def _one_line(exc: ValidationError, source: str) -> str:
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "config"
        if error["type"] == "extra_forbidden":
            problems.append(f"unknown setting {where!r}")
        else:
            problems.append(f"{where}: {error['msg']} (got {error.get('input')!r})")
    return f"{source}: " + "; ".join(problems)
