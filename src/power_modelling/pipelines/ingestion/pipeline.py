"""The ``ingestion`` pipeline: raw measurements → validated, typed tables."""

from kedro.pipeline import Node, Pipeline

from power_modelling.pipelines.ingestion.nodes import (
    build_report,
    ingest_models,
    read_device,
    read_idle_power,
    record_data_version,
)

_RAW = ["raw_measurement_files", "params:raw_dataset"]


def create_pipeline(**kwargs) -> Pipeline:
    """Raw folder (``raw_dataset``) → 02_intermediate partitions + data-quality section.

    ``ingest_models`` checks every model and returns one loader per usable model and table,
    which Kedro calls one at a time while saving: each raw file is parsed once, the windows
    first (the output order), and each model's report partition is saved last from what the
    parsers found.
    """
    return Pipeline(
        [
            Node(
                read_idle_power,
                inputs=[*_RAW, "params:ingestion"],
                outputs="idle_power",
                name="read_idle_power",
            ),
            Node(read_device, inputs=_RAW, outputs="device_info", name="read_device"),
            Node(
                ingest_models,
                inputs=[*_RAW, "params:ingestion", "params:parallel"],
                outputs=[
                    "layer_windows",
                    "power_samples",
                    "layer_descriptions",
                    "run_metadata",
                    "ingestion_model_reports",
                ],
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
