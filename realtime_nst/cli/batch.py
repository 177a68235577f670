"""Inputs to outputs for the commands that take several files or folders (`rtnst image`, `video`)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

from ..errors import InputError, OutputError

log = logging.getLogger("rtnst")


def plan_pairs(inputs: list[str], output: str, *, find: Callable[[Path], list[Path]], recursive: bool = False,
               suffix: str = "", written_as: Callable[[str], str] = str) -> list[tuple[Path, Path]]:
    """Pairs (input file, output file). A single file input with an output that is not a folder is
    file→file; otherwise every file goes into the folder OUT under its own name (``suffix`` added to
    the stem, its extension as ``written_as`` gives it), a folder input's subfolders mirrored.
    ``find(folder)``: the files of a folder input to take (searched recursively with ``recursive``);
    it raises when there are none."""
    out = Path(output)
    found: list[tuple[Path, Path]] = []  # (file, its path relative to OUT)
    for item in map(Path, inputs):
        if item.is_dir():
            if not recursive:
                subfolders = [d for d in item.iterdir() if d.is_dir()]
                if subfolders:
                    log.warning("rtnst: %s: %d subfolder%s not searched (--recursive searches them)", item,
                                len(subfolders), "" if len(subfolders) == 1 else "s")
            # OUT inside the folder (photos/ -> photos/styled/): what an earlier run wrote there is not input.
            # (OUT the folder itself is refused later: every output would replace its input.)
            inside = out.resolve() if out.resolve() != item.resolve() else None
            found += [(f, f.relative_to(item)) for f in find(item) if inside not in f.resolve().parents]
        elif item.exists():
            found.append((item, Path(item.name)))
        else:
            raise InputError(f"input {item} does not exist")
    if not found:
        raise InputError(f"no inputs outside the output folder {out}")
    single = len(inputs) == 1 and not Path(inputs[0]).is_dir() and not out.is_dir() and (out.suffix or out.exists())
    if single:
        return [(found[0][0], out)]
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out} is a file; with several inputs or a folder OUT must be a folder")
    pairs = [(f, out / rel.with_name(f"{rel.stem}{suffix}{written_as(rel.suffix)}")) for f, rel in found]
    names = [p[1] for p in pairs]
    clash = {n for n in names if names.count(n) > 1}
    if clash:
        raise OutputError(f"several inputs would write {sorted(clash)[0]}; use distinct names or --suffix")
    return pairs


def make_folders(pairs: list[tuple[Path, Path]], output: str) -> None:
    """The output folder (and the subfolders it mirrors) where the outputs go into one."""
    if pairs[0][1] == Path(output):
        return
    for folder in sorted({dst.parent for _, dst in pairs}):
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot make the output folder {folder}: {exc.strerror}") from None
