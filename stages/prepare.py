"""DVC stage `prepare`: see dvc.yaml and huescale.stages.prepare."""

from huescale.stages import main

if __name__ == "__main__":
    main("prepare")
