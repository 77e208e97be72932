"""The downloader against a real HTTP server on 127.0.0.1, the catalog, and ``main.py download``."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

import main
from models import catalog
from models.catalog import load_catalog, models_dir
from models.downloads import DownloadError, download, download_entry, part_path
from models.jobs import Cancelled, Progress
from tests.helpers.http_server import LoopbackServer, catalog_file, entry_for, payload, sha


def test_normal_download_streams_progress_and_lands_atomically(http_server: LoopbackServer) -> None:
    data = payload()
    entry = entry_for(http_server.add("tiny.pt", data), data)
    reports: list[Progress] = []
    path = download_entry(entry, on_step=reports.append)
    assert path == models_dir() / "tiny.pt" and path.read_bytes() == data
    assert sorted(p.name for p in models_dir().iterdir()) == ["tiny.pt"]  # no .part, no temp files
    steps = [r.step for r in reports]
    assert len(reports) >= 5 and steps == sorted(steps) and steps[-1] == len(data)
    assert all(r.total == len(data) for r in reports)


def test_connection_cut_midway_is_resumed_with_range(http_server: LoopbackServer) -> None:
    data = payload(seed=1)
    url = http_server.add("cut.pt", data, behaviour="cut")
    result = download(url, models_dir() / "cut.pt", sha256=sha(data))
    assert result.path.read_bytes() == data and result.verified
    ranges = [r for p, r in http_server.state.requests if p == "/cut.pt"]
    assert ranges[0] is None and ranges[1] == f"bytes={len(data) // 2}-"


def test_partial_file_from_an_earlier_run_is_resumed(http_server: LoopbackServer) -> None:
    data = payload(seed=2)
    url = http_server.add("resume.pt", data, behaviour="cut")
    destination = models_dir() / "resume.pt"
    with pytest.raises(
        DownloadError,
        match=r"resume\.pt: the connection dropped 1 times .*run the download again to resume",
    ):
        download(url, destination, sha256=sha(data), retries=0)
    kept = part_path(destination)
    assert kept.stat().st_size == len(data) // 2 and not destination.exists()
    result = download(url, destination, sha256=sha(data))
    assert result.resumed_from == len(data) // 2 and result.path.read_bytes() == data
    assert http_server.state.requests[-1] == ("/resume.pt", f"bytes={len(data) // 2}-")


def test_server_without_range_support_restarts(http_server: LoopbackServer) -> None:
    data = payload(seed=3)
    url = http_server.add("norange.pt", data, behaviour="no-range")
    destination = models_dir() / "norange.pt"
    part_path(destination).write_bytes(b"stale bytes from a different file")
    assert download(url, destination, sha256=sha(data)).path.read_bytes() == data


def test_wrong_checksum_rejects_and_leaves_nothing(http_server: LoopbackServer) -> None:
    data = payload(seed=4)
    entry = entry_for(http_server.add("bad.pt", data), data, sha256="0" * 64)
    with pytest.raises(
        DownloadError,
        match=r"bad\.pt: checksum mismatch \(expected SHA-256 0{64}, got [0-9a-f]{64}\); "
        r"the file was deleted",
    ):
        download_entry(entry)
    assert list(models_dir().iterdir()) == []


def test_sha256_prefix_from_the_file_name_is_checked(http_server: LoopbackServer) -> None:
    data = payload(seed=5)
    url = http_server.add("pgan.pth", data)
    good = download(url, models_dir() / "a.pth", sha256_prefix=sha(data)[:8])
    assert good.verified
    with pytest.raises(DownloadError, match="expected SHA-256 starting 00000000"):
        download(url, models_dir() / "b.pth", sha256_prefix="00000000")
    assert sorted(p.name for p in models_dir().iterdir()) == ["a.pth"]


def test_404_is_clear(http_server: LoopbackServer) -> None:
    url = f"{http_server.base_url}/missing.pkl"
    with pytest.raises(DownloadError, match=r"missing\.pkl: not found on the server \(HTTP 404\)"):
        download(url, models_dir() / "missing.pkl")
    assert list(models_dir().iterdir()) == []


def test_server_that_never_answers_times_out(http_server: LoopbackServer) -> None:
    url = http_server.add("hang.pt", b"", behaviour="hang")
    start = time.monotonic()
    with pytest.raises(
        DownloadError, match=r"hang\.pt: no answer from the server within 0\.5 s \(timed out\)"
    ):
        download(url, models_dir() / "hang.pt", timeout=0.5)
    assert time.monotonic() - start < 5.0
    assert not (models_dir() / "hang.pt").exists()


def test_cancel_stops_within_a_chunk_and_keeps_the_part(http_server: LoopbackServer) -> None:
    data = payload(seed=6)
    url = http_server.add("cancel.pt", data)
    reports: list[Progress] = []
    destination = models_dir() / "cancel.pt"
    with pytest.raises(Cancelled):
        download(url, destination, on_step=reports.append, should_stop=lambda: len(reports) >= 2)
    assert len(reports) == 2 and not destination.exists()
    assert part_path(destination).stat().st_size == reports[-1].step < len(data)


def test_web_page_instead_of_file(http_server: LoopbackServer) -> None:
    url = http_server.add("drive", b"", behaviour="html")
    with pytest.raises(DownloadError, match="sent a web page instead of the file"):
        download(url, models_dir() / "drive.pt")


def test_present_file_is_verified_not_downloaded_again(http_server: LoopbackServer) -> None:
    data = payload(seed=7)
    url = http_server.add("there.pt", data)
    destination = models_dir() / "there.pt"
    destination.write_bytes(data)
    result = download(url, destination, sha256=sha(data))
    assert result.already_present and result.verified and http_server.state.requests == []


def test_only_http_urls() -> None:
    with pytest.raises(DownloadError, match="only http and https"):
        download("file:///etc/passwd", models_dir() / "x")


# -- the catalog ----------------------------------------------------------------------------------


def test_shipped_catalog_is_well_formed() -> None:
    entries = {entry.name: entry for entry in load_catalog()}
    wanted = {
        "stylegan2-ffhq-1024",
        "ada-metfaces-1024",
        "ada-afhqdog-512",
        "rosinality-ffhq-1024",
        "pgan-celebahq-256",
        "pgan-celebahq-512",
        "vgg16-imagenet",
    }
    assert wanted <= set(entries)
    for entry in entries.values():
        assert (
            entry.url.startswith("https://")
            and entry.licence
            and entry.source_page.startswith("https://")
        )
        assert entry.sha256 is None or re.fullmatch(r"[0-9a-f]{64}", entry.sha256)
        if entry.sha256_prefix:  # torch.hub convention: the prefix is in the file name
            assert f"-{entry.sha256_prefix}." in entry.filename
    assert entries["vgg16-imagenet"].filename == "vgg16-397923af.pth"
    assert entries["vgg16-imagenet"].sha256.startswith("397923af")
    assert entries["rosinality-ffhq-1024"].size_text() == "381.5 MB"
    assert entries["stylegan2-ffhq-1024"].size_text() == "not published"
    assert entries["stylegan2-ffhq-1024"].checksum_text() == "not published"
    assert not entries["vgg16-imagenet"].is_generator and entries["pgan-celebahq-512"].is_generator


# -- the CLI --------------------------------------------------------------------------------------


def test_cli_download_and_list(
    http_server: LoopbackServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = payload(seed=8)
    good = entry_for(http_server.add("tiny.pt", data), data)
    missing = entry_for(f"{http_server.base_url}/gone.pt", data, name="gone", filename="gone.pt")
    monkeypatch.setattr(catalog, "CATALOG_PATH", catalog_file(tmp_path, [good, missing]))
    assert main.main(["download", "--list"]) == 0
    listing = capsys.readouterr().out
    assert "tiny" in listing and "1.5 MB" in listing and "gone" in listing
    assert main.main(["download", "tiny"]) == 0
    assert (models_dir() / "tiny.pt").read_bytes() == data
    assert "saved" in capsys.readouterr().out
    assert main.main(["download", "gone"]) == 2
    assert capsys.readouterr().err.strip().endswith("gone.pt: not found on the server (HTTP 404)")
    assert main.main(["download", "nope"]) == 2
    assert "no catalog entry named 'nope'" in capsys.readouterr().err
