"""The pipeline: the DVC stages, the Prefect flow, ablation grids, the MLflow champion."""
