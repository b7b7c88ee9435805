"""The Hugging Face hub side of a conversion: what a repository holds, then its download.

Two steps, so the long one starts only when it can finish: `inspect_repo` reads the repository's file
list and its config.json (a few kB; from the hub, or from the user's hub cache when the hub cannot be
reached or ``HF_HUB_OFFLINE=1``), and `download_repo` fetches the rest with huggingface_hub's resumable
download and a progress bar. Every failure becomes one line that says what to do.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import logging
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ...errors import UsageError

log = logging.getLogger(__name__)

# What conversion needs from a hub repository (weights, configs, tokenizer, processor, template).
DOWNLOAD_PATTERNS = ("*.json", "*.safetensors", "*.txt", "*.model", "*.jinja")

Say = Callable[[str], None]


@dataclass(frozen=True)
class HubRepo:
    """One revision of a hub repository, as far as conversion is concerned."""

    repo_id: str
    commit: str
    files: dict[str, int]  # the files conversion downloads (DOWNLOAD_PATTERNS) and their sizes
    config: dict
    cache_dir: Path  # the hub cache the files go into
    from_cache: bool  # listed from the local cache: the hub was not asked

    @property
    def weight_bytes(self) -> int:
        return sum(size for name, size in self.files.items() if name.endswith(".safetensors"))

    def snapshot(self) -> Path:
        return self.cache_dir / _repo_folder(self.repo_id) / "snapshots" / self.commit

    def missing_files(self) -> list[str]:
        """Files not (completely) in the cache yet."""
        folder = self.snapshot()
        return [name for name in self.files if not (folder / name).is_file()]

    def bytes_to_download(self) -> int:
        """What the download still has to fetch: missing files, less what interrupted downloads kept."""
        partial = _partial_bytes(self.cache_dir / _repo_folder(self.repo_id) / "blobs")
        return max(0, sum(self.files[name] for name in self.missing_files()) - partial)


def size_text(n: int) -> str:
    """Bytes as a person reads them in a download: GB for checkpoints, MB for small files."""
    return f"{n / 1e9:.2f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"


def _repo_folder(repo_id: str) -> str:
    return "models--" + repo_id.replace("/", "--")


def _partial_bytes(blobs: Path) -> int:
    try:
        return sum(p.stat().st_size for p in blobs.glob("*.incomplete"))
    except OSError:
        return 0


def _wanted(name: str) -> bool:
    return "/" not in name and any(fnmatch.fnmatch(name, pattern) for pattern in DOWNLOAD_PATTERNS)


def hub_cache_dir() -> Path:
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE).expanduser()


def _endpoint() -> str:
    from huggingface_hub import constants

    return constants.ENDPOINT


def _timeout() -> float:
    """Seconds to wait for the hub's first answer (HF_HUB_ETAG_TIMEOUT, 10 by default)."""
    from huggingface_hub import constants

    return float(constants.HF_HUB_ETAG_TIMEOUT)


@contextlib.contextmanager
def _hub_errors(repo_id: str, while_doing: str) -> Iterator[None]:
    """Turn huggingface_hub's errors into one line that says what to do (exit code 2)."""
    import httpx2
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

    page = f"{_endpoint()}/{repo_id}"
    try:
        yield
    except GatedRepoError:
        raise UsageError(
            f"{repo_id} is gated: accept its licence at {page} while logged in, then log in here with "
            f"`hf auth login` (or set HF_TOKEN) and run again"
        ) from None
    except (RepositoryNotFoundError, RevisionNotFoundError):
        raise UsageError(
            f"{repo_id} was not found on the Hugging Face hub ({_endpoint()}); check the name "
            f"(for example Qwen/Qwen2-VL-2B-Instruct) or, for a private model, log in with `hf auth login`"
        ) from None
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else None
        if status in (401, 403):
            raise UsageError(
                f"the hub refused access to {repo_id} ({status}); log in with `hf auth login` with a token "
                f"that may read it (or set HF_TOKEN), and accept its licence at {page}"
            ) from None
        raise UsageError(f"the hub answered {status} while {while_doing} {repo_id}; try again later") from None
    except httpx2.TimeoutException:
        raise UsageError(
            f"the Hugging Face hub at {_endpoint()} did not answer within {_timeout():.0f} s while {while_doing} "
            f"{repo_id}; check the network (a proxy needs HTTPS_PROXY) and run again, or pass --source DIR"
        ) from None
    except (httpx2.TransportError, ConnectionError) as exc:
        raise UsageError(
            f"cannot reach the Hugging Face hub at {_endpoint()} ({_reason(exc)}) while {while_doing} {repo_id}; "
            f"check the network and run again (a download resumes where it stopped), or download the "
            f"checkpoint elsewhere and pass --source DIR"
        ) from None


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:120]


