"""The catalog: locate, write (atomically), read and describe dataset versions.

Layout under the root (a local path or an fsspec URL):

    <root>/<name>/<version>/_manifest.json     committed: the manifest is written last
    <root>/<name>/<version>/<files...>
    <root>/<name>/<version>/parts/<part>/...   partitioned datasets: one folder per part,
                                                each committed on its own (`_part.json`)
    <root>/<name>/.staging-<uuid>/             work in progress, never visible as a version

A writer fills a staging folder and renames it into place only when the block that writes it
ends without an exception, so a killed writer leaves a staging folder (swept by `gc`) and never
a half-written version. `version` is the first 16 hex digits of the key.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

from data_catalog.manifest import (
    MANIFEST_FILE,
    PART_MANIFEST_FILE,
    Manifest,
    compute_key,
    digest_files,
    git_revision,
    list_data_files,
    now,
)
from data_catalog.registry import get_spec

if TYPE_CHECKING:
    import duckdb

    from conf import Settings

STAGING_PREFIX = ".staging-"


class CatalogError(RuntimeError):
    pass


class DatasetWriter:
    """A staging folder for one dataset version (or one part of a partitioned one)."""

    def __init__(self, path: Path, schema: pa.Schema | None) -> None:
        self.path = path
        self.rows = 0
        self.stats: dict[str, Any] = {}
        self.content_digest: str | None = None  # set it for outputs whose bytes vary by run
        self.manifest: Manifest | None = None
        self._schema = schema

    def write_table(
        self, data: pa.Table | Iterable[pa.RecordBatch], filename: str = "part-0.parquet"
    ) -> int:
        """Write a table or a stream of record batches as one zstd Parquet file."""
        target = self.path / filename
        target.parent.mkdir(parents=True, exist_ok=True)
        rows = 0
        if isinstance(data, pa.Table):
            self._check_schema(data.schema)
            pq.write_table(data, target, compression="zstd")
            rows = data.num_rows
        else:
            writer: pq.ParquetWriter | None = None
            try:
                for batch in data:
                    if writer is None:
                        self._check_schema(batch.schema)
                        writer = pq.ParquetWriter(target, batch.schema, compression="zstd")
                    writer.write_batch(batch)
                    rows += batch.num_rows
            finally:
                if writer is not None:
                    writer.close()
            if writer is None and self._schema is not None:
                pq.write_table(self._schema.empty_table(), target, compression="zstd")
        self.rows += rows
        return rows

    def _check_schema(self, schema: pa.Schema) -> None:
        if self._schema is None:
            return
        missing = [f.name for f in self._schema if f.name not in schema.names]
        if missing:
            raise CatalogError(f"table is missing registered columns {missing}; has {schema.names}")


class Catalog:
    def __init__(self, root: str | Path) -> None:
        self.root_url = str(root)
        self.fs, self.root = fsspec.core.url_to_fs(self.root_url)
        self.is_local = isinstance(self.fs, fsspec.implementations.local.LocalFileSystem)
        if self.is_local:
            Path(self.root).mkdir(parents=True, exist_ok=True)

    @classmethod
    def from_settings(cls, settings: Settings) -> Catalog:
        return cls(settings.uri(settings.catalog.root))

    # ---- keys and lookup -------------------------------------------------------------
    @staticmethod
    def key(
        name: str,
        inputs: Sequence[Manifest] = (),
        params: Mapping[str, Any] | None = None,
        code_version: str = "",
    ) -> str:
        return compute_key(name, inputs, dict(params or {}), code_version)

    def locate(self, name: str, version: str) -> str:
        return f"{self.root}/{name}/{version}"

    def path(self, manifest: Manifest) -> Path:
        if not self.is_local:
            raise CatalogError(f"{self.root_url} is not a local catalog; use locate()")
        return Path(self.locate(manifest.name, manifest.version))

    def find(self, name: str, key: str) -> Manifest | None:
        """The committed version of `name` with this key, if any."""
        return self.manifest(name, key[:16], missing_ok=True)

    def manifest(self, name: str, version: str, *, missing_ok: bool = False) -> Manifest | None:
        target = f"{self.locate(name, version)}/{MANIFEST_FILE}"
        try:
            with self.fs.open(target, "r") as fh:
                return Manifest.model_validate_json(fh.read())
        except FileNotFoundError:
            if missing_ok:
                return None
            raise CatalogError(f"no committed version {version!r} of dataset {name!r}") from None

    def versions(self, name: str) -> list[Manifest]:
        pattern = f"{self.root}/{name}/*/{MANIFEST_FILE}"
        out = []
        for path in self.fs.glob(pattern):
            with self.fs.open(path, "r") as fh:
                out.append(Manifest.model_validate_json(fh.read()))
        return sorted(out, key=lambda m: m.created)

    def latest(self, name: str) -> Manifest | None:
        found = self.versions(name)
        return found[-1] if found else None

    def datasets(self) -> list[str]:
        if not self.fs.exists(self.root):
            return []
        names = {
            p.rsplit("/", 1)[-1] for p in self.fs.ls(self.root, detail=False) if self.fs.isdir(p)
        }
        return sorted(n for n in names if self.versions(n))

    # ---- writing ---------------------------------------------------------------------
    @contextlib.contextmanager
    def create(
        self,
        name: str,
        inputs: Sequence[Manifest] = (),
        params: Mapping[str, Any] | None = None,
        code_version: str = "",
    ) -> Iterator[DatasetWriter]:
        """Stage a new version; commit it atomically when the block ends cleanly."""
        params = dict(params or {})
        key = self.key(name, inputs, params, code_version)
        with self._staging(name) as staging:
            writer = DatasetWriter(staging, get_spec(name).schema)
            yield writer
            files = list_data_files(staging)
            manifest = Manifest(
                name=name,
                version=key[:16],
                key=key,
                rows=writer.rows,
                content_digest=writer.content_digest or digest_files(staging, files),
                inputs=[m.ref() for m in inputs],
                params=params,
                code_version=code_version,
                git_revision=git_revision(),
                created=now(),
                stats=writer.stats,
                files=files,
                location=self.locate(name, key[:16]),
            )
            (staging / MANIFEST_FILE).write_text(manifest.to_json(), encoding="utf-8")
            writer.manifest = self._commit(staging, manifest.location) or manifest

    def partitioned(
        self,
        name: str,
        inputs: Sequence[Manifest] = (),
        params: Mapping[str, Any] | None = None,
        code_version: str = "",
    ) -> PartitionedWriter:
        params = dict(params or {})
        return PartitionedWriter(self, name, list(inputs), params, code_version)

    @contextlib.contextmanager
    def _staging(self, name: str) -> Iterator[Path]:
        token = f"{STAGING_PREFIX}{uuid.uuid4().hex}"
        if self.is_local:
            staging = Path(self.root) / name / token
            staging.mkdir(parents=True)
        else:
            staging = Path(tempfile.mkdtemp(prefix="literesearcher-"))
        try:
            yield staging
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _commit(self, staging: Path, final: str) -> Manifest | None:
        """Move a staged folder into place; if another writer won the race, keep theirs."""
        if self.fs.exists(f"{final}/{MANIFEST_FILE}") or self.fs.exists(
            f"{final}/{PART_MANIFEST_FILE}"
        ):
            return self._read_existing(final)
        if self.is_local:
            target = Path(final)
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.exists():  # a partitioned version's folder: move the files in
                for child in staging.iterdir():
                    child.rename(target / child.name)
            else:
                staging.rename(target)
            return None
        remote_staging = f"{final.rsplit('/', 1)[0]}/{STAGING_PREFIX}{uuid.uuid4().hex}"
        self.fs.put(str(staging), remote_staging, recursive=True)
        self.fs.mv(remote_staging, final, recursive=True)
        return None

    def _read_existing(self, final: str) -> Manifest | None:
        path = f"{final}/{MANIFEST_FILE}"
        if not self.fs.exists(path):
            return None
        with self.fs.open(path, "r") as fh:
            return Manifest.model_validate_json(fh.read())

    def remove(self, name: str, version: str) -> bool:
        """Delete a committed version (manifest first, so it stops being found at once);
        False when there is none."""
        location = self.locate(name, version)
        manifest = f"{location}/{MANIFEST_FILE}"
        if not self.fs.exists(manifest):
            return False
        self.fs.rm(manifest)
        self.fs.rm(location, recursive=True)
        return True

    def gc(self, max_age_s: float = 3600.0) -> int:
        """Remove staging folders left by killed writers; returns how many."""
        removed = 0
        cutoff = time.time() - max_age_s
        for path in self.fs.glob(f"{self.root}/**/{STAGING_PREFIX}*"):
            info = self.fs.info(path)
            mtime = info.get("mtime") or info.get("created") or 0
            if float(mtime) < cutoff:
                self.fs.rm(path, recursive=True)
                removed += 1
        return removed

    # ---- reading ---------------------------------------------------------------------
    def read(
        self,
        name: str,
        version: str | None = None,
        *,
        part: str | None = None,
        con: duckdb.DuckDBPyConnection | None = None,
    ) -> duckdb.DuckDBPyRelation:
        """A DuckDB relation over the Parquet files of a version (the latest by default)."""
        import duckdb

        manifest = self._resolve(name, version)
        files = [f for f in manifest.files if f.endswith(".parquet")]
        if part is not None:
            files = [f for f in files if f.startswith(f"parts/{part}/")]
        if not files:
            raise CatalogError(f"dataset {name!r} version {manifest.version} has no Parquet files")
        con = con or duckdb.connect()
        if not self.is_local:
            con.register_filesystem(self.fs)
        base = self.locate(name, manifest.version)
        return con.read_parquet([f"{base}/{f}" for f in files], union_by_name=True)

    def to_arrow(self, name: str, version: str | None = None) -> pa.Table:
        return self.read(name, version).to_arrow_table()

    def _resolve(self, name: str, version: str | None) -> Manifest:
        if version is None:
            found = self.latest(name)
            if found is None:
                raise CatalogError(f"dataset {name!r} has no committed version in {self.root_url}")
            return found
        manifest = self.manifest(name, version)
        assert manifest is not None
        return manifest

    def describe(self) -> list[dict[str, Any]]:
        """One row per committed version (name, version, rows, created, inputs), via DuckDB."""
        import duckdb

        paths = self.fs.glob(f"{self.root}/*/*/{MANIFEST_FILE}")
        if not paths:
            return []
        con = duckdb.connect()
        if not self.is_local:
            con.register_filesystem(self.fs)
        rel = con.sql(
            "SELECT name, version, rows, created, content_digest, inputs, code_version "
            "FROM read_json(?, format='auto', union_by_name=true) ORDER BY name, created",
            params=[list(paths)],
        )
        cols = rel.columns
        return [dict(zip(cols, row, strict=True)) for row in rel.fetchall()]


class PartitionedWriter:
    """A dataset version written part by part (a shard, a batch); resumable after a kill."""

    def __init__(
        self,
        catalog: Catalog,
        name: str,
        inputs: list[Manifest],
        params: dict[str, Any],
        code_version: str,
    ) -> None:
        self.catalog = catalog
        self.name = name
        self.inputs = inputs
        self.params = params
        self.code_version = code_version
        self.key = catalog.key(name, inputs, params, code_version)
        self.version = self.key[:16]
        self.location = catalog.locate(name, self.version)

    @property
    def sealed(self) -> Manifest | None:
        return self.catalog.find(self.name, self.key)

    def done_parts(self) -> set[str]:
        fs = self.catalog.fs
        return {
            p.rstrip("/").rsplit("/", 2)[-2]
            for p in fs.glob(f"{self.location}/parts/*/{PART_MANIFEST_FILE}")
        }

    def part_info(self, part: str) -> dict[str, Any]:
        with self.catalog.fs.open(f"{self.location}/parts/{part}/{PART_MANIFEST_FILE}", "r") as fh:
            info: dict[str, Any] = json.load(fh)
        return info

    @contextlib.contextmanager
    def part(self, part: str) -> Iterator[DatasetWriter]:
        if "/" in part or part.startswith("."):
            raise CatalogError(f"invalid part name {part!r}")
        with self.catalog._staging(self.name) as staging:
            writer = DatasetWriter(staging, get_spec(self.name).schema)
            yield writer
            files = list_data_files(staging)
            info = {
                "part": part,
                "rows": writer.rows,
                "stats": writer.stats,
                "digest": writer.content_digest or digest_files(staging, files),
                "files": files,
                "created": now().isoformat(),
            }
            (staging / PART_MANIFEST_FILE).write_text(json.dumps(info), encoding="utf-8")
            self.catalog._commit(staging, f"{self.location}/parts/{part}")

    def seal(self, stats: Mapping[str, Any] | None = None) -> Manifest:
        """Write the version's manifest over all committed parts (idempotent)."""
        existing = self.sealed
        if existing is not None:
            return existing
        parts = sorted(self.done_parts())
        infos = [self.part_info(p) for p in parts]
        merged: dict[str, Any] = {}
        for info in infos:
            for k, v in info["stats"].items():
                if isinstance(v, int | float) and isinstance(merged.get(k, 0), int | float):
                    merged[k] = merged.get(k, 0) + v
        merged.update(stats or {})
        digest = compute_key(
            self.name, [], {"parts": [(i["part"], i["digest"]) for i in infos]}, ""
        )
        manifest = Manifest(
            name=self.name,
            version=self.version,
            key=self.key,
            rows=sum(int(i["rows"]) for i in infos),
            content_digest=digest,
            inputs=[m.ref() for m in self.inputs],
            params=self.params,
            code_version=self.code_version,
            git_revision=git_revision(),
            created=now(),
            stats=merged,
            files=[f"parts/{i['part']}/{f}" for i in infos for f in i["files"]],
            parts=parts,
            location=self.location,
        )
        with self.catalog.fs.open(f"{self.location}/{MANIFEST_FILE}.tmp", "w") as fh:
            fh.write(manifest.to_json())
        self.catalog.fs.mv(
            f"{self.location}/{MANIFEST_FILE}.tmp", f"{self.location}/{MANIFEST_FILE}"
        )
        return manifest
