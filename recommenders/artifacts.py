"""Artifact directories: ``manifest.json`` plus plain ``.npz`` files, hashed and verified.

Layout::

    manifest.json   algorithm, format_version, params, data fingerprint and window, metrics,
                    library versions, the feature encoders, sha256 of every other file and a
                    sha256 of the manifest content itself (``content_sha256``)
    ids.npz         customer_ids, product_ids (the frozen ID maps)
    model.npz       the model's arrays (factors, similarity, ...)

Nothing is pickled: ``np.load(..., allow_pickle=False)`` reads every file. A directory is
written under a temporary name and renamed into place, so readers never see half an artifact.

``np.savez`` stores its members uncompressed, so a reader that wants only some rows of a large
array (a batch job reading one chunk of customers at a time) can memory-map it in place
(``load_artifact(..., mmap=...)``); the files and their hashes are the same either way.
"""

from __future__ import annotations

import hashlib
import json
import mmap as _mmap
import os
import platform
import shutil
import tempfile
import zipfile
from collections.abc import Collection
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import ValidationError

from recommenders.errors import ArtifactError, UnknownAlgorithmError

if TYPE_CHECKING:
    from recommenders.base import Recommender

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
_LIBRARIES = ("finrec", "numpy", "scipy", "pandas", "pydantic", "implicit", "rectools-lightfm")


