"""Build an output folder in a temporary folder beside it and rename it into place, so nothing is half-written."""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path


def refuse_overlap(out_dir: Path, sources: list[Path]) -> None:
    """An output folder must never be, or contain, one of its sources: replacing it would delete them."""
    out_dir = out_dir.resolve()
    for source in sources:
        source = source.resolve()
        if source == out_dir or out_dir in source.parents:
            raise ValueError(f"{out_dir}: output folder would contain the source {source}; choose another folder")


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

    An existing `out_dir` is refused unless `overwrite`; it is only deleted once the new folder is complete.
    """
    out_dir = out_dir.resolve()
    if out_dir.exists() and not overwrite:
        raise FileExistsError(f"{out_dir} already exists; pass --overwrite to replace it")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.building-", dir=out_dir.parent))
    try:
        yield building
        if out_dir.exists():
            retired = building.with_name(building.name.replace(".building-", ".retired-"))
            out_dir.rename(retired)
            building.rename(out_dir)
            shutil.rmtree(retired)
        else:
            building.rename(out_dir)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
