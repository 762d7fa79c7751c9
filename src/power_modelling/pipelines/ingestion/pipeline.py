"""The ``ingestion`` pipeline: raw measurements → validated, typed tables."""

from kedro.pipeline import Node, Pipeline

from power_modelling.pipelines.ingestion.nodes import (
    build_report,
    ingest_models,
    read_idle_power,
    record_data_version,
    report_models,
)

_RAW = ["raw_measurement_files", "params:raw_dataset"]


def create_pipeline(**kwargs) -> Pipeline:
    """Raw folder (``raw_dataset``) → 02_intermediate partitions + data-quality section.

    ``report_models`` checks and parses the models one at a time (and fails when none is
    usable); ``ingest_models`` then returns one loader per usable model and table, which
    Kedro calls one at a time while saving the partitions.
    """
    return Pipeline(
        [
            Node(
                read_idle_power,
                inputs=_RAW,
                outputs="idle_power",
                name="read_idle_power",
            ),
            Node(
                report_models,
                inputs=[*_RAW, "params:ingestion"],
                outputs="ingestion_model_reports",
                name="report_models",
            ),
            Node(
                ingest_models,
                inputs=[*_RAW, "params:ingestion", "ingestion_model_reports"],
                outputs=["power_samples", "layer_windows", "layer_descriptions", "run_metadata"],
                name="ingest_models",
            ),
            Node(
                record_data_version,
                inputs=["raw_data_version", "params:raw_dataset"],
                outputs="ingested_data_version",
                name="record_data_version",
            ),
            Node(
                build_report,
                inputs=["ingestion_model_reports", "idle_power"],
                outputs="ingestion_data_quality",
                name="build_report",
            ),
        ]
    )