def inspect_repo(repo_id: str, say: Say) -> HubRepo:
    """The repository's file list and config.json: from the hub, or from the hub cache when offline."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return _from_cache(repo_id, "HF_HUB_OFFLINE=1 is set")
    import httpx2
    from huggingface_hub import HfApi, hf_hub_download

    with _hub_errors(repo_id, "looking up"):
        try:
            info = HfApi().model_info(repo_id, files_metadata=True, timeout=_timeout())
        except (httpx2.TransportError, ConnectionError) as exc:
            cached = _cached_or_none(repo_id)
            if cached is None:
                raise
            say(f"the hub cannot be reached ({_reason(exc)}); using {repo_id} from the hub cache")
            return cached
        files = {s.rfilename: int(s.size or 0) for s in info.siblings or () if _wanted(s.rfilename)}
        if "config.json" not in files:
            raise UsageError(f"{repo_id} on the hub has no config.json: it is not a transformers checkpoint")
        config_path = hf_hub_download(
            repo_id, "config.json", revision=info.sha, etag_timeout=_timeout(), tqdm_class=_silent_bar()
        )
    return HubRepo(
        repo_id=repo_id,
        commit=str(info.sha),
        files=files,
        config=_read_json(Path(config_path)),
        cache_dir=hub_cache_dir(),
        from_cache=False,
    )


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path} cannot be read ({exc}); delete it from the hub cache and run again") from None


def _cached_or_none(repo_id: str) -> HubRepo | None:
    try:
        return _from_cache(repo_id, "the hub cannot be reached")
    except UsageError:
        return None


def _from_cache(repo_id: str, why: str) -> HubRepo:
    """The repository as the user's hub cache holds it (main branch), with what is missing named."""
    cache = hub_cache_dir()
    storage = cache / _repo_folder(repo_id)
    ref = storage / "refs" / "main"
    if not ref.is_file():
        raise UsageError(
            f"{repo_id} is not in the hub cache ({cache}) and {why}; download it first "
            f"(unset HF_HUB_OFFLINE and run again), or pass --source DIR with a checkpoint folder"
        )
    commit = ref.read_text(encoding="utf-8").strip()
    snapshot = storage / "snapshots" / commit
    files = _cached_listing(repo_id, commit, snapshot)
    repo = HubRepo(repo_id, commit, files, {}, cache, from_cache=True)
    missing = repo.missing_files()
    if missing:
        shown = ", ".join(missing[:4]) + (f" and {len(missing) - 4} more" if len(missing) > 4 else "")
        raise UsageError(
            f"the hub cache holds only part of {repo_id} (missing {shown}) and {why}; "
            f"unset HF_HUB_OFFLINE and run again to download the rest"
        )
    return HubRepo(repo_id, commit, files, _read_json(snapshot / "config.json"), cache, from_cache=True)


