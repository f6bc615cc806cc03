"""The pipeline: stages, orchestration, ablations and the champion, on top of every other layer.

- ``stages``: one module per DVC stage (``run(cfg) -> dict``), ``STAGES`` and the output paths;
  ``stages.runner`` runs a stage in its MLflow run.
- ``flow``: the Prefect flow that runs the stages as tasks and decides the champion.
- ``commands``: git and DVC as subprocesses; ablation rows as DVC experiments.
- ``summary``: the flow's Markdown summary of a run's metrics.
- ``grid``: the ablation grid file; ``ablation``: training and scoring its rows.
- ``champion``: the registered MLflow colorizer (current, register, decide, load).

May import: anything in huescale except ``cli``.
"""
