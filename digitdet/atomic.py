"""Build an output folder in a temporary folder beside it and rename it into place, so nothing is half-written.

The temporary folder is named `.NAME.building-PID-TOKEN` after its target and the process that builds it. A run
that was killed (kill -9, power loss) cannot remove its own; the next build of the same target removes those whose
process is gone, and says so. Other targets' folders, and those of runs still going, are left alone.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import sys
from contextlib import contextmanager
from pathlib import Path

PARTS = ("building", "retired")  # a folder being built, and a replaced output between two renames


def refuse_overlap(out_dir: Path, sources: list[Path], read_folders: list[Path] = ()) -> None:
    """An output folder must never be, or contain, one of its `sources` (replacing it would delete them), nor lie
    inside one of the `read_folders` whose every file is read (its output would be read back as more sources)."""
    out_dir = out_dir.resolve()
    for source in sources:
        source = source.resolve()
        if source == out_dir or out_dir in source.parents:
            raise ValueError(f"{out_dir}: output folder would contain the source {source}; choose another folder")
    for folder in read_folders:
        folder = folder.resolve()
        if folder in out_dir.parents:
            raise ValueError(f"{out_dir}: output folder lies inside the source folder {folder}, whose files are "
                             f"all read; choose a folder outside it")


def refuse_overwriting(outputs: list[Path], sources: list[Path], hint: str) -> None:
    """No output file may be a source file, whatever either is called: files are compared by identity (device and
    inode), so a link, a symbolic link or another spelling of the same file is caught too."""
    identities = {file_identity(p): p for p in sources if p.exists()}
    for output in outputs:
        if output.exists() and (source := identities.get(file_identity(output))):
            same = "" if output.resolve() == source.resolve() else f" (the same file as {source})"
            raise ValueError(f"{output}: this output is a source{same}, which would be overwritten; {hint}")


def file_identity(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_dev, stat.st_ino


@contextmanager
def replaced(path: Path):
    """Yield a temporary path beside `path` to write; when the block ends it replaces `path`, on an error it is
    removed, so `path` is never half-written."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield temporary
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)


@contextmanager
def build_into(out_dir: Path, overwrite: bool = False):
    """Yield a temporary folder to fill; on success it replaces `out_dir`, on any error it is removed.

    An existing `out_dir` is refused unless `overwrite` (and always when it is not a folder); it is only deleted once
    the new folder is complete. The folder is made like any other, so its mode follows the user's umask.
    """
    out_dir = out_dir.resolve()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    clear_stale(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise FileExistsError(f"{out_dir} is a file, not a folder; choose another output folder")
    if out_dir.exists() and not overwrite:
        raise FileExistsError(f"{out_dir} already exists; pass --overwrite to replace it")
    building = part_path(out_dir, "building")
    building.mkdir()
    try:
        yield building
        if out_dir.exists():
            retired = part_path(out_dir, "retired")
            out_dir.rename(retired)
            building.rename(out_dir)
            shutil.rmtree(retired)
        else:
            building.rename(out_dir)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise


def part_path(out_dir: Path, part: str) -> Path:
    return out_dir.with_name(f".{out_dir.name}.{part}-{os.getpid()}-{secrets.token_hex(4)}")


def clear_stale(out_dir: Path) -> None:
    """Remove what killed runs left beside `out_dir`: its building folders (and those of a builder that built into
    one of them), and replaced outputs; a replaced output whose successor never arrived is put back instead."""
    stale = re.compile(rf"\.+{re.escape(out_dir.name)}\.({'|'.join(PARTS)})-(\d+)-[0-9a-f]+")
    for path in sorted(out_dir.parent.iterdir()):
        match = stale.match(path.name)
        if not match or process_alive(int(match[2])):
            continue
        if path.name.startswith(f".{out_dir.name}.retired-") and not out_dir.exists():
            path.rename(out_dir)
            print(f"{out_dir}: put back from {path.name}, left by an interrupted run", file=sys.stderr)
        else:
            shutil.rmtree(path, ignore_errors=True)
            print(f"{out_dir.parent}: removed {path.name}, left by an interrupted run", file=sys.stderr)


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
