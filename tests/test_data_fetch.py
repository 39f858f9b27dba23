"""Fetching: download, mirror, hashes, atomicity and the error messages for bad input."""

import hashlib
import zipfile

import pytest
from data_support import closed_port_url, serve, sha256

from compendium.cli import main
from compendium.data import download
from compendium.data.errors import DataError
from compendium.data.fetch import (
    FetchContext,
    PackageFile,
    RemoteFile,
    WheelFiles,
    check_inputs,
    resolve_mirror,
)
from compendium.data.registry import get_info


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setattr(download, "BACKOFF_S", 0.0)  # a refused connection: retried at once


@pytest.fixture
def site(tmp_path):
    root = tmp_path / "site"
    root.mkdir()
    (root / "blob.bin").write_bytes(b"amcf" * 1000)
    return root


def test_download_verifies_and_second_fetch_is_a_no_op(tmp_path, site):
    data = tmp_path / "data"
    with serve(site) as url:
        rf = RemoteFile("x/blob.bin", (f"{url}/blob.bin",), sha256(site / "blob.bin"))
        [got] = rf.fetch(FetchContext(data))
        assert got == data / "x/blob.bin"
        assert got.read_bytes() == (site / "blob.bin").read_bytes()
    # server gone: a verified file is not fetched again
    assert rf.fetch(FetchContext(data)) == [got]


def test_download_checksum_mismatch_leaves_no_file(tmp_path, site):
    data = tmp_path / "data"
    with serve(site) as url:
        rf = RemoteFile("x/blob.bin", (f"{url}/blob.bin",), "0" * 64)
        with pytest.raises(DataError, match="checksum mismatch.*blob.bin"):
            rf.fetch(FetchContext(data))
    assert not (data / "x/blob.bin").exists()
    assert list((data / "x").iterdir()) == []  # no partial / temporary file either


def test_md5_hashes_are_accepted(tmp_path, site):
    md5 = hashlib.md5((site / "blob.bin").read_bytes()).hexdigest()
    with serve(site) as url:
        rf = RemoteFile("blob.bin", (f"{url}/blob.bin",), f"md5:{md5}")
        assert rf.fetch(FetchContext(tmp_path / "d"))[0].is_file()


def test_mirror_copy_is_verified_and_bad_mirror_file_is_named(tmp_path, site):
    mirror = tmp_path / "mirror"
    (mirror / "x").mkdir(parents=True)
    (mirror / "x/blob.bin").write_bytes((site / "blob.bin").read_bytes())
    good = RemoteFile("x/blob.bin", (closed_port_url() + "/blob.bin",), sha256(site / "blob.bin"))
    [got] = good.fetch(FetchContext(tmp_path / "data", mirror))
    assert got.read_bytes() == (site / "blob.bin").read_bytes()

    (mirror / "x/blob.bin").write_bytes(b"truncated")
    with pytest.raises(DataError) as err:
        good.fetch(FetchContext(tmp_path / "data2", mirror))
    msg = str(err.value)
    assert str(mirror / "x/blob.bin") in msg and sha256(site / "blob.bin") in msg
    assert not (tmp_path / "data2/x/blob.bin").exists()


