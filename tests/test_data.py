"""nnbackend.data: IDX files, the registry and its search path, verified downloads, splits, the sample.

Facts about the real files come from shared/data/README.md (next to the repository); those tests
read the files through NNBACKEND_DATA and are skipped when the folder is absent. Everything else uses
small files made here and, for downloads, a local HTTP server: no test touches the network, the
user's cache or /usr/share.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import hashlib
import http.server
import importlib.util
import os
import re
import shutil
import socket
import sys
import threading
import zlib
from pathlib import Path

import numpy as np
import pytest

from nnbackend.data import (
    DataError,
    DataSet,
    DataSetSpec,
    load,
    official_split,
    paper_split,
    part_indices,
    read_idx,
    register,
    search_path,
    subset,
    write_idx,
)
from nnbackend.data import locate, registry
from nnbackend.data.registry import MNIST_FILES, get_spec

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "nnbackend" / "data" / "sample"

# ru_maxrss counts KiB on Linux, bytes on macOS.
KIB = 1024 if sys.platform == "darwin" else 1


_DATA_AT_START = os.environ.get("NNBACKEND_DATA")


def real_data_dir() -> Path:
    """``$NNBACKEND_TEST_DATA``, else ``$NNBACKEND_DATA`` (conftest defaults it to ``shared/data`` next to
    the repository), read before any test changes it."""
    return Path(os.environ.get("NNBACKEND_TEST_DATA") or _DATA_AT_START or REPO.parent / "shared" / "data")


def needs_real(name: str) -> Path:
    folder = real_data_dir() / name
    if not folder.is_dir():
        pytest.skip(f"real {name} files not in {folder}; set NNBACKEND_DATA to a folder with {name}/")
    return folder


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """No test sees the user's cache, NNBACKEND_DATA, /usr/share/datasets or another test's registrations."""
    monkeypatch.setenv(locate.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv(locate.DATA_ENV, raising=False)
    monkeypatch.setattr(locate, "DEBIAN_DATASETS", tmp_path / "usr-share-datasets")
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(name, "127.0.0.1")


def _load_real(name: str, tmp_path_factory) -> DataSet:
    needs_real(name)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(locate.DATA_ENV, str(real_data_dir()))
        mp.setenv(locate.CACHE_ENV, str(tmp_path_factory.mktemp("cache")))
        return load(name, download=False)


@pytest.fixture(scope="module")
def mnist(tmp_path_factory) -> DataSet:
    return _load_real("mnist", tmp_path_factory)


@pytest.fixture(scope="module")
def fashion(tmp_path_factory) -> DataSet:
    return _load_real("fashion-mnist", tmp_path_factory)


# -- a tiny fake data set: four small IDX files and their registered checksums ----------------------


@dataclasses.dataclass
class Tiny:
    spec: DataSetSpec
    master: Path  # a folder holding the four .gz files
    arrays: tuple[np.ndarray, ...]

    def copy_to(self, folder: Path) -> Path:
        shutil.copytree(self.master, folder)
        return folder


def tiny_arrays(seed: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    return (
        rng.integers(0, 256, (12, 28, 28), dtype=np.uint8),
        (np.arange(12) % 3).astype(np.uint8),
        rng.integers(0, 256, (6, 28, 28), dtype=np.uint8),
        (np.arange(6) % 3).astype(np.uint8),
    )


def write_set(folder: Path, arrays: tuple[np.ndarray, ...], suffix: str = ".gz") -> dict[str, str]:
    """Write the four files; return the SHA-256 of their uncompressed content."""
    folder.mkdir(parents=True, exist_ok=True)
    sums = {}
    for base, array in zip(MNIST_FILES, arrays):
        path = folder / f"{base}{suffix}"
        write_idx(path, array)
        content = path.read_bytes()
        sums[base] = hashlib.sha256(gzip.decompress(content) if suffix == ".gz" else content).hexdigest()
    return sums


@pytest.fixture
def tiny(tmp_path) -> Tiny:
    arrays = tiny_arrays(0)
    master = tmp_path / "tiny-master"
    sums = write_set(master, arrays)
    spec = DataSetSpec(name="tiny", class_names=("a", "b", "c"), sha256=sums, url_base=None)
    register(spec)
    return Tiny(spec, master, arrays)


@pytest.fixture
def server(tmp_path):
    """A local HTTP server on 127.0.0.1 serving ``root``; yields (root, base URL, requested paths)."""
    root = tmp_path / "www"
    root.mkdir()
    requested: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format, *args):  # noqa: A002 - the base class's name
            requested.append(self.path)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}/", requested
    httpd.shutdown()
    httpd.server_close()


def files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


# -- IDX ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize(
    "array",
    [
        np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4),
        np.array([5, 0, 4], dtype=np.uint8),
        np.array([[-7, 1 << 20]], dtype=np.int32),
        np.array([[0.5, -1e300]], dtype=np.float64),
    ],
    ids=["uint8-3d", "uint8-1d", "int32", "float64"],
)
def test_idx_round_trip(tmp_path, array, suffix):
    path = tmp_path / f"x-idx{suffix}"
    write_idx(path, array)
    back = read_idx(path)
    assert back.dtype == array.dtype and back.dtype.isnative
    np.testing.assert_array_equal(back, array)
    assert path.read_bytes().startswith(b"\x1f\x8b") == (suffix == ".gz")


def test_idx_header_is_the_standard_one(tmp_path):
    write_idx(tmp_path / "images", np.zeros((2, 28, 28), np.uint8))
    write_idx(tmp_path / "labels", np.zeros(2, np.uint8))
    assert (tmp_path / "images").read_bytes()[:16] == bytes.fromhex("00000803 00000002 0000001c 0000001c")
    assert (tmp_path / "labels").read_bytes()[:8] == bytes.fromhex("00000801 00000002")


def test_write_idx_rejects_types_idx_cannot_hold(tmp_path):
    with pytest.raises(ValueError, match="int64"):
        write_idx(tmp_path / "x", np.zeros(3, np.int64))


def _gz(path: Path, content: bytes) -> Path:
    path.write_bytes(gzip.compress(content))
    return path


def test_truncated_file_is_rejected_with_its_name(tmp_path):
    write_idx(tmp_path / "full", np.zeros((3, 28, 28), np.uint8))
    path = _gz(tmp_path / "train-images-idx3-ubyte.gz", (tmp_path / "full").read_bytes()[:-100])
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz: truncated: header says "
                                        r"3x28x28 = 2352 bytes of data, file has 2252"):
        read_idx(path)


def test_trailing_data_is_rejected(tmp_path):
    write_idx(tmp_path / "full", np.zeros(4, np.uint8))
    path = _gz(tmp_path / "labels.gz", (tmp_path / "full").read_bytes() + b"\0")
    expected = "labels.gz: trailing data: header says 4 = 4 bytes of data, file has 5"
    with pytest.raises(DataError, match=expected):
        read_idx(path)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"\x00\x00", "truncated"),
        (b"\x00\x00\x08\x03\x00\x00", "truncated: the header announces 3 dimension"),
        (b"<html>not found</html>", "bad magic number 0x3C68746D"),
        (b"\x00\x00\x07\x01\x00\x00\x00\x00", "bad magic number 0x00000701"),
        (b"\x00\x00\x08\x00", "bad magic number"),
        (b"\x01\x00\x08\x01\x00\x00\x00\x00", "bad magic number 0x01000801"),
        (b"\x00\x01\x08\x01\x00\x00\x00\x00", "bad magic number 0x00010801"),
    ],
    ids=["short", "short-header", "html", "type-code", "no-dims", "first-byte", "second-byte"],
)
def test_not_an_idx_file_is_rejected(tmp_path, content, problem):
    path = tmp_path / "t10k-labels-idx1-ubyte"
    path.write_bytes(content)
    with pytest.raises(DataError, match=f"t10k-labels-idx1-ubyte: {problem}"):
        read_idx(path)


@pytest.mark.parametrize("damage", ["flip", "cut"])
def test_corrupt_gzip_is_rejected_with_its_name(tmp_path, damage):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    write_idx(path, np.random.default_rng(0).integers(0, 256, (4, 28, 28), dtype=np.uint8))
    data = bytearray(path.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0xFF
    else:
        del data[len(data) // 2:]
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz: not a valid gzip stream"):
        read_idx(path)


# -- the real files: facts from shared/data/README.md ---------------------------------------------


def test_mnist_facts(mnist):
    assert mnist.train_images.shape == (60000, 28, 28) and mnist.train_images.dtype == np.uint8
    assert mnist.test_images.shape == (10000, 28, 28) and mnist.test_images.dtype == np.uint8
    assert mnist.train_labels.dtype == np.int64 and mnist.test_labels.dtype == np.int64
    assert mnist.train_labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert mnist.test_labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    counts = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert np.bincount(mnist.train_labels).tolist() == counts
    assert mnist.train_images.mean() == pytest.approx(33.318, abs=5e-4)
    assert mnist.class_names == tuple("0123456789") and mnist.n_classes == 10
    assert mnist.image_shape == (28, 28)
    assert mnist.source == str(real_data_dir() / "mnist")
    assert not mnist.train_images.flags.writeable


def test_fashion_mnist_facts(fashion):
    assert np.bincount(fashion.train_labels).tolist() == [6000] * 10
    assert np.bincount(fashion.test_labels).tolist() == [1000] * 10
    assert fashion.class_names[0] == "T-shirt/top" and fashion.class_names[9] == "Ankle boot"
    assert fashion.image_shape == (28, 28)


# -- names, search path, verification ---------------------------------------------------------------


@pytest.mark.parametrize("name", ["fashion-mnist", "Fashion_MNIST", "fashion mnist", "FASHIONMNIST"])
def test_names_ignore_case_and_separators(name):
    assert get_spec(name).name == "fashion-mnist"


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(DataError, match="unknown data set .cifar.; known data sets: fashion-mnist, mnist"):
        load("cifar")


def test_search_path_order(tmp_path, monkeypatch):
    monkeypatch.setenv(locate.DATA_ENV, str(tmp_path / "env"))
    cache = tmp_path / "cache"
    assert search_path("MNIST", tmp_path / "dir") == [
        tmp_path / "dir" / "mnist", tmp_path / "dir", tmp_path / "env" / "mnist", cache / "mnist",
    ]
    assert search_path("fashion_mnist")[-1] == tmp_path / "usr-share-datasets" / "fashion-mnist"


def test_cache_dir_follows_xdg_and_the_override(monkeypatch, tmp_path):
    from nnbackend.data import cache_dir

    assert cache_dir() == tmp_path / "cache"
    monkeypatch.delenv(locate.CACHE_ENV)
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "nnbackend"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_dir() == Path.home() / ".cache" / "nnbackend"


def test_data_dir_beats_env_beats_cache(tiny, tmp_path, monkeypatch):
    given = tiny.copy_to(tmp_path / "given")  # data_dir holding the files themselves
    env = tiny.copy_to(tmp_path / "env" / "tiny")
    cache = tiny.copy_to(tmp_path / "cache" / "tiny")
    monkeypatch.setenv(locate.DATA_ENV, str(tmp_path / "env"))
    assert load("tiny", data_dir=given, download=False).source == str(given)
    assert load("tiny", download=False).source == str(env)
    shutil.rmtree(env)
    data = load("tiny", download=False)
    assert data.source == str(cache)
    arrays = (data.train_images, data.train_labels, data.test_images, data.test_labels)
    for got, want in zip(arrays, tiny.arrays):
        np.testing.assert_array_equal(got, want)


def test_data_dir_may_hold_a_folder_per_data_set(tiny, tmp_path):
    tiny.copy_to(tmp_path / "data" / "tiny")
    assert load("tiny", data_dir=tmp_path / "data").source == str(tmp_path / "data" / "tiny")


def test_raw_files_load_like_gzipped_ones(tiny, tmp_path):
    folder = tmp_path / "raw"
    write_set(folder, tiny.arrays, suffix="")
    np.testing.assert_array_equal(load("tiny", data_dir=folder).train_images, tiny.arrays[0])


def test_debian_folder_is_used_for_fashion_mnist(tmp_path):
    real = needs_real("fashion-mnist")
    debian = tmp_path / "usr-share-datasets" / "fashion-mnist"
    debian.mkdir(parents=True)
    for path in real.iterdir():
        try:
            (debian / path.name).symlink_to(path)
        except OSError:  # Windows without the symlink privilege
            shutil.copy(path, debian / path.name)
    assert load("fashion-mnist", download=False).source == str(debian)


def test_checksum_mismatch_names_file_and_both_sums(tiny, tmp_path):
    folder = tiny.copy_to(tmp_path / "data")
    other = tiny_arrays(1)
    write_idx(folder / "t10k-images-idx3-ubyte.gz", other[2])
    write_idx(folder / "t10k-images-idx3-ubyte", other[2])
    actual = hashlib.sha256((folder / "t10k-images-idx3-ubyte").read_bytes()).hexdigest()
    (folder / "t10k-images-idx3-ubyte").unlink()
    with pytest.raises(DataError) as info:
        load("tiny", data_dir=folder)
    message = str(info.value)
    assert str(folder / "t10k-images-idx3-ubyte.gz") in message
    assert actual in message and tiny.spec.sha256["t10k-images-idx3-ubyte"] in message


def test_incomplete_folder_is_reported_not_half_used(tiny, tmp_path):
    folder = tiny.copy_to(tmp_path / "data")
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    tiny.copy_to(tmp_path / "cache" / "tiny")
    with pytest.raises(DataError, match=r"incomplete tiny: .* but not t10k-labels-idx1-ubyte"):
        load("tiny", data_dir=folder)


def test_truncated_file_in_a_data_set_is_rejected(tiny, tmp_path):
    folder = tiny.copy_to(tmp_path / "data")
    content = gzip.decompress((folder / "train-labels-idx1-ubyte.gz").read_bytes())
    _gz(folder / "train-labels-idx1-ubyte.gz", content[:-2])
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte\.gz: truncated: header says 12 = 12 bytes"):
        load("tiny", data_dir=folder)


def test_offline_error_lists_every_place_and_the_fixes(tmp_path, monkeypatch):
    monkeypatch.setenv(locate.DATA_ENV, str(tmp_path / "env"))
    (tmp_path / "dir").mkdir()  # exists, but holds nothing; the others do not exist
    with pytest.raises(DataError) as info:
        load("fashion-mnist", data_dir=tmp_path / "dir", download=False)
    message = str(info.value)
    for place in search_path("fashion-mnist", tmp_path / "dir"):
        assert f"  {place}{'' if place.is_dir() else ' (no such folder)'}\n" in message
    assert f"  {tmp_path / 'dir'}\n" in message and f"  {tmp_path / 'env' / 'fashion-mnist'} (no such folder)\n" in message
    assert "NNBACKEND_DATA" in message and "apt install dataset-fashion-mnist" in message
    assert "download=True" in message


# -- downloads from a local server ----------------------------------------------------------------


def test_download_puts_verified_files_in_the_cache(tiny, server, tmp_path):
    root, url, requested = server
    tiny.copy_to(root / "files")
    register(dataclasses.replace(tiny.spec, url_base=f"{url}files/"))
    data = load("tiny")
    cache = tmp_path / "cache" / "tiny"
    assert data.source == str(cache)
    assert sorted(p.name for p in files_under(tmp_path / "cache")) == sorted(f"{b}.gz" for b in MNIST_FILES)
    np.testing.assert_array_equal(data.test_images, tiny.arrays[2])
    assert len(requested) == 4
    load("tiny")
    assert len(requested) == 4  # the second load reads the cache


def test_wrong_download_is_rejected_and_leaves_nothing(tiny, server, tmp_path):
    root, url, _ = server
    write_set(root / "files", tiny_arrays(1))
    register(dataclasses.replace(tiny.spec, url_base=f"{url}files/"))
    with pytest.raises(DataError) as info:
        load("tiny")
    message = str(info.value)
    assert f"{url}files/train-images-idx3-ubyte.gz: wrong content" in message
    assert tiny.spec.sha256["train-images-idx3-ubyte"] in message
    assert "looked in:" in message
    assert not (tmp_path / "cache").exists()


def test_failed_download_leaves_nothing_and_lists_places(tiny, server, tmp_path):
    root, url, _ = server
    tiny.copy_to(root / "files")
    (root / "files" / "t10k-labels-idx1-ubyte.gz").unlink()  # the last file is missing: 404
    register(dataclasses.replace(tiny.spec, url_base=f"{url}files/"))
    with pytest.raises(DataError, match=r"(?s)^data set 'tiny' not found; looked in:.*Downloading them failed: "
                       r"could not download .*t10k-labels.*404"):
        load("tiny")
    assert not (tmp_path / "cache").exists()


def test_a_failed_address_falls_back_to_the_next_mirror(tiny, server, tmp_path):
    root, url, requested = server
    tiny.copy_to(root / "mirror")
    write_set(root / "wrong", tiny_arrays(1))  # files the checksums refuse
    register(dataclasses.replace(tiny.spec, url_base=f"{url}gone/", mirrors=(f"{url}wrong/", f"{url}mirror/")))
    data = load("tiny")
    np.testing.assert_array_equal(data.train_images, tiny.arrays[0])
    tried = list(dict.fromkeys(requested))  # (the server logs a 404 twice)
    assert tried == ["/gone/train-images-idx3-ubyte.gz", "/wrong/train-images-idx3-ubyte.gz",
                     *(f"/mirror/{base}.gz" for base in MNIST_FILES)]
    assert sorted(p.name for p in files_under(tmp_path / "cache")) == sorted(f"{b}.gz" for b in MNIST_FILES)


def test_when_every_mirror_fails_the_error_gives_each_reason(tiny, server, tmp_path):
    root, url, _ = server
    write_set(root / "wrong", tiny_arrays(1))
    register(dataclasses.replace(tiny.spec, url_base=f"{url}gone/", mirrors=(f"{url}wrong/",)))
    with pytest.raises(DataError, match=r"(?s)Downloading them failed: could not download .*/gone/train-images.*404"
                       r".*; then .*/wrong/train-images-idx3-ubyte.gz: wrong content"):
        load("tiny")
    assert not (tmp_path / "cache").exists()


def test_mirrors_are_urls_backing_up_a_url_base(tiny):
    with pytest.raises(ValueError, match="tuple of URLs"):
        dataclasses.replace(tiny.spec, url_base="http://a/", mirrors="http://b/")
    with pytest.raises(ValueError, match="need a url_base"):
        dataclasses.replace(tiny.spec, url_base=None, mirrors=("http://b/",))


def test_a_download_bigger_than_any_idx_file_is_cut_off(tiny, server, tmp_path, monkeypatch):
    from nnbackend.data import download

    root, url, _ = server
    tiny.copy_to(root / "files")
    register(dataclasses.replace(tiny.spec, url_base=f"{url}files/"))
    size = (root / "files" / "train-images-idx3-ubyte.gz").stat().st_size
    monkeypatch.setattr(download, "MAX_DOWNLOAD_BYTES", size - 1)
    with pytest.raises(DataError, match=rf"could not download .*train-images-idx3-ubyte.gz: the server sent more "
                       rf"than {size - 1:,} bytes"):
        load("tiny")
    assert not (tmp_path / "cache").exists()
    monkeypatch.setattr(download, "MAX_DOWNLOAD_BYTES", size)
    np.testing.assert_array_equal(load("tiny").train_images, tiny.arrays[0])


def test_unreachable_server_gives_one_error(tiny, tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    register(dataclasses.replace(tiny.spec, url_base=f"http://127.0.0.1:{port}/"))
    pattern = (rf"(?s)^data set 'tiny' not found; looked in:.*NNBACKEND_DATA.*could not download "
               rf"http://127.0.0.1:{port}/train-images-idx3-ubyte.gz: the server refused the connection$")
    with pytest.raises(DataError, match=pattern):
        load("tiny")
    assert not (tmp_path / "cache").exists()


def test_missing_pooch_says_what_to_install(tiny, monkeypatch):
    register(dataclasses.replace(tiny.spec, url_base="http://127.0.0.1:9/"))
    monkeypatch.setitem(sys.modules, "pooch", None)
    with pytest.raises(DataError, match=r'pip install "nnbackend\[data\]"'):
        load("tiny")


# -- splits ---------------------------------------------------------------------------------------


def numbered(n_train: int = 600, n_test: int = 400) -> DataSet:
    """A data set whose image ``i`` (train first, then test) carries ``i`` in its first two pixels."""
    n = n_train + n_test
    images = np.zeros((n, 28, 28), np.uint8)
    images[:, 0, 0], images[:, 0, 1] = np.arange(n) % 256, np.arange(n) // 256
    labels = np.arange(n) % 10
    return DataSet("numbered", images[:n_train], labels[:n_train], images[n_train:], labels[n_train:],
                   tuple("0123456789"), "memory")


def ids(x: np.ndarray) -> np.ndarray:
    pixels = np.rint(x.reshape(len(x), -1)[:, :2] * 255).astype(np.int64)
    return pixels[:, 0] + 256 * pixels[:, 1]


def test_paper_split_pools_shuffles_and_cuts_10_80_10():
    split = paper_split(numbered(), seed=7)
    order = np.random.default_rng(7).permutation(1000)
    np.testing.assert_array_equal(ids(split.x_test), order[:100])
    np.testing.assert_array_equal(ids(split.x_train), order[100:900])
    np.testing.assert_array_equal(ids(split.x_val), order[900:])
    np.testing.assert_array_equal(split.y_train, order[100:900] % 10)
    every = np.concatenate([ids(split.x_train), ids(split.x_val), ids(split.x_test)])
    assert sorted(every) == list(range(1000))


def test_splits_are_deterministic_per_seed():
    data = numbered()
    a, b, c = paper_split(data), paper_split(data), paper_split(data, seed=1)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    assert not np.array_equal(a.y_train, c.y_train)
    np.testing.assert_array_equal(official_split(data).y_val, official_split(data).y_val)


def test_official_split_keeps_the_official_test_set():
    split = official_split(numbered(), validation_fraction=0.25, seed=3)
    np.testing.assert_array_equal(ids(split.x_test), np.arange(600, 1000))
    order = np.random.default_rng(3).permutation(600)
    np.testing.assert_array_equal(ids(split.x_val), order[:150])
    np.testing.assert_array_equal(ids(split.x_train), order[150:])


def test_images_for_cnns_and_float64():
    data = numbered()
    split = paper_split(data, flatten=False, dtype="float64")
    assert split.x_train.shape == (800, 1, 28, 28) and split.x_train.dtype == np.float64
    assert split.y_train.dtype == np.int64
    pool = np.concatenate([data.train_images, data.test_images])
    np.testing.assert_array_equal(split.x_test[:, 0], pool[ids(split.x_test)] / 255.0)
    with pytest.raises(ValueError, match="float32 or float64"):
        paper_split(data, dtype="float16")


def test_subset_takes_the_first_samples_of_each_part():
    split = paper_split(numbered())
    small = subset(split, 50, 10)
    assert (len(small.y_train), len(small.y_val), len(small.y_test)) == (50, 10, 100)
    np.testing.assert_array_equal(small.x_train, split.x_train[:50])
    assert "50 train" in small.summary()
    with pytest.raises(ValueError, match="asked for 101 test samples, the split has 100"):
        subset(split, 1, n_test=101)


def test_paper_split_of_mnist(mnist):
    split = paper_split(mnist)
    assert (len(split.y_train), len(split.y_val), len(split.y_test)) == (56000, 7000, 7000)
    assert split.x_train.shape == (56000, 784) and split.x_train.dtype == np.float32
    assert split.y_train.dtype == np.int64
    assert 0.0 <= split.x_test.min() and split.x_test.max() == 1.0
    pooled = np.bincount(mnist.train_labels, minlength=10) + np.bincount(mnist.test_labels, minlength=10)
    parts = sum(np.bincount(y, minlength=10) for y in (split.y_train, split.y_val, split.y_test))
    np.testing.assert_array_equal(parts, pooled)
    assert "56000" in split.summary()


# -- the shipped sample -----------------------------------------------------------------------------


def test_the_sample_always_loads_and_is_small():
    data = load("mnist-sample", download=False)
    assert data.source == str(SAMPLE)
    assert data.train_images.shape == (4000, 28, 28) and data.test_images.shape == (1000, 28, 28)
    assert np.bincount(data.train_labels).tolist() == [400] * 10
    assert np.bincount(data.test_labels).tolist() == [100] * 10
    assert sum(p.stat().st_size for p in SAMPLE.iterdir()) < 1_000_000
    licence = (SAMPLE / "LICENSE.txt").read_text()
    assert "CC BY-SA 3.0" in licence and "Christopher J.C. Burges" in licence


def test_the_sample_is_what_the_script_draws_from_real_mnist(mnist):
    path = REPO / "scripts" / "make_mnist_sample.py"
    spec = importlib.util.spec_from_file_location("make_mnist_sample", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    rng = np.random.default_rng(0)
    train = script.stratified(mnist.train_labels, 400, rng)
    test = script.stratified(mnist.test_labels, 100, rng)
    sample = load("mnist-sample")
    np.testing.assert_array_equal(sample.train_images, mnist.train_images[train])
    np.testing.assert_array_equal(sample.test_labels, mnist.test_labels[test])


def test_mismatch_says_which_data_set_the_file_belongs_to(tmp_path):
    folder = tmp_path / "data" / "fashion-mnist"
    shutil.copytree(SAMPLE, folder)
    with pytest.raises(DataError, match="that is the content of mnist-sample's train-images-idx3-ubyte"):
        load("fashion-mnist", data_dir=tmp_path / "data", download=False)


def test_the_sample_is_last_on_its_search_path():
    assert search_path("mnist-sample")[-1] == SAMPLE


def test_a_gzip_bomb_is_refused_without_inflating_it(tmp_path):
    resource = pytest.importorskip("resource", reason="no resource module (Windows)")

    # 40,000 labels announced, then 500 MB of zeros: the reader stops one byte past what the header says.
    header = b"\x00\x00\x08\x01" + (40000).to_bytes(4, "big")
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunks = [compressor.compress(header)]
    zeros = bytes(1 << 20)
    chunks += [compressor.compress(zeros) for _ in range(500)]
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    path.write_bytes(b"".join(chunks) + compressor.flush())
    assert path.stat().st_size < 1_000_000
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(DataError, match="trailing data"):
        read_idx(path)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100_000 * KIB  # no 500 MB buffer


def test_a_header_announcing_gigabytes_is_refused(tmp_path):
    path = tmp_path / "t10k-images-idx3-ubyte"
    path.write_bytes(b"\x00\x00\x08\x03" + (100000).to_bytes(4, "big") + (1000).to_bytes(4, "big") * 2 + b"\0" * 16)
    with pytest.raises(DataError, match="more than the 1,073,741,824 an IDX file here may hold"):
        read_idx(path)


def test_part_indices_name_the_images_of_each_part_and_cover_the_pool_once():
    sample = load("mnist-sample")
    pool_images = np.concatenate([sample.train_images, sample.test_images]).reshape(5000, -1) / 255
    for kind, make in (("paper", paper_split), ("official", official_split)):
        for seed in (42, 3):
            index = part_indices(kind, 4000, 1000, seed=seed)
            split = make(sample, seed=seed, dtype="float64")
            for part in ("train", "val", "test"):
                np.testing.assert_array_equal(getattr(split, f"x_{part}"), pool_images[index[part]])
            every = np.concatenate(list(index.values()))
            assert len(np.unique(every)) == len(every) == 5000
    np.testing.assert_array_equal(part_indices("official", 4000, 1000)["test"], np.arange(4000, 5000))
    with pytest.raises(ValueError, match="kind must be 'paper' or 'official'"):
        part_indices("random", 10, 10)


def test_official_split_without_validation_trains_on_every_train_image():
    data = numbered()
    for flatten, shape in ((True, (0, 784)), (False, (0, 1, 28, 28))):
        split = official_split(data, validation_fraction=0, flatten=flatten)
        assert split.x_val.shape == shape and split.y_val.shape == (0,) and split.y_val.dtype == np.int64
        assert sorted(ids(split.x_train)) == list(range(600)) and len(split.y_test) == 400
    assert re.search(r"val +0 samples", split.summary())
    tiny_fraction = official_split(data, validation_fraction=1e-4)  # rounds to no validation image too
    assert len(tiny_fraction.y_val) == 0 and len(tiny_fraction.y_train) == 600


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"validation_fraction": 1}, r"validation_fraction must be a number in \[0, 1\), got 1"),
    ({"validation_fraction": -0.1}, r"must be a number in \[0, 1\)"),
    ({"validation_fraction": "0.1"}, r"must be a number in \[0, 1\), got '0.1'"),
    ({"validation_fraction": True}, r"must be a number in \[0, 1\)"),
    ({"validation_fraction": 0.9999}, "validation_fraction 0.9999 of 600 train images leaves none to train on"),
    ({"seed": -1}, "seed must be an integer >= 0, got -1"),
    ({"seed": 1.5}, "seed must be an integer >= 0"),
])
def test_official_split_refuses_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        official_split(numbered(), **kwargs)


def test_bad_settings_are_refused_before_the_data_set_is_loaded(monkeypatch):
    from nnbackend.data import splits

    monkeypatch.setattr(splits, "load", lambda name: pytest.fail("loaded the data set"))
    with pytest.raises(ValueError, match="validation_fraction"):
        official_split("mnist", validation_fraction=1.5)
    with pytest.raises(ValueError, match="seed"):
        paper_split("mnist", seed="42")


@pytest.mark.parametrize(("args", "error", "message"), [
    ((2.5,), TypeError, "n_train must be a whole number of samples or None .*got float 2.5"),
    ((10, "5"), TypeError, "n_val must be a whole number of samples or None"),
    ((10, None, True), TypeError, "n_test must be a whole number"),
    ((-1,), ValueError, "asked for -1 train samples"),
])
def test_subset_refuses_counts_that_are_not_sample_numbers(args, error, message):
    with pytest.raises(error, match=message):
        subset(paper_split(numbered()), *args)
    assert len(subset(paper_split(numbered()), np.int64(3)).y_train) == 3


def test_subset_and_splits_refuse_the_wrong_kind_of_data():
    with pytest.raises(TypeError, match="subset: split must be a Split .*got DataSet"):
        subset(numbered(), 10)
    with pytest.raises(TypeError, match=r"dataset must be a DataSet or a data set name such as 'mnist', got int 3"):
        paper_split(3)
    with pytest.raises(TypeError, match=r"got PosixPath|got WindowsPath"):
        official_split(Path("mnist"))


@pytest.mark.parametrize(("call", "message"), [
    (lambda: load(3), "a data set name must be a string such as 'mnist', got int 3; known data sets: .*mnist"),
    (lambda: load(Path("/data/mnist")), r"got .*Path.*pass data_dir=FOLDER to load"),
    (lambda: search_path(None), "a data set name must be a string"),
    (lambda: load("mnist-sample", data_dir=5), r"data_dir must be a folder's path \(str or Path\), got int 5"),
])
def test_load_refuses_names_and_folders_of_the_wrong_type(call, message):
    with pytest.raises(TypeError, match=message):
        call()