def _cached_listing(repo_id: str, commit: str, snapshot: Path) -> dict[str, int]:
    """Files of a cached revision: the tree listing huggingface_hub keeps, else what the snapshot and its
    weight index name (caches written by older versions have no listing)."""
    from huggingface_hub import get_cached_repo_tree
    from huggingface_hub.errors import CachedRepoTreeNotFoundError

    try:
        tree = get_cached_repo_tree(repo_id, revision=commit, cache_dir=hub_cache_dir())
        return {f.path: int(f.size) for f in tree if _wanted(f.path)}
    except CachedRepoTreeNotFoundError:
        pass
    files = {p.name: p.stat().st_size for p in snapshot.glob("*") if p.is_file() and _wanted(p.name)}
    index = snapshot / "model.safetensors.index.json"
    if index.is_file():
        for shard in set(_read_json(index).get("weight_map", {}).values()):
            files.setdefault(shard, 0)
    files.setdefault("config.json", 0)
    return files


def download_repo(repo: HubRepo, say: Say) -> Path:
    """Download what is missing and return the complete snapshot folder.

    The weights come first, each resumable across runs (see resumable.py), under one progress bar;
    then huggingface_hub fetches the small files and records the branch (refs/main) for offline use.
    """
    if not repo.missing_files():
        say(f"{repo.repo_id} is already in the hub cache ({repo.snapshot()}); nothing to download")
        return repo.snapshot()
    import httpx2
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    from .resumable import DownloadStopped, download_resumable

    todo = repo.bytes_to_download()
    say(f"downloading {repo.repo_id} ({size_text(todo)} to fetch) into {repo.cache_dir}; it resumes if interrupted")
    weights = [name for name in repo.missing_files() if name.endswith(".safetensors")]
    storage = repo.cache_dir / _repo_folder(repo.repo_id)
    with _hub_errors(repo.repo_id, "downloading"):
        try:
            with _progress_bar(repo, weights) as advance:
                for name in weights:
                    download_resumable(repo.repo_id, name, repo.commit, storage, _timeout(), advance)
            folder = Path(
                snapshot_download(  # on the branch, not the commit: that also records refs/main for offline use
                    repo.repo_id,
                    allow_patterns=list(DOWNLOAD_PATTERNS),
                    etag_timeout=_timeout(),
                    tqdm_class=_silent_bar(),  # the rest is a few kB; its bars would only clutter ours
                )
            )
        except HfHubHTTPError:
            raise
        except (DownloadStopped, httpx2.TransportError, ConnectionError, LocalEntryNotFoundError) as exc:
            left = repo.bytes_to_download()
            raise UsageError(
                f"the download of {repo.repo_id} stopped ({_reason(exc)}) with {size_text(left)} of "
                f"{size_text(todo)} still to fetch; run the same command again: it resumes where it stopped"
            ) from None
        except OSError as exc:
            raise UsageError(
                f"downloading {repo.repo_id} failed ({_reason(exc)}); free disk space in {repo.cache_dir} "
                f"and run again (it resumes)"
            ) from None
    missing = [name for name in repo.files if not (folder / name).is_file()]
    if missing:
        raise UsageError(f"the download of {repo.repo_id} is incomplete (missing {', '.join(missing[:4])}); run again")
    return folder


def _silent_bar() -> type:
    from tqdm import tqdm

    class SilentBar(tqdm):
        def __init__(self, *args, **kwargs):
            kwargs.pop("name", None)
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)

    return SilentBar


@contextlib.contextmanager
def _progress_bar(repo: HubRepo, weights: list[str]) -> Iterator[Callable[[int], None]]:
    """One bar over the weights still to fetch, shown even when stderr is not a terminal (then redrawn
    every few seconds only, as each redraw is a line in a log); HF_HUB_DISABLE_PROGRESS_BARS hides it."""
    from huggingface_hub import constants
    from tqdm import tqdm

    total = sum(repo.files[name] for name in weights)
    bar = tqdm(
        total=total,
        initial=min(total, _partial_bytes(repo.cache_dir / _repo_folder(repo.repo_id) / "blobs")),
        unit="B",
        unit_scale=True,
        desc=f"Downloading {repo.repo_id}",
        file=sys.stderr,
        mininterval=0.1 if sys.stderr.isatty() else 5.0,
        disable=bool(constants.HF_HUB_DISABLE_PROGRESS_BARS) or not weights,
    )
    try:
        yield bar.update
    finally:
        bar.close()
