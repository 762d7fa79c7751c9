"""The ``ingestion`` pipeline: raw measurements → validated, typed tables."""

from kedro.pipeline import Pipeline, node, pipeline

from power_modelling.pipelines.ingestion.nodes import build_report, ingest_models, read_idle_power


def create_pipeline(**kwargs) -> Pipeline:
    """Raw folder (``raw_dataset``) → 02_intermediate partitions + data-quality section."""
    return pipeline(
        [
            node(
                read_idle_power,
                inputs=["raw_measurement_files", "params:raw_dataset"],
                outputs="idle_power",
                name="read_idle_power",
            ),
            node(
                ingest_models,
                inputs=["raw_measurement_files", "params:raw_dataset", "params:ingestion"],
                outputs=[
                    "power_samples",
                    "layer_windows",
                    "layer_descriptions",
                    "run_metadata",
                    "ingestion_model_reports",
                ],
                name="ingest_models",
            ),
            node(
                build_report,
                inputs=["ingestion_model_reports", "idle_power"],
                outputs="ingestion_data_quality",
                name="build_ingestion_report",
            ),
        ]
    )