def library_versions() -> dict[str, str]:
    """Versions of the libraries that shape a model's numbers (recorded, not enforced)."""
    versions = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "unknown"
    return versions


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _content_hash(manifest: dict[str, Any]) -> str:
    body = {k: v for k, v in manifest.items() if k != "content_sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _files_under(directory: Path) -> list[str]:
    return sorted(
        rel
        for rel in (
            p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file()
        )
        if rel != MANIFEST
    )


def save_artifact(
    model: Recommender,
    directory: str | Path,
    *,
    metrics: dict[str, float] | None = None,
    extra: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``model`` to ``directory`` atomically and return the directory path.

    Refuses an existing directory unless ``overwrite``. ``metrics`` and ``extra`` are recorded
    in the manifest as given (they must be JSON-serialisable).
    """
    target = Path(directory)
    customer_ids, product_ids = model._ids()
    context = model.context
    assert context is not None
    if target.exists() and not overwrite:
        raise ArtifactError(f"artifact directory {target} already exists")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        np.savez(
            staging / "ids.npz",
            customer_ids=customer_ids.external,
            product_ids=product_ids.external,
        )
        arrays = model._arrays()
        bad = [k for k, v in arrays.items() if np.asarray(v).dtype == object]
        if bad:
            raise ArtifactError(f"model arrays must not be objects: {', '.join(bad)}")
        _savez(staging / "model.npz", arrays)
        model._save_files(staging)
        files = {rel: sha256_file(staging / rel) for rel in _files_under(staging)}
        manifest: dict[str, Any] = {
            "format_version": FORMAT_VERSION,
            "algorithm": model.algorithm,
            "layout_version": model.layout_version,
            "params": model.params.model_dump(mode="json"),
            "data": {
                "fingerprint": context.fingerprint,
                "window": [t.isoformat() for t in context.window] if context.window else None,
                "summary": context.summary,
            },
            "encoders": {
                "customer": context.customer_encoder.model_dump(mode="json"),
                "product": context.product_encoder.model_dump(mode="json"),
            },
            "metrics": dict(metrics or {}),
            "extra": dict(extra or {}),
            "library_versions": library_versions(),
            "created_at": datetime.now(UTC).isoformat(),
            "files": files,
        }
        manifest["content_sha256"] = _content_hash(manifest)
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def read_manifest(directory: str | Path) -> dict[str, Any]:
    """The parsed manifest, with its own content hash checked (files are not hashed here)."""
    path = Path(directory) / MANIFEST
    if not path.is_file():
        raise ArtifactError(f"{directory} is not an artifact: {MANIFEST} is missing")
    try:
        manifest = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(manifest, dict):
        raise ArtifactError(f"{path} does not hold a JSON object")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise ArtifactError(
            f"artifact {directory} has format_version {version!r}; this finrec "
            f"reads format_version {FORMAT_VERSION} (retrain the model)"
        )
    if manifest.get("content_sha256") != _content_hash(manifest):
        raise ArtifactError(
            f"artifact {directory}: manifest content does not match its "
            "content_sha256 (edited or corrupt)"
        )
    return manifest


def artifact_hash(directory: str | Path) -> str:
    """One hash standing for the whole verified artifact (the manifest's content hash)."""
    return str(verify_artifact(directory)["content_sha256"])


def verify_artifact(directory: str | Path) -> dict[str, Any]:
    """Check the manifest and the sha256 of every file; return the manifest."""
    root = Path(directory)
    manifest = read_manifest(root)
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise ArtifactError(f"artifact {root}: manifest lists no files")
    present = set(_files_under(root))
    unlisted = sorted(present - set(files))
    if unlisted:
        raise ArtifactError(
            f"artifact {root}: unexpected file(s) not in the manifest: {', '.join(unlisted)}"
        )
    for rel, expected in files.items():
        path = root / rel
        if not path.is_file():
            raise ArtifactError(f"artifact {root}: file {rel} is missing")
        if sha256_file(path) != expected:
            raise ArtifactError(
                f"artifact {root}: sha256 of {rel} does not match the manifest "
                "(corrupt or tampered)"
            )
    return manifest


def _savez(path: Path, arrays: dict[str, np.ndarray]) -> None:
    save: Any = np.savez  # numpy's stub types **kwds as its allow_pickle flag
    save(path, **arrays)


def _load_npz(path: Path, mapped: Collection[str] = ()) -> dict[str, np.ndarray]:
    """Every array of an npz; those named in ``mapped`` memory-mapped where they are stored
    uncompressed (read in full otherwise)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files if key not in mapped}
            rest = [key for key in data.files if key in mapped]
        for key in rest:
            array = _map_member(path, key)
            if array is None:
                with np.load(path, allow_pickle=False) as data:
                    array = data[key]
            arrays[key] = array
        return arrays
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise ArtifactError(f"{path} cannot be read as npz: {exc}") from exc


def _map_member(path: Path, key: str) -> np.ndarray | None:
    """Array ``key`` of an npz memory-mapped read-only where it lies in the file, or None when
    it cannot be (compressed, object dtype, empty)."""
    with zipfile.ZipFile(path) as archive:
        try:
            info = archive.getinfo(f"{key}.npy")
        except KeyError:
            return None
        if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1:
            return None
    with path.open("rb") as handle:
        handle.seek(info.header_offset)
        local = handle.read(30)
        if len(local) != 30 or local[:4] != b"PK\x03\x04":
            return None
        name_len = int.from_bytes(local[26:28], "little")
        extra_len = int.from_bytes(local[28:30], "little")
        handle.seek(info.header_offset + 30 + name_len + extra_len)
        version = np.lib.format.read_magic(handle)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(handle)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(handle)
        else:
            return None
        offset = handle.tell()
    if dtype.hasobject or int(np.prod(shape)) == 0:
        return None
    array: np.ndarray = np.memmap(
        path, dtype=dtype, mode="r", offset=offset, shape=shape, order="F" if fortran else "C"
    )
    return array


def release_pages(array: np.ndarray | None) -> None:
    """Drop the resident pages of a memory-mapped array from this process (they are read
    again from the file, or the page cache, when next touched). No-op for other arrays."""
    while array is not None and not isinstance(array, np.memmap):
        base = array.base
        array = base if isinstance(base, np.ndarray) else None
    mapping = getattr(array, "_mmap", None)
    if isinstance(mapping, _mmap.mmap) and hasattr(_mmap, "MADV_DONTNEED"):
        mapping.madvise(_mmap.MADV_DONTNEED)


def sorted_order(values: np.ndarray, what: str = "IDs") -> np.ndarray | None:
    """The order that sorts ``values`` (None when they are already strictly increasing), after
    checking they hold no duplicates. Sorted values are checked a slice at a time, the pages of
    a memory-mapped array dropped after each, so what the check holds does not grow with the
    array (unsorted values are sorted whole: the order is as long as they are)."""
    step = 1 << 16
    n = values.shape[0]
    increasing = True
    for i in range(0, max(n - 1, 0), step):
        increasing = bool(np.all(values[i + 1 : i + step + 1] > values[i : min(i + step, n - 1)]))
        release_pages(values)
        if not increasing:
            break
    order: np.ndarray | None = None
    if not increasing:
        order = np.argsort(values, kind="stable")
        for i in range(0, max(n - 1, 0), step):
            hi = values[order[i + 1 : i + step + 1]]
            lo = values[order[i : i + hi.shape[0]]]
            same = np.flatnonzero(lo == hi)
            if same.size:
                raise ArtifactError(f"duplicate {what}: {', '.join(map(str, hi[same][:5]))}")
    release_pages(values)
    return order


def load_artifact(
    directory: str | Path,
    expected: type[Recommender] | None = None,
    *,
    mmap: Collection[str] = (),
) -> Recommender:
    """Verify and load an artifact; the class comes from the registry unless ``expected``.

    ``mmap`` names arrays (of ``ids.npz`` or ``model.npz``, e.g. ``customer_ids``,
    ``customer_factors``) to memory-map read-only instead of reading into memory: the files are
    hashed all the same, and only the rows used are ever read (see :func:`release_pages`).

    Raises :class:`ArtifactError` for a missing, corrupt, tampered or incompatible artifact,
    including one written by a different algorithm than ``expected``.
    """
    from recommenders.base import FitContext
    from recommenders.dataset import IdMap
    from recommenders.features import FeatureEncoder
    from recommenders.registry import get_algorithm

    root = Path(directory)
    manifest = verify_artifact(root)
    algorithm = manifest.get("algorithm")
    if expected is not None and algorithm != expected.algorithm:
        raise ArtifactError(
            f"artifact {root} holds algorithm {algorithm!r}, expected {expected.algorithm!r}"
        )
    if expected is None:
        try:
            expected = get_algorithm(str(algorithm))
        except UnknownAlgorithmError as exc:
            raise ArtifactError(f"artifact {root}: {exc}") from exc
    layout = manifest.get("layout_version", 1)
    if layout != expected.layout_version:
        raise ArtifactError(
            f"artifact {root} stores {algorithm} layout version {layout!r}; this finrec reads "
            f"layout version {expected.layout_version} (retrain the model)"
        )
    try:
        model = expected(expected.params_model.model_validate(manifest["params"]))
        data = manifest["data"]
        window = data["window"]
        model.context = FitContext(
            fingerprint=data["fingerprint"],
            window=tuple(datetime.fromisoformat(t) for t in window) if window else None,
            customer_encoder=FeatureEncoder.model_validate(manifest["encoders"]["customer"]),
            product_encoder=FeatureEncoder.model_validate(manifest["encoders"]["product"]),
            summary=data.get("summary", {}),
        )
        ids = _load_npz(root / "ids.npz", mmap)
        customers = ids["customer_ids"]
        if isinstance(customers, np.memmap) and customers.dtype.kind == "U":
            sorted_order(customers, "customer IDs")  # the check IdMap would make
            model.customer_ids = IdMap(customers, unique=True)
        else:
            model.customer_ids = IdMap(customers)
        model.product_ids = IdMap(ids["product_ids"])
        model._restore(_load_npz(root / "model.npz", mmap))
        model._load_files(root)
    except ArtifactError:
        raise
    except (KeyError, TypeError, ValueError, ValidationError) as exc:
        raise ArtifactError(
            f"artifact {root} is incompatible with {expected.algorithm}: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    return model
