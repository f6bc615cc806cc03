"""DVC stage `ablate_row`: see dvc.yaml and huescale.pipeline.stages.ablate_row."""

from huescale.pipeline.stages import ablate_row
from huescale.pipeline.stages.runner import main

if __name__ == "__main__":
    main("ablate_row", ablate_row.run, tracked=False)
