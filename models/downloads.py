"""Downloading checkpoints: streamed, resumable, verified, cancellable, atomic (urllib only).

``download(url, destination, ...)`` writes to ``<destination>.part`` and renames it over
``destination`` only after the size and SHA-256 (or the SHA-256 prefix torch.hub file names
carry) check out, so a final file is always complete. An interrupted transfer keeps its
``.part``; the next attempt asks the server for the rest (HTTP ``Range``) and, within one call,
a connection dropped mid-transfer is resumed automatically a few times. A file that fails its
checksum is deleted. Every failure is a ``DownloadError`` (an ``OSError``) with one line naming
the URL and the reason: timeout, HTTP status, unreachable server, a web page instead of a file.

Progress follows ``models.jobs``: ``on_step(Progress(step=bytes_done, total=bytes_total))``
once per chunk, ``should_stop`` checked once per chunk (raising ``Cancelled``).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from models.catalog import CatalogEntry, format_bytes
from models.jobs import OnStep, Progress, ShouldStop, check_stop, report

CHUNK_BYTES = 256 * 1024
DEFAULT_TIMEOUT_S = 30.0
USER_AGENT = "LatentStudio-model-manager/1"

Opener = Callable[[urllib.request.Request, float], http.client.HTTPResponse]


class DownloadError(OSError):
    """A download failed; the message names the URL (or file) and the reason."""


@dataclass(frozen=True, slots=True)
class DownloadResult:
    """What ``download`` produced."""

    path: Path  # the verified final file
    size: int  # bytes
    sha256: str  # hex digest of the whole file
    verified: bool  # a published checksum (full or prefix) was checked
    resumed_from: int  # bytes already present in a .part file when the call started
    already_present: bool = False  # the final file was there and nothing was downloaded


def part_path(destination: Path) -> Path:
    """The temporary file an unfinished download of ``destination`` lives in."""
    return destination.with_name(destination.name + ".part")


def _default_opener(request: urllib.request.Request, timeout: float) -> http.client.HTTPResponse:
    return urllib.request.urlopen(request, timeout=timeout)


def _sha256_of(path: Path) -> str:
    """Hex SHA-256 of the file at ``path``, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_digest(url: str, digest: str, sha256: str | None, prefix: str | None) -> bool:
    expected = (sha256 or "").lower()
    if expected and digest != expected:
        raise DownloadError(
            f"{url}: checksum mismatch (expected SHA-256 {expected}, got {digest}); "
            "the file was deleted"
        )
    if not expected and prefix and not digest.startswith(prefix.lower()):
        raise DownloadError(
            f"{url}: checksum mismatch (expected SHA-256 starting {prefix}, "
            f"got {digest[: len(prefix)]}…); "
            "the file was deleted"
        )
    return bool(expected or prefix)


class _Interrupted(Exception):
    """The connection ended before the whole file arrived (resumable)."""


def download(
    url: str,
    destination: str | Path,
    *,
    sha256: str | None = None,
    sha256_prefix: str | None = None,
    expected_size: int | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
    retries: int = 3,
    opener: Opener | None = None,
    on_step: OnStep | None = None,
    should_stop: ShouldStop | None = None,
) -> DownloadResult:
    """Download ``url`` to ``destination`` atomically, resuming any ``.part`` left before.

    Args:
        url: an http(s) URL.
        destination: final file path; its folder is created.
        sha256: full hex digest to verify, when published.
        sha256_prefix: leading hex digits to verify when only those are published.
        expected_size: exact size in bytes, when published.
        timeout: seconds to wait for the server to connect or send more data.
        retries: automatic resumptions after a connection dropped mid-transfer.
        opener: ``(request, timeout) -> response``; tests and proxies may replace urllib's.
        on_step: receives ``Progress(step=bytes done, total=bytes or None)`` per chunk.
        should_stop: polled per chunk; when true, raises ``Cancelled`` (the ``.part`` stays).

    Raises:
        DownloadError: timeout, HTTP error, unreachable server, web page instead of a file,
            size or checksum mismatch (the bad file is deleted).
        Cancelled: ``should_stop`` returned true.
    """
    if not url.lower().startswith(("http://", "https://")):
        raise DownloadError(f"{url}: only http and https downloads are supported")
    destination = Path(destination)
    if destination.is_file():
        return _already_there(url, destination, sha256, sha256_prefix)
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = part_path(destination)
    opener = opener or _default_opener
    resumed_from = partial.stat().st_size if partial.is_file() else 0
    attempts = 0
    while True:
        try:
            total = _transfer(url, partial, expected_size, timeout, opener, on_step, should_stop)
            break
        except _Interrupted as exc:
            attempts += 1
            if attempts > retries:
                raise DownloadError(
                    f"{url}: the connection dropped {attempts} times ({exc}); "
                    f"{format_bytes(partial.stat().st_size)} kept, run the download again to resume"
                ) from exc
    size = partial.stat().st_size
    if total is not None and size != total:
        partial.unlink(missing_ok=True)
        raise DownloadError(f"{url}: received {size} bytes, expected {total}; the file was deleted")
    if expected_size is not None and size != expected_size:
        partial.unlink(missing_ok=True)
        raise DownloadError(
            f"{url}: the file has {size} bytes, the catalog says {expected_size}; "
            "the file was deleted"
        )
    hex_digest = _sha256_of(partial)
    try:
        verified = _check_digest(url, hex_digest, sha256, sha256_prefix)
    except DownloadError:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, destination)
    return DownloadResult(destination, size, hex_digest, verified, resumed_from)


