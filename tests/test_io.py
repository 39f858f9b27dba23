"""Atomic outputs, and byte-identical files for identical content (DVC hashes them)."""

from __future__ import annotations

import os
import stat

import pytest
import torch

from amcf.io import atomic_path, read_json, torch_save, write_json


def test_torch_save_is_byte_identical_for_the_same_object(tmp_path):
    obj = {"w": torch.arange(12.0).view(3, 4), "meta": {"epochs": 3}}
    torch_save(obj, tmp_path / "a.pt")
    torch_save(obj, tmp_path / "sub" / "b.pt")
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "sub" / "b.pt").read_bytes()
    assert torch.equal(torch.load(tmp_path / "a.pt", weights_only=True)["w"], obj["w"])


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "metrics.json"
    write_json(target, {"acc": 0.5})
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half a result")
        raise RuntimeError("killed mid-write")
    assert read_json(target) == {"acc": 0.5}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_written_files_follow_the_umask_not_mkstemps_0600(tmp_path):
    old = os.umask(0o022)
    try:
        write_json(tmp_path / "r.json", {})
    finally:
        os.umask(old)
    mode = stat.S_IMODE((tmp_path / "r.json").stat().st_mode)
    # the module reads the umask once, at import; 0o022 is this test process's default
    assert mode & 0o044 == 0o044


def test_nan_is_refused_rather_than_written_as_invalid_json(tmp_path):
    with pytest.raises(ValueError):
        write_json(tmp_path / "m.json", {"std": float("nan")})
    assert not (tmp_path / "m.json").exists()
