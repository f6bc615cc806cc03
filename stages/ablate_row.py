"""DVC stage `ablate_row`: one row of an ablation grid (see dvc.yaml and huescale.ablation.run_row_stage)."""

from huescale.ablation import stage_main

if __name__ == "__main__":
    stage_main()
