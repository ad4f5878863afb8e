"""Read docker-compose.yaml the way Docker Compose does, for tests on a machine without Docker.

Covers the part of the Compose spec this project's files use: `${VAR}` interpolation with
`:-`/`-` defaults, `:?`/`?` required variables and `$$` escapes; YAML merge keys (PyYAML);
override files merged like `docker compose -f a -f b`; short volume and port syntax.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yaml"
AWS_OVERRIDE_FILE = REPO / "docker-compose.aws.yaml"
ENV_EXAMPLE = REPO / ".env.example"

_VARIABLE = re.compile(r"\$(?:(?P<escaped>\$)|\{(?P<braced>[^}]*)\}|(?P<named>[A-Za-z_][A-Za-z0-9_]*))")
_BRACED = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:-|-|:\?|\?|:\+|\+)(?P<arg>.*))?$", re.S)


class InterpolationError(ValueError):
    """A required variable is missing, or a `${...}` expression is malformed."""


@dataclass(frozen=True)
class VariableUse:
    name: str
    has_default: bool
    required: bool


def variable_uses(text: str) -> list[VariableUse]:
    """Every `${...}`/`$NAME` in a compose file's raw text."""
    uses = []
    for match in _VARIABLE.finditer(text):
        if match["escaped"]:
            continue
        if match["named"]:
            uses.append(VariableUse(match["named"], has_default=False, required=False))
            continue
        braced = _BRACED.match(match["braced"])
        if not braced:
            raise InterpolationError(f"malformed variable expression ${{{match['braced']}}}")
        op = braced["op"] or ""
        uses.append(
            VariableUse(braced["name"], has_default=op in {":-", "-"}, required=op in {":?", "?"})
        )
    return uses


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Substitute variables as Compose does; raise on a missing required one."""

    def substitute(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        if match["named"]:
            return env.get(match["named"], "")
        braced = _BRACED.match(match["braced"])
        if not braced:
            raise InterpolationError(f"malformed variable expression ${{{match['braced']}}}")
        name, op, arg = braced["name"], braced["op"], braced["arg"] or ""
        value = env.get(name)
        if op == ":-":
            return value if value else arg
        if op == "-":
            return arg if value is None else value
        if op in {":?", "?"} and (value is None or (op == ":?" and not value)):
            raise InterpolationError(f"required variable {name} is missing: {arg}")
        if op == ":+":
            return arg if value else ""
        if op == "+":
            return "" if value is None else arg
        return value or ""

    return _VARIABLE.sub(substitute, text)


def _interpolate_tree(node: Any, env: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [_interpolate_tree(item, env) for item in node]
    if isinstance(node, dict):
        return {key: _interpolate_tree(value, env) for key, value in node.items()}
    return node


def _merge(base: Any, override: Any, key: str = "") -> Any:
    """Compose's merge rules for override files (mappings merge, volumes/ports by target)."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for name, value in override.items():
            merged[name] = _merge(base[name], value, name) if name in base else value
        return merged
    if key == "volumes" and isinstance(base, list) and isinstance(override, list):
        by_target = {parse_volume(v).target: v for v in base}
        by_target.update({parse_volume(v).target: v for v in override})
        return list(by_target.values())
    if key in {"ports", "env_file"} and isinstance(base, list):
        return base + [item for item in override if item not in base]
    return override


def load(
    env: Mapping[str, str], *files: Path
) -> dict[str, Any]:
    """The merged, interpolated model of `docker compose -f file ...` (default: the main file)."""
    model: dict[str, Any] = {}
    for path in files or (COMPOSE_FILE,):
        document = yaml.safe_load(path.read_text())
        if not isinstance(document, dict):
            raise ValueError(f"{path}: expected a mapping at the top level")
        model = _merge(model, _interpolate_tree(document, env))
    return model


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a .env file (comments and blank lines skipped)."""
    values = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key.strip()):
            raise ValueError(f"{path}:{number}: expected KEY=VALUE, got {line!r}")
        values[key.strip()] = value.strip()
    return values


def commented_keys(path: Path) -> set[str]:
    """Variables documented in a .env file as commented-out `# KEY=` lines."""
    return set(re.findall(r"^#\s*([A-Z_][A-Z0-9_]*)=", path.read_text(), re.M))


@dataclass(frozen=True)
class Volume:
    source: str
    target: str
    read_only: bool

    @property
    def is_bind(self) -> bool:
        return self.source.startswith((".", "/", "~"))


def parse_volume(spec: str) -> Volume:
    parts = spec.split(":")
    if len(parts) not in (2, 3):
        raise ValueError(f"unsupported volume syntax {spec!r}")
    return Volume(parts[0], parts[1], read_only=len(parts) == 3 and "ro" in parts[2].split(","))


@dataclass(frozen=True)
class Port:
    host_ip: str
    host_port: int
    container_port: int


def parse_port(spec: str) -> Port:
    parts = str(spec).split(":")
    if len(parts) == 3:
        return Port(parts[0], int(parts[1]), int(parts[2]))
    if len(parts) == 2:
        return Port("0.0.0.0", int(parts[0]), int(parts[1]))
    raise ValueError(f"unsupported port syntax {spec!r}")


def as_argv(value: str | list[str] | None) -> list[str]:
    """`command`/`entrypoint` as an argument list (Compose splits strings shell-style)."""
    if value is None:
        return []
    return shlex.split(value) if isinstance(value, str) else [str(item) for item in value]


def healthcheck_argv(service: Mapping[str, Any]) -> tuple[str, list[str]]:
    """("CMD", argv) or ("CMD-SHELL", [script]) from a service's healthcheck."""
    test = service["healthcheck"]["test"]
    if isinstance(test, str):
        return "CMD-SHELL", [test]
    kind, *rest = test
    if kind not in {"CMD", "CMD-SHELL"}:
        raise ValueError(f"unsupported healthcheck test {test!r}")
    return kind, rest
