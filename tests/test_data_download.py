"""Downloads that retry, resume after a broken transfer and verify: against the local server,
one that drops the connection mid-file once, with and without Range support."""

import io
import sys

import pytest
from data_support import serve, sha256

from compendium.data import download
from compendium.data.errors import DataError
from compendium.data.fetch import FetchContext, RemoteFile

SIZE = 3 * download.CHUNK + 12345  # a few chunks, so that a transfer can break mid-way


@pytest.fixture(autouse=True)
def _fast(monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setattr(download, "BACKOFF_S", 0.0)  # no waiting between tries in tests


@pytest.fixture
def site(tmp_path):
    root = tmp_path / "site"
    root.mkdir()
    (root / "big.tar").write_bytes(bytes(range(256)) * (SIZE // 256) + b"end")
    return root


def _fetch(site, url, data, known=None):
    rf = RemoteFile("x/big.tar", (f"{url}/big.tar",), known or sha256(site / "big.tar"))
    return rf.fetch(FetchContext(data))


def _resumed_at(request) -> int:
    asked = request[0] or ""
    assert asked.startswith("bytes=") and asked.endswith("-"), request
    return int(asked[6:-1])


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name != "big.tar")


def _fetch_once_dropped(site, tmp_path, ranges: bool):
    """Fetch big.tar from a server that drops the first transfer a chunk in; the file and
    the (range asked, status, bytes sent) of each request."""
    server = {"ranges": ranges, "drop_after": download.CHUNK + 100}
    with serve(site, flaky=server) as url:
        [got] = _fetch(site, url, tmp_path / "data")
    assert got.read_bytes() == (site / "big.tar").read_bytes()
    return got, server["requests"]


def test_a_dropped_connection_resumes_with_a_range_request(site, tmp_path):
    got, (first, second) = _fetch_once_dropped(site, tmp_path, ranges=True)
    assert first == (None, 200, download.CHUNK + 100)
    # the second request asks for the rest only (from the last whole chunk received), and
    # gets only the rest
    kept = _resumed_at(second)
    assert 0 < kept <= download.CHUNK + 100
    assert second[1:] == (206, got.stat().st_size - kept)
    assert _leftovers(got.parent) == []  # no .part or validator file stays behind


def test_a_server_without_range_support_sends_the_whole_file_again(site, tmp_path):
    got, (_, second) = _fetch_once_dropped(site, tmp_path, ranges=False)
    assert _resumed_at(second) > 0  # asked to resume ...
    assert second[1:] == (200, got.stat().st_size)  # ... got all of it, kept only that


def test_an_interrupted_run_is_resumed_by_the_next_one(site, tmp_path):
    data = tmp_path / "data"
    part = download.part_path(data / "x" / "big.tar")
    part.parent.mkdir(parents=True)
    part.write_bytes((site / "big.tar").read_bytes()[:12345])  # what a killed run left
    server = {"ranges": True}
    with serve(site, flaky=server) as url:
        [got] = _fetch(site, url, data)
    assert got.read_bytes() == (site / "big.tar").read_bytes()
    assert server["requests"] == [("bytes=12345-", 206, got.stat().st_size - 12345)]
    assert not part.exists()


def test_a_resumed_file_that_fails_its_hash_is_fetched_once_more_from_the_start(site, tmp_path):
    data = tmp_path / "data"
    part = download.part_path(data / "x" / "big.tar")
    part.parent.mkdir(parents=True)
    part.write_bytes(b"bytes of another version of the file")
    server = {"ranges": True}
    with serve(site, flaky=server) as url:
        [got] = _fetch(site, url, data)
    assert got.read_bytes() == (site / "big.tar").read_bytes()
    assert [r[:2] for r in server["requests"]] == [("bytes=36-", 206), (None, 200)]


def test_a_wrong_file_is_not_kept_not_even_partly(site, tmp_path):
    data = tmp_path / "data"
    with serve(site, flaky={"ranges": True, "drop_after": 1000}) as url, \
            pytest.raises(DataError, match="checksum mismatch.*big.tar"):
        _fetch(site, url, data, known="0" * 64)
    assert list((data / "x").iterdir()) == []


def test_a_failed_answer_is_retried(site, tmp_path):
    server = {"ranges": True, "fail_first": 503}
    with serve(site, flaky=server) as url:
        [got] = _fetch(site, url, tmp_path / "data")
    assert got.read_bytes() == (site / "big.tar").read_bytes()
    assert [r[1] for r in server["requests"]] == [503, 200]


def test_a_transfer_that_keeps_breaking_gives_up_and_keeps_its_bytes(site, tmp_path, monkeypatch):
    monkeypatch.setattr(download, "ATTEMPTS", 2)

    class Dropping(dict):
        def pop(self, key, default=None):  # every answer is cut off after 0 bytes
            return 0 if key == "drop_after" else super().pop(key, default)

    data = tmp_path / "data"
    part = download.part_path(data / "x" / "big.tar")
    part.parent.mkdir(parents=True)
    part.write_bytes(b"\x00" * 10)
    with serve(site, flaky=Dropping(ranges=True)) as url, \
            pytest.raises(DataError, match="broke off 2 times in a row"):
        _fetch(site, url, data)
    assert part.read_bytes() == b"\x00" * 10  # kept for the next run


@pytest.mark.parametrize("ci", [None, "true"])
def test_no_progress_bar_off_a_terminal_or_in_ci(site, tmp_path, capsys, monkeypatch, ci):
    # CI runners set CI=true; the bar must stay hidden there as well as off a terminal
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    with serve(site, flaky={"ranges": True}) as url:
        _fetch(site, url, tmp_path / "data")
    assert capsys.readouterr().err == ""  # pytest's stderr is no terminal


def test_a_progress_bar_on_a_terminal(site, tmp_path, monkeypatch):
    monkeypatch.delenv("CI", raising=False)

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    screen = Terminal()
    monkeypatch.setattr(sys, "stderr", screen)
    with serve(site, flaky={"ranges": True}) as url:
        _fetch(site, url, tmp_path / "data")
    assert "big.tar" in screen.getvalue()