def test_missing_mirror_file_while_offline_names_file_hash_and_fix(tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    rf = RemoteFile("omniglot/a.zip", (closed_port_url() + "/a.zip",), "ab" * 32)
    with pytest.raises(DataError) as err:
        rf.fetch(FetchContext(tmp_path / "data", mirror))
    msg = str(err.value)
    assert str(mirror / "omniglot/a.zip") in msg
    assert "ab" * 32 in msg and "--mirror" in msg
    assert not (tmp_path / "data/omniglot/a.zip").exists()


def test_os_package_copy_comes_after_the_mirror_and_before_the_download(tmp_path, site):
    system = tmp_path / "usr/share/x"
    system.mkdir(parents=True)
    (system / "blob.bin").write_bytes((site / "blob.bin").read_bytes())
    mirror = tmp_path / "mirror"
    (mirror / "x").mkdir(parents=True)
    (mirror / "x/blob.bin").write_bytes(b"from the mirror")
    rf = RemoteFile("x/blob.bin", (closed_port_url() + "/blob.bin",), None,
                    system_paths=(str(tmp_path / "nope/blob.bin"), str(system / "blob.bin")),
                    system_package="demo-data")
    assert rf.system_file() == system / "blob.bin"
    [got] = rf.fetch(FetchContext(tmp_path / "a", mirror))
    assert got.read_bytes() == b"from the mirror"
    [got] = rf.fetch(FetchContext(tmp_path / "b"))  # offline, no mirror: the package's copy
    assert got.read_bytes() == (site / "blob.bin").read_bytes()


def test_mirror_from_environment_and_missing_mirror_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("AMCF_DATA_MIRROR", str(tmp_path))
    assert resolve_mirror(None) == tmp_path.resolve()
    monkeypatch.delenv("AMCF_DATA_MIRROR")
    assert resolve_mirror(None) is None
    with pytest.raises(DataError, match="does not exist"):
        resolve_mirror(tmp_path / "nope")


def test_package_file_wrong_version_says_what_to_install(tmp_path):
    pf = PackageFile("p/x", "pytest", "0.0.1", "pytest/__init__.py", "0" * 64)
    with pytest.raises(DataError, match=r"pip install 'pytest==0\.0\.1'"):
        pf.fetch(FetchContext(tmp_path))


def _wheel(path, members):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def test_wheel_members_come_from_a_verified_wheel(tmp_path):
    mirror = tmp_path / "mirror"
    (mirror / "wheels").mkdir(parents=True)
    wheel = mirror / "wheels/demo-1.0-py3-none-any.whl"
    _wheel(wheel, {"demo/data/a.gz": b"payload"})
    member_sha = hashlib.sha256(b"payload").hexdigest()
    spec = WheelFiles("demo==1.0", wheel.name, sha256(wheel),
                      (("demo/a.gz", "demo/data/a.gz", member_sha),))
    [got] = spec.fetch(FetchContext(tmp_path / "data", mirror))
    assert got.read_bytes() == b"payload"

    bad = WheelFiles("demo==1.0", wheel.name, "1" * 64,
                     (("demo/b.gz", "demo/data/a.gz", member_sha),))
    with pytest.raises(DataError, match="checksum mismatch for wheel demo-1.0"):
        bad.fetch(FetchContext(tmp_path / "data", mirror))
    assert not (tmp_path / "data/demo/b.gz").exists()


def test_check_inputs_before_prepare(tmp_path):
    info = get_info("digits")
    with pytest.raises(DataError, match="missing. Fix: run `amcf data fetch --only digits`"):
        check_inputs(info.files, tmp_path, "digits")
    (tmp_path / "digits").mkdir()
    (tmp_path / "digits/digits.csv.gz").write_bytes(b"not the file")
    with pytest.raises(DataError, match="checksum mismatch"):
        check_inputs(info.files, tmp_path, "digits")


def test_unknown_dataset_suggests_close_names(capsys):
    with pytest.raises(DataError, match="Did you mean 'omniglot-small'"):
        get_info("omniglot-smal")
    assert main(["data", "fetch", "--only", "mnst"]) == 2
    assert "Did you mean 'mnist'" in capsys.readouterr().err


def test_first_download_without_a_sha256_pins_it_and_later_fetches_check_it(tmp_path, site):
    from compendium.data.pins import read_pins

    data = tmp_path / "downloads"
    rf = RemoteFile("blob.bin", ("unused",), None)
    with serve(site) as url:
        rf.fetch(FetchContext(data, base_url=url))
    pins = read_pins(tmp_path / "downloads.lock")
    assert pins == {"blob.bin": sha256(site / "blob.bin")}
    assert check_inputs([rf], data, "x") == {"blob.bin": "sha256:" + pins["blob.bin"]}
    (data / "blob.bin").unlink()
    (site / "blob.bin").write_bytes(b"another release")
    with serve(site) as url, pytest.raises(DataError, match="checksum mismatch"):
        rf.fetch(FetchContext(data, base_url=url))
    assert not (data / "blob.bin").exists()


def test_an_md5_only_file_is_pinned_by_sha256_after_its_md5_passed(tmp_path, site):
    from compendium.data.pins import read_pins

    md5 = hashlib.md5((site / "blob.bin").read_bytes()).hexdigest()
    with serve(site) as url:
        RemoteFile("blob.bin", (f"{url}/blob.bin",), f"md5:{md5}").fetch(
            FetchContext(tmp_path / "data"))
    assert read_pins(tmp_path / "data.lock") == {"blob.bin": sha256(site / "blob.bin")}


def test_prepare_refuses_a_file_that_is_neither_published_nor_pinned(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x/blob.bin").write_bytes(b"who knows")
    with pytest.raises(DataError, match="no published hash and no sha256 pin"):
        check_inputs([RemoteFile("x/blob.bin", ("unused",), None)], tmp_path, "x")


def test_paper_fetch_checks_the_whole_disk_plan_before_downloading(tmp_path, monkeypatch):
    """Not only the download: the extraction, the prepared copies and the checkpoints must
    fit too, or the disk fills up in prepare@."""
    import shutil
    from collections import namedtuple

    from compendium.data import commands

    printed = []
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda _: usage(10**12, 0, 10 * 10**9))
    monkeypatch.setenv("AMCF_DATA_URL", closed_port_url())  # no sizes from it: the registry's
    with pytest.raises(DataError, match=r"the paper profile's data needs about 52.0 GB more on "
                                        r"the disk that holds .*\(7.9 GB: 8 archives in "
                                        r".*downloads; .* extracted folders in .*build/data; "
                                        r".*uint8 views in .*build/data; .*checkpoints in "
                                        r".*build/work\), which has 10.0 GB free: about 42.0 GB "
                                        r"short. Fix: free space there, or pass --data-dir"):
        commands.fetch("paper", data_dir=tmp_path / "downloads", build=tmp_path / "build",
                       log=printed.append)
    [plan] = printed
    assert "uint8 views (256/224 px)  caltech256-60" in plan
    assert plan.endswith("about 52.0 GB in all, 52.0 GB still to write (2 small files not "
                         "counted)")
    assert not (tmp_path / "downloads").exists()  # nothing fetched


def test_a_dry_run_prints_the_plan_and_fetches_nothing(tmp_path, capsys):
    assert main(["data", "fetch", "--profile", "paper", "--dry-run", "--data-dir",
                 str(tmp_path / "downloads")]) == 0
    out = capsys.readouterr().out
    assert "extracted                 mit-indoor67" in out and "checkpoints" in out
    assert not (tmp_path / "downloads").exists()
