"""Fetching a data set's official files into the cache, verified before anything is put in place."""

from __future__ import annotations

import importlib.util
import logging
import shutil
import tempfile
from pathlib import Path

from nnbackend.data.errors import DataError
from nnbackend.data.idx import MAX_IDX_BYTES
from nnbackend.data.registry import DataSetSpec
from nnbackend.data.verify import read_verified
from nnbackend.files import replace_file

__all__ = ["download"]

log = logging.getLogger(__name__)

# The most one downloaded file may hold: the gzip of the largest IDX file the reader accepts (gzip's stored
# blocks add 5 bytes per 64 KiB). A server that sends more is cut off, so it cannot fill the disk.
MAX_DOWNLOAD_BYTES = MAX_IDX_BYTES + MAX_IDX_BYTES // 10_000 + 2**16


class DownloadTooLarge(OSError):
    """The server sent more than :data:`MAX_DOWNLOAD_BYTES` for one file."""


class _CappedFile:
    """The file pooch writes a download into, refusing to grow past ``limit`` bytes."""

    def __init__(self, path: Path, limit: int) -> None:
        self._file, self._limit, self.written = open(path, "wb"), limit, 0

    def write(self, chunk: bytes) -> int:
        self.written += len(chunk)
        if self.written > self._limit:
            raise DownloadTooLarge(f"the server sent more than {self._limit:,} bytes, more than the file can hold")
        return self._file.write(chunk)

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def download(spec: DataSetSpec, target: Path) -> None:
    """Download ``spec``'s files into the folder ``target`` as ``<file>.gz``: from ``spec.url_base``, or,
    when that fails, from each of ``spec.mirrors`` in turn.

    The files go to a temporary folder next to ``target`` first and are moved into place only when
    all four came from one address with the registered SHA-256; a failed download leaves nothing behind.
    A progress bar is shown when tqdm is installed.

    Raises:
        DataError: pooch is missing, the spec has no download address, or every address failed (a
            download error, or a file that is corrupt or has the wrong content); the message gives each
            address's reason.
    """
    if spec.url_base is None:
        raise DataError(f"data set {spec.name!r} has no download address")
    try:
        import pooch
    except ImportError as exc:
        raise DataError(
            f'downloading {spec.name} needs pooch: pip install "nnbackend[data]" (or: pip install pooch)'
        ) from exc
    downloader = pooch.HTTPDownloader(progressbar=importlib.util.find_spec("tqdm") is not None)
    cache = target.parent
    created = not cache.exists()
    cache.mkdir(parents=True, exist_ok=True)
    failures: list[DataError] = []
    try:
        for url_base in (spec.url_base, *spec.mirrors):
            staging = Path(tempfile.mkdtemp(prefix=f".{spec.name}-download-", dir=cache))
            try:
                _fetch_all(spec, url_base, staging, downloader)
                target.mkdir(exist_ok=True)
                for base in spec.files:
                    replace_file(staging / f"{base}.gz", target / f"{base}.gz")
                log.info("downloaded %s into %s", spec.name, target)
                return
            except DataError as exc:
                failures.append(exc)
                log.info("%s", exc)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
    finally:
        if created and not any(cache.iterdir()):
            cache.rmdir()
    if len(failures) == 1:
        raise failures[0]
    raise DataError("; then ".join(map(str, failures))) from failures[-1]


def _fetch_all(spec: DataSetSpec, url_base: str, staging: Path, downloader) -> None:
    """Download and verify the four files from ``url_base`` into ``staging``."""
    for base in spec.files:
        url = f"{url_base}{base}.gz"
        log.info("downloading %s", url)
        output = _CappedFile(staging / f"{base}.gz", MAX_DOWNLOAD_BYTES)
        try:
            downloader(url, output, None)
        except OSError as exc:
            raise DataError(f"could not download {url}: {_short_reason(exc)}") from exc
        finally:
            output.close()
        read_verified(staging / f"{base}.gz", spec, base, origin=url)


def _short_reason(exc: BaseException) -> str:
    """One short clause for a failed download (requests' messages nest the whole connection pool)."""
    if isinstance(exc, DownloadTooLarge):
        return str(exc)
    text = " ".join(str(exc).split())
    if "NameResolutionError" in text or "Name or service not known" in text or "Failed to resolve" in text:
        return "no network (the host name did not resolve)"
    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, ConnectionRefusedError):
        cause = cause.__cause__ or cause.__context__
    if cause is not None or "refused" in text.lower():  # (Windows: "actively refused it")
        return "the server refused the connection"
    if len(text) > 160:
        return f"{type(exc).__name__}: {text[:150]}..."
    return text or type(exc).__name__
