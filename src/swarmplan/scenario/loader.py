"""Load a scenario (built-in name or YAML path), apply ``--set`` overrides, validate, report errors well.

Validation errors are reported as ``file:line:col: field: message`` (ruamel.yaml keeps positions), all at
once, wrapped in one SwarmplanError so the CLI can print them without a traceback.
"""

from __future__ import annotations

import copy
import io
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from swarmplan.errors import SwarmplanError
from swarmplan.scenario import models
from swarmplan.scenario.files import read_text
from swarmplan.scenario.models import Scenario

DEFAULT_SCENARIO = "paper-abvt"


def builtin_names() -> list[str]:
    folder = resources.files("swarmplan.scenario").joinpath("data").joinpath("builtin")
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def _read_text(ref: str) -> tuple[str, str, Path | None]:
    """Return (text, display name, directory for relative paths) for a built-in name or a file path."""
    if ref in builtin_names():
        text = resources.files("swarmplan.scenario").joinpath("data").joinpath("builtin").joinpath(f"{ref}.yaml").read_text()
        return text, f"<built-in {ref}>", None
    path = Path(ref).expanduser()
    if not path.exists():
        raise SwarmplanError(
            "scenario",
            f"no built-in scenario or file named {ref!r}",
            f"use one of {', '.join(builtin_names())} (see `swarmplan scenarios`) or an existing YAML path",
        )
    return read_text(path, "scenario", "YAML file"), str(path), path.resolve().parent


def _parse_scalar(text: str) -> Any:
    """Parse an override value as YAML, so ``0.1`` is a number and ``[a, b]`` a list."""
    try:
        return YAML(typ="safe").load(io.StringIO(text))
    except YAMLError:
        return text


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Apply ``dotted.key=value`` overrides (list items by index: ``servers.0.gpu=l4``)."""
    data = copy.deepcopy(data)
    for item in overrides:
        if "=" not in item:
            raise SwarmplanError("--set", f"{item!r} is not key=value", "write e.g. --set workload.rate_per_s=0.1")
        key, value = item.split("=", 1)
        parts = key.strip().split(".")
        node: Any = data
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if isinstance(node, list):
                if not part.isdigit() or int(part) >= len(node):
                    raise SwarmplanError("--set", f"{key}: {part!r} is not an index of that list", "use 0-based indices")
                if last:
                    node[int(part)] = _parse_scalar(value)
                else:
                    node = node[int(part)]
            elif isinstance(node, dict):
                if last:
                    node[part] = _parse_scalar(value)
                else:
                    if not isinstance(node.get(part), (dict, list)):
                        node[part] = {}
                    node = node[part]
            else:
                raise SwarmplanError("--set", f"{key}: {'.'.join(parts[:i])} is not a mapping", "check the key")
    return data


def _plain(node: Any) -> Any:
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node


def _position(tree: Any, loc: tuple) -> tuple[int, int] | None:
    """Line/column (1-based) of the deepest YAML node on the error's path."""
    pos = None
    node = tree
    for part in loc:
        lc = getattr(node, "lc", None)
        try:
            if isinstance(node, dict) and part in node:
                if lc is not None:
                    line, col = lc.key(part)
                    pos = (line + 1, col + 1)
                node = node[part]
            elif isinstance(node, list) and isinstance(part, int) and part < len(node):
                if lc is not None:
                    line, col = lc.item(part)
                    pos = (line + 1, col + 1)
                node = node[part]
            else:
                continue
        except (KeyError, IndexError, TypeError):
            break
    return pos


_MODEL_NAMES = {name for name, obj in vars(models).items() if isinstance(obj, type) and issubclass(obj, models.BaseModel)}


def field_path(loc: tuple) -> tuple:
    """A pydantic error location without its union branch tags (``ServerDraw``, ``list[ServerEntry]``), so it
    reads as the scenario's own dotted path."""
    return tuple(p for p in loc if not (isinstance(p, str) and ("[" in p or p in _MODEL_NAMES)))


_BRANCH_TYPES = ("list_type", "dict_type", "model_type", "model_attributes_type")


def _format_errors(exc: ValidationError, tree: Any, where: str, overridden: list[str] = ()) -> str:
    lines = []
    errors = exc.errors()
    # Drop pydantic's union branch names (e.g. 'ServerDraw', 'list[ServerEntry]') from the path.
    locs = [field_path(e["loc"]) for e in errors]
    for err, loc in zip(errors, locs):
        # "Input should be a valid list" for the union branch the user did not write, when the branch they did
        # write has a real error deeper down, is noise.
        if err["type"] in _BRANCH_TYPES and any(
            o[: len(loc)] == loc and e["type"] not in _BRANCH_TYPES for o, e in zip(locs, errors)
        ):
            continue
        field = ".".join(str(p) for p in loc) or "(top level)"
        pos = _position(tree, loc)
        at = f"{where}:{pos[0]}:{pos[1]}" if pos else where
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field (check its spelling; `swarmplan schema` lists every field)"
        if any(field.startswith(k) or k.startswith(field) for k in overridden):
            at = "--set"
        lines.append(f"{at}: {field}: {msg}")
    return "\n  ".join(dict.fromkeys(lines))


def load_scenario(ref: str = DEFAULT_SCENARIO, overrides: list[str] | None = None) -> tuple[Scenario, Path | None]:
    """Return the validated Scenario and the directory its relative paths are resolved against."""
    text, where, base = _read_text(ref)
    try:
        tree = YAML(typ="rt").load(text)
    except YAMLError as exc:
        raise SwarmplanError("scenario", f"{where} is not valid YAML: {exc}", "fix the YAML syntax at the position shown")
    if not isinstance(tree, dict):
        raise SwarmplanError("scenario", f"{where} must be a YAML mapping", "start the file with keys such as model:, servers:")
    record = tree.get("run")
    if isinstance(record, dict) and "swarmplan_version" in record and isinstance(record.get("scenario"), dict):
        # A result file (summary.json, plan --json, …): re-run the fully resolved scenario it records.
        tree, where = record["scenario"], f"{where} (its run.scenario)"
        base = Path(record["scenario_dir"]) if record.get("scenario_dir") else base
    data = apply_overrides(_plain(tree), overrides or [])
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        keys = [o.split("=", 1)[0].strip() for o in overrides or []]
        text = _format_errors(exc, tree, where, keys)
        raise SwarmplanError("scenario", "invalid scenario:" + ("\n  " if "\n" in text else " ") + text)
    return _resolve_arrival_count(scenario, base), base


def _resolve_arrival_count(scenario: Scenario, base: Path | None) -> Scenario:
    """With an arrival-times file and no n_requests, the run has one request per time in the file; write that
    count into the scenario so the resolved scenario states it."""
    wl = scenario.workload
    if wl.arrivals != "times" or wl.arrival_times_file is None:
        return scenario
    from swarmplan.scenario.workload import load_arrival_times

    count = len(load_arrival_times(wl.arrival_times_file, base))
    if "n_requests" in wl.model_fields_set:
        if wl.n_requests > count:
            raise SwarmplanError(
                "workload.n_requests",
                f"{wl.n_requests} requests but {wl.arrival_times_file} holds only {count} arrival times",
                f"ask for at most {count}",
            )
        return scenario
    return scenario.model_copy(update={"workload": wl.model_copy(update={"n_requests": count})})


def scenario_schema() -> dict:
    return Scenario.model_json_schema()
