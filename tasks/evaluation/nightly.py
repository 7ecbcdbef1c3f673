"""Which checkpoint the nightly evaluation should run, if any.

The candidate is the newest version of the MLflow registered model (`mlflow.registered_model`)
when it has versions: the curriculum flow registers each finished stage checkpoint there with
the tags `catalog_version` (a `checkpoints` catalog version), `curriculum` and `stage`.
Without registered versions it is the newest committed `checkpoints` manifest. Either way it
is skipped when an `eval_reports` version already lists that checkpoint's content digest
among its inputs, so a night with no new checkpoint does nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion

from data_catalog import Catalog, Manifest

CHECKPOINTS = "checkpoints"
EVAL_REPORTS = "eval_reports"
CATALOG_VERSION_TAG = "catalog_version"
# Set on a model version once evaluated, so the registry UI shows its report and run.
EVAL_REPORT_TAG = "eval_report"
EVAL_RUN_TAG = "eval_run_id"


@dataclass(frozen=True)
class NightlyDecision:
    checkpoint: Manifest | None
    skip_reason: str | None  # None: evaluate `checkpoint`
    report: Manifest | None = None  # the report that already covers it
    source: str = "catalog"  # where the candidate came from: "registry" or "catalog"
    model_version: ModelVersion | None = None  # the registry version, when from the registry

    @property
    def curriculum(self) -> str:
        return self._label("curriculum")

    @property
    def stage(self) -> str:
        return self._label("stage")

    def _label(self, key: str) -> str:
        """The registry version's tag, else the checkpoint manifest's parameter."""
        if self.model_version is not None and self.model_version.tags.get(key):
            return self.model_version.tags[key]
        return str(self.checkpoint.params.get(key, "")) if self.checkpoint else ""


def evaluated_digests(catalog: Catalog) -> dict[str, Manifest]:
    """Checkpoint content digest -> the newest eval report that used it."""
    out: dict[str, Manifest] = {}
    for report in catalog.versions(EVAL_REPORTS):  # oldest first: newer reports overwrite
        for ref in report.inputs:
            if ref.name == CHECKPOINTS:
                out[ref.digest] = report
    return out


def newest_model_version(client: MlflowClient, model: str) -> ModelVersion | None:
    """The highest version number of `model`; None when it is not registered or has none."""
    found = client.search_model_versions(
        f"name = '{model}'", max_results=1, order_by=["version_number DESC"]
    )
    return found[0] if found else None


def registry_checkpoint(catalog: Catalog, version: ModelVersion) -> Manifest:
    """The `checkpoints` manifest a registry version points at (its `catalog_version` tag)."""
    label = f"registered model {version.name!r} version {version.version}"
    catalog_version = version.tags.get(CATALOG_VERSION_TAG)
    if not catalog_version:
        raise LookupError(
            f"{label} has no {CATALOG_VERSION_TAG!r} tag; the nightly eval needs it to find the "
            f"checkpoint in the catalog (tag it with the `{CHECKPOINTS}` version it was made from)"
        )
    manifest = catalog.manifest(CHECKPOINTS, catalog_version, missing_ok=True)
    if manifest is None:
        raise LookupError(
            f"{label} names {CHECKPOINTS} version {catalog_version!r}, which the catalog at "
            f"{catalog.root_url} does not hold"
        )
    return manifest


def decide(
    catalog: Catalog, client: MlflowClient | None = None, model: str | None = None
) -> NightlyDecision:
    """The registry (when `client` and `model` are given and it has versions), else the
    catalog, names the candidate; an already evaluated candidate is skipped."""
    version = newest_model_version(client, model) if client is not None and model else None
    if version is not None:
        newest: Manifest | None = registry_checkpoint(catalog, version)
        source, what = "registry", f"{model} version {version.version} (checkpoint {{}})"
    else:
        newest = catalog.latest(CHECKPOINTS)
        source, what = "catalog", "checkpoint {}"
    if newest is None:
        return NightlyDecision(None, "no checkpoint in the registry or the catalog yet")
    report = evaluated_digests(catalog).get(newest.content_digest)
    if report is not None:
        reason = f"{what.format(newest.version)} already evaluated by {report.version}"
        return NightlyDecision(newest, reason, report, source, version)
    return NightlyDecision(newest, None, None, source, version)
