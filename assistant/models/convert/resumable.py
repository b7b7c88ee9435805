"""Weight files downloaded so that an interrupted run resumes where it stopped, not from the start.

huggingface_hub 2.x downloads each file into a temporary name unique to the process and deletes it when
the download fails, so a connection lost at 3 GB of a 4 GB shard costs the next run all 3 GB again
(within one run it retries; across runs nothing is kept). For checkpoints of 4-17 GB that is what a
laptop on Wi-Fi meets. So the weight files are fetched here, into ``blobs/<etag>.incomplete`` of the
hub cache (the name huggingface_hub 0.x used for the same purpose), continued with an HTTP ``Range``
request next time, checked against their size and SHA-256 (the hub's ETag of an LFS file), and then put
in place exactly as huggingface_hub lays out its cache (the blob, and a relative symlink in the
snapshot), so it and transformers find them as their own.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

# Transient failures in a row (no byte received in between) before a run gives up.
RETRIES = 3
RETRY_PAUSE_S = 1.0
HASH_BLOCK = 8 << 20


class DownloadStopped(Exception):
    """The connection failed and retries did not help; what arrived is kept for the next run."""

    def __init__(self, filename: str, reason: str, kept: int) -> None:
        super().__init__(f"{filename}: {reason}")
        self.filename = filename
        self.reason = reason
        self.kept = kept


def download_resumable(
    repo_id: str,
    filename: str,
    commit: str,
    storage: Path,
    timeout: float,
    progress: Callable[[int], None] | None = None,
) -> Path:
    """Fetch `filename` of `repo_id` at `commit` into the cache folder `storage`; returns the snapshot path."""
    import httpx2
    from huggingface_hub import get_hf_file_metadata, hf_hub_url
    from huggingface_hub.utils import build_hf_headers

    pointer = storage / "snapshots" / commit / filename
    if pointer.is_file():
        return pointer
    meta = get_hf_file_metadata(hf_hub_url(repo_id, filename, revision=commit), timeout=timeout)
    etag = meta.etag or ""
    if not etag:
        raise DownloadStopped(filename, "the hub gave no ETag for it", 0)
    blob = storage / "blobs" / etag
    if not blob.is_file():
        partial = blob.with_name(etag + ".incomplete")
        partial.parent.mkdir(parents=True, exist_ok=True)
        headers = build_hf_headers()
        if urlsplit(meta.location).netloc != urlsplit(hf_hub_url(repo_id, filename)).netloc:
            headers.pop("authorization", None)  # the token is for the hub, not for its CDN
            headers.pop("Authorization", None)
        _fetch(meta.location, partial, meta.size, headers, timeout, filename, progress, httpx2)
        _verify(partial, meta.size, etag, filename)
        partial.replace(blob)
    pointer.parent.mkdir(parents=True, exist_ok=True)
    target = os.path.relpath(blob, pointer.parent)
    tmp = pointer.with_name(pointer.name + ".link")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(target)
    tmp.replace(pointer)
    return pointer


def _fetch(url, partial: Path, size: int | None, headers, timeout, filename, progress, httpx2) -> None:
    from huggingface_hub.utils import get_session

    failures = 0
    while True:
        have = partial.stat().st_size if partial.exists() else 0
        if size is not None and have >= size:
            return
        request_headers = {**headers, "Accept-Encoding": "identity"}
        if have:
            request_headers["Range"] = f"bytes={have}-"
        received = 0
        try:
            with get_session().stream("GET", url, headers=request_headers, timeout=timeout) as response:
                if response.status_code not in (200, 206):
                    raise DownloadStopped(filename, f"the server answered {response.status_code}", have)
                mode = "ab" if response.status_code == 206 else "wb"  # 200: the server ignored the Range
                if mode == "wb" and have and progress is not None:
                    progress(-have)
                with partial.open(mode) as out:
                    # Unchunked: every block is written as it arrives, so a cut loses nothing received.
                    for block in response.iter_bytes():
                        out.write(block)
                        received += len(block)
                        if progress is not None:
                            progress(len(block))
            return
        except (httpx2.TransportError, OSError) as exc:
            if isinstance(exc, OSError) and not isinstance(exc, ConnectionError):
                raise  # the disk, not the network
            failures = 0 if received else failures + 1
            kept = partial.stat().st_size if partial.exists() else 0
            if failures >= RETRIES:
                reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise DownloadStopped(filename, reason, kept) from exc
            log.warning("download of %s interrupted at %d bytes (%s); resuming", filename, kept, exc)
            time.sleep(RETRY_PAUSE_S)


def _verify(partial: Path, size: int | None, etag: str, filename: str) -> None:
    actual = partial.stat().st_size
    if size is not None and actual != size:
        partial.unlink()
        raise DownloadStopped(filename, f"it arrived with {actual} bytes instead of {size}", 0)
    if len(etag) == 64:  # an LFS file: its ETag is the SHA-256 of the content
        digest = hashlib.sha256()
        with partial.open("rb") as f:
            while block := f.read(HASH_BLOCK):
                digest.update(block)
        if digest.hexdigest() != etag:
            partial.unlink()
            raise DownloadStopped(filename, "its content does not match the hub's checksum", 0)
