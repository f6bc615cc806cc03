"""DVC stage `download`: see dvc.yaml and huescale.pipeline.stages.download."""

from huescale.pipeline.stages import download
from huescale.pipeline.stages.runner import main

if __name__ == "__main__":
    main("download", download.run)