def _already_there(
    url: str, destination: Path, sha256: str | None, prefix: str | None
) -> DownloadResult:
    hex_digest = _sha256_of(destination)
    try:
        verified = _check_digest(url, hex_digest, sha256, prefix)
    except DownloadError:
        raise DownloadError(
            f"{destination}: already present but does not match the published checksum; "
            "delete it and download again"
        ) from None
    return DownloadResult(
        destination, destination.stat().st_size, hex_digest, verified, 0, already_present=True
    )


def _transfer(
    url: str,
    partial: Path,
    expected_size: int | None,
    timeout: float,
    opener: Opener,
    on_step: OnStep | None,
    should_stop: ShouldStop | None,
) -> int | None:
    """One HTTP request appending to ``partial``; returns the full size when the server says it."""
    check_stop(should_stop)
    have = partial.stat().st_size if partial.is_file() else 0
    if expected_size is not None and have == expected_size:
        return expected_size  # a previous attempt got everything; verify it
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if have:
        headers["Range"] = f"bytes={have}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = opener(request, timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:
            exc.close()
            return None  # the .part is already complete (or bad): size/checksum checks decide
        reason = (
            "not found on the server" if exc.code == 404 else f"the server refused ({exc.reason})"
        )
        exc.close()
        raise DownloadError(f"{url}: {reason} (HTTP {exc.code})") from exc
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError | socket.timeout):
            raise DownloadError(
                f"{url}: no answer from the server within {timeout:g} s (timed out)"
            ) from exc
        raise DownloadError(f"{url}: cannot reach the server ({exc.reason})") from exc
    except TimeoutError as exc:
        raise DownloadError(
            f"{url}: no answer from the server within {timeout:g} s (timed out)"
        ) from exc
    except (ConnectionError, http.client.HTTPException) as exc:
        raise DownloadError(
            f"{url}: the server closed the connection ({exc or type(exc).__name__})"
        ) from exc

    with response:
        content_type = response.headers.get("Content-Type", "")
        if content_type.startswith("text/html"):
            raise DownloadError(
                f"{url}: the server sent a web page instead of the file (a sign-in or "
                "confirmation page, as Google Drive shows for large files); download it in a "
                "browser and open it with File > Open"
            )
        status = getattr(response, "status", 200)
        length = response.headers.get("Content-Length")
        length = int(length) if length is not None and length.isdigit() else None
        if have and status == 206:
            start, total = _content_range(response.headers.get("Content-Range", ""))
            if start != have:
                raise DownloadError(f"{url}: the server resumed at byte {start}, not {have}")
            mode = "ab"
        else:
            have, mode = 0, "wb"  # no Range support (200): start again
            total = length
        if total is None and length is not None:
            total = have + length
        done = have
        started = time.monotonic()
        with partial.open(mode) as handle:
            while True:
                check_stop(should_stop)
                try:
                    chunk = response.read(CHUNK_BYTES)
                except TimeoutError as exc:
                    if done > have:
                        raise _Interrupted(f"stalled for {timeout:g} s") from exc
                    raise DownloadError(
                        f"{url}: no data from the server within {timeout:g} s (timed out)"
                    ) from exc
                except (
                    http.client.IncompleteRead,
                    ConnectionError,
                    http.client.HTTPException,
                ) as exc:
                    if isinstance(exc, http.client.IncompleteRead) and exc.partial:
                        handle.write(exc.partial)
                    raise _Interrupted(type(exc).__name__) from exc
                if not chunk:
                    break
                handle.write(chunk)
                done += len(chunk)
                elapsed = max(time.monotonic() - started, 1e-6)
                report(
                    on_step,
                    Progress(
                        done,
                        total,
                        f"{format_bytes(done)} of {format_bytes(total) if total else '?'}",
                        {"MB/s": (done - have) / elapsed / 1e6},
                    ),
                )
        if total is not None and done < total:
            raise _Interrupted(f"{done} of {total} bytes")
        return total


def _content_range(value: str) -> tuple[int, int | None]:
    match = re.fullmatch(r"bytes (\d+)-\d+/(\d+|\*)", value.strip())
    if not match:
        return -1, None
    total = match.group(2)
    return int(match.group(1)), (int(total) if total.isdigit() else None)


def download_entry(
    entry: CatalogEntry,
    cache: str | Path | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
    opener: Opener | None = None,
    on_step: OnStep | None = None,
    should_stop: ShouldStop | None = None,
) -> Path:
    """Download a catalog entry into ``models.runtime.cache_dir()/models``; return the final path.

    Raises:
        DownloadError, Cancelled: as ``download``.
    """
    result = download(
        entry.url,
        entry.destination(cache),
        sha256=entry.sha256,
        sha256_prefix=entry.sha256_prefix,
        expected_size=entry.size_bytes,
        timeout=timeout,
        opener=opener,
        on_step=on_step,
        should_stop=should_stop,
    )
    return result.path
