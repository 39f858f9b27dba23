"""caltech256-30 and caltech256-60 extract one archive into one shared folder; run at once
(two DVC stages, or `amcf gpu-run`), the second used to fail with a misleading "archive
truncated or corrupt" when its rename met the folder the first had just finished."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from compendium.data.commands import prepare_dataset as prepare_info
from compendium.data.paper_profile.common import extract
from compendium.data.pins import PINS_ENV
from compendium.data.prepared import read_info
from compendium.data.registry import get_info
from scripts.rehearsal.miniatures import build_site


def _prepare(name: str, data: str, out: str, pins: str, barrier, errors) -> None:
    import os

    os.environ[PINS_ENV] = pins
    barrier.wait()
    try:
        prepare_info(get_info(name), Path(data), Path(out), image_size=64)
    except Exception as exc:  # reported to the parent, which fails the test with it
        errors.put(f"{name}: {type(exc).__name__}: {exc}")


def test_both_caltech_stages_prepare_at_once(tmp_path):
    build_site(tmp_path / "downloads", tmp_path / "pins.lock")
    ctx = multiprocessing.get_context("fork")
    barrier, errors = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_prepare, args=(name, str(tmp_path / "downloads"),
                                                str(tmp_path / "out"),
                                                str(tmp_path / "pins.lock"), barrier, errors))
             for name in ("caltech256-30", "caltech256-60")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    problems = [errors.get() for _ in range(errors.qsize())]
    assert not problems, problems
    assert [p.exitcode for p in procs] == [0, 0]
    roots = {(tmp_path / "out" / n / read_info(n, tmp_path / "out")["root"]).resolve()
             for n in ("caltech256-30", "caltech256-60")}
    assert roots == {(tmp_path / "out" / "caltech256-images").resolve()}


def test_a_process_that_finds_the_folder_extracted_meanwhile_uses_it(tmp_path, monkeypatch):
    """The interleaving of the race, forced: the folder appears after the first check."""
    import compendium.data.paper_profile.common as common

    archive = tmp_path / "downloads" / "caltech256" / "256_ObjectCategories.tar"
    build_site(tmp_path / "downloads", tmp_path / "pins.lock")
    dest = tmp_path / "out" / "caltech256-images"
    real_lock, waited = common.FileLock, []

    def lock_after_the_other_process_finished(path):
        if not waited:  # the other stage extracts while this one waits for the lock
            waited.append(path)
            extract(archive, dest, "caltech256")
        return real_lock(path)

    monkeypatch.setattr(common, "FileLock", lock_after_the_other_process_finished)
    assert not dest.exists()
    assert common.extract(archive, dest, "caltech256") == dest
    assert len(list((dest / "256_ObjectCategories").iterdir())) == 4
    leftovers = [p.name for p in dest.parent.iterdir() if p.name.startswith(".caltech256-images.")
                 and not p.name.endswith(".lock")]
    assert leftovers == []


def test_a_truncated_archive_is_still_reported_as_such(tmp_path):
    from compendium.data.errors import DataError

    build_site(tmp_path / "downloads", tmp_path / "pins.lock")
    archive = tmp_path / "downloads" / "caltech256" / "256_ObjectCategories.tar"
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 3])
    with pytest.raises(DataError, match="truncated or corrupt"):
        extract(archive, tmp_path / "out" / "caltech256-images", "caltech256")
    assert not (tmp_path / "out" / "caltech256-images").exists()
