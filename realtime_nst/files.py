"""Output files: checked before any work starts, and written whole or not at all.

Every writer goes through ``atomic_write`` (or ``AtomicFile`` when the file stays open across many
calls, as a video does): the data goes to a hidden temporary name beside the output, which is
renamed over it only when complete, so a failure or an interrupt never leaves a half-written file
under the user's name. The temporary name keeps the suffix, for writers that pick the format by it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from pathlib import Path
from typing import Iterable, Iterator

from .errors import OutputError


def check_not_input(outputs: Iterable[str | os.PathLike], inputs: Iterable[str | os.PathLike]) -> None:
    """Refuse an output that is one of the inputs, overwrite or not: the user's source would be lost.
    Each path is resolved once (a folder of photos into itself is n outputs against n inputs)."""
    sources = {Path(i).resolve() for i in inputs if Path(i).exists()}
    for path in map(Path, outputs):
        if path.exists() and path.resolve() in sources:
            raise OutputError(f"output {path} is an input file; choose another name")


def check_outputs(paths: Iterable[str | os.PathLike], *, overwrite: bool,
                  inputs: Iterable[str | os.PathLike] = (), probe: bool = True, make_folders: bool = False) -> None:
    """Fail before any work if an output cannot or may not be written: it is an input, it exists and
    ``overwrite`` is off, it is a folder, or its folder is missing (``make_folders``: made instead)
    or (``probe``: a file is created and removed there) read-only."""
    paths = [Path(p) for p in paths]
    check_not_input(paths, inputs)
    for path in paths:
        if path.is_dir():  # before "exists": --overwrite would not help
            raise OutputError(f"output {path} is a folder")
    existing = [p for p in paths if p.exists()]
    if existing and not overwrite:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise OutputError(f"{existing[0]} exists{more}; pass overwrite=True to replace it", param="overwrite")
    probed: set[Path] = set()
    for path in paths:
        parent = path.parent if str(path.parent) else Path(".")
        if make_folders and not parent.exists():
            try:
                parent.mkdir(parents=True)
            except OSError as exc:
                raise OutputError(f"cannot make the folder {parent} for {path.name}: {exc.strerror}") from None
        if not parent.is_dir():
            why = "is not a folder" if parent.exists() else "does not exist"
            raise OutputError(f"cannot write {path}: folder {parent} {why}")
        if probe and parent not in probed:
            probed.add(parent)
            _probe_writable(parent, path)


def _probe_writable(folder: Path, path: Path) -> None:
    """Create and remove a file in ``folder``: os.access says yes to root on a read-only mount or
    a folder a network file system refuses, and the work would fail only at the end."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".rtnst-probe-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: folder {folder} is not writable ({exc.strerror})") from None


def check_output_path(path: str | os.PathLike, *, overwrite: bool, inputs: Iterable[str | os.PathLike] = (),
                      probe: bool = True) -> None:
    """check_outputs for one output."""
    check_outputs([path], overwrite=overwrite, inputs=inputs, probe=probe)


class KeptIfFinished:
    """A file sink as a context manager: ``close()`` when the block ends normally, ``abort()`` when it
    raises (a half-made output is never left behind as if complete)."""

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class AtomicFile:
    """A temporary path (``tmp``) beside ``path``: ``commit()`` renames it into place, ``discard()``
    removes it. Both are safe to call more than once; after a commit, discard does nothing.

    The temporary name is unique (two runs writing one output do not share it), and with
    ``overwrite`` off the commit refuses a file that appeared at ``path`` after the checks at start.
    """

    def __init__(self, path: str | os.PathLike, *, overwrite: bool = True) -> None:
        self.path = Path(path)
        self._overwrite = overwrite
        # Not made with mkstemp: its file is private (0600), and the writers create the file with
        # the user's umask. A random token is enough to keep two runs apart.
        self.tmp = self.path.with_name(f".{self.path.stem}.{secrets.token_hex(4)}.part{self.path.suffix}")
        self._done = False

    def commit(self) -> None:
        if self._done:
            return
        try:
            if self._overwrite:
                os.replace(self.tmp, self.path)
            else:
                _rename_no_clobber(self.tmp, self.path)
        except FileExistsError:
            self.discard()
            raise OutputError(f"{self.path} appeared while it was being written (another run?); "
                              "it was left as it is", param="overwrite") from None
        except OSError as exc:
            self.discard()
            raise OutputError(f"cannot write {self.path}: {exc.strerror}") from None
        self._done = True

    def discard(self) -> None:
        if not self._done:
            self._done = True
            self.tmp.unlink(missing_ok=True)


def _rename_no_clobber(src: Path, dst: Path) -> None:
    """Move ``src`` to ``dst``, raising FileExistsError if ``dst`` exists (a hard link fails on an
    existing name; file systems without hard links get a check and a rename)."""
    try:
        os.link(src, dst)
    except FileExistsError:
        raise
    except OSError:
        if dst.exists():
            raise FileExistsError(dst) from None
        os.replace(src, dst)
        return
    src.unlink()


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, *, overwrite: bool = True) -> Iterator[Path]:
    """Yields the temporary path to write ``path``'s data to; renamed into place when the block ends
    normally, removed when it raises. An OSError while writing becomes OutputError. ``overwrite``
    off: a file that appeared at ``path`` meanwhile is kept, and OutputError raised."""
    f = AtomicFile(path, overwrite=overwrite)
    try:
        yield f.tmp
    except OSError as exc:
        f.discard()
        raise OutputError(f"cannot write {f.path}: {exc.strerror or exc}") from None
    except BaseException:
        f.discard()
        raise
    f.commit()
