"""Aliases (``--alias NAME=MODEL``) checked before any model loads: each names one served
model, by the name it is served under or the name it was asked for; none shadows a served
model, repeats, names itself or another alias. A bad alias is an :class:`InputError`
(``serve`` prints it and exits 2) instead of a server that never becomes ready or answers
with the wrong model."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from omniretrieve.errors import InputError
from omniretrieve.models.registry import Registry


def served_names(specs: Iterable[str], registry: Registry) -> dict[str, str]:
    """Every name a served model answers to, without loading it -> the id it is served under
    (a bundled model's id and its own aliases, a directory's name, a hub id as given)."""
    names: dict[str, str] = {}
    for spec in specs:
        bundled = registry.find_bundled(spec)
        if bundled is not None:
            model_id = bundled.model_id
            names.update({name: model_id for name in (model_id, *bundled.aliases)})
        else:
            model_id = Path(spec).name if Path(spec).expanduser().is_dir() else spec
        names[spec] = names[model_id] = model_id
    return names


def check_aliases(aliases: Iterable[tuple[str, str]], served: Mapping[str, str]) -> None:
    """Refuse, naming the alias, any that could not work as written (see the module)."""
    seen: dict[str, str] = {}
    pairs = list(aliases)
    alias_names = {name for name, _ in pairs}
    for name, target in pairs:
        where = f"--alias {name}={target}"
        if "=" in target:
            raise InputError(f"{where}: one alias per --alias, as NAME=MODEL", field="alias")
        if name in seen:
            raise InputError(
                f"{where}: {name!r} is already an alias of {seen[name]!r}", field="alias"
            )
        if name in served:
            raise InputError(
                f"{where}: {name!r} is a served model's own name; an alias may not hide it",
                field="alias",
            )
        if target == name or target in alias_names:
            raise InputError(
                f"{where}: an alias names a served model, not itself or another alias",
                field="alias",
            )
        if target not in served:
            raise InputError(
                f"{where}: {target!r} is not a served model; served: "
                f"{', '.join(sorted(set(served.values())))}",
                field="alias",
            )
        seen[name] = target
