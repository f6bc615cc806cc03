"""DVC stage `report`: see dvc.yaml and huescale.pipeline.stages.report."""

from huescale.pipeline.stages import report
from huescale.pipeline.stages.runner import main

if __name__ == "__main__":
    main("report", report.run)
