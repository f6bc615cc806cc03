"""The Trainer on a real pair store: losses go down, resume reproduces an uninterrupted run."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from huescale.config import Config, DataConfig, ModelSpec
from huescale.data.dataset import PairDataset
from huescale.data.source_base import FolderSource
from huescale.data.sources import list_images
from huescale.data.store import PairStore
from huescale.data.store_build import build_pair_store
from huescale.training import checkpoint, recipe
from huescale.training.tasks import COLORIZATION
from huescale.training.trainer import Trainer


@pytest.fixture(scope="module")
def store(shared_data, tmp_path_factory) -> PairStore:
    out = tmp_path_factory.mktemp("store") / "pairs"
    refs = list_images(FolderSource([shared_data / "coco128" / "train2017"]))
    cfg = DataConfig(source="folder", folders=["x"], n_images=60, workers=1)
    build_pair_store(refs, cfg, out, progress=False)
    return PairStore(out)


def tiny_config(adversarial: bool = False, **section) -> Config:
    """The params of a tiny colorizer run in fp32: U-Net and PatchGAN with 8 base channels; ``section`` sets keys
    of ``train`` (adversarial) or ``pretrain.colorizer``."""
    cfg = Config()
    cfg.runtime.amp, cfg.runtime.channels_last = "off", False  # fp32: the exact-equality tests compare floats
    cfg.model.colorizer = ModelSpec("unet", {"depth": 3, "base_channels": 8})
    cfg.model.discriminator = ModelSpec("patchgan", {"base_channels": 8, "n_layers": 3})
    target = cfg.train if adversarial else cfg.pretrain.colorizer
    for k, v in section.items():
        setattr(target, k, v)
    return cfg


def _trainer(tmp_path, adversarial=False, name="run", loop=None, **section):
    """A Trainer of the one recipe on a tiny config; ``loop`` replaces PhaseConfig fields (checkpoint_every...)."""
    r = recipe.build(tiny_config(adversarial, **section), "colorizer", "adversarial" if adversarial else "pretrain")
    if loop:
        r.phase = dataclasses.replace(r.phase, **loop)
    return Trainer(r, tmp_path / f"{name}_state.pt", tmp_path / f"{name}_best.pt", progress=False)


def _env_with_tests() -> dict:
    """The environment for a script that imports this module's helpers (tests/ on PYTHONPATH)."""
    import os
    from pathlib import Path

    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}


def test_store_layout(store):
    m = store.manifest
    assert m["usable"] == 60 and sum(c["64"] for c in m["counts"].values()) == 60
    lr = PairDataset(store, "train", "256")[0]
    assert lr[0].shape == (3, 64, 64) and lr[1].shape == (3, 256, 256) and lr[0].dtype == torch.uint8


def test_pretrain_and_adversarial_lower_val_l1(store, tmp_path):
    train, val = PairDataset(store, "train", "64"), PairDataset(store, "val", "64")
    hist = _trainer(tmp_path, epochs=3, batch_size=8, lr=2e-3).fit(train, val)
    assert hist[-1].values["val_l1"] < hist[0].values["val_l1"]
    G, ck = checkpoint.load_model(tmp_path / "run_best.pt")
    assert ck["val_l1"] == min(r.values["val_l1"] for r in hist)
    hist = _trainer(tmp_path, True, "adv", epochs=2, batch_size=8).fit(train, val)
    assert {"loss_D", "loss_G_GAN", "loss_G_L1"} <= set(hist[0].values)
    assert all(torch.isfinite(torch.tensor(list(r.values.values()))).all() for r in hist)


def test_resume_after_interruption_gives_identical_weights(store, tmp_path):
    train, val = PairDataset(store, "train", "64"), PairDataset(store, "val", "64")
    kw = dict(epochs=2, batch_size=8, lr=1e-3, loop={"checkpoint_every": 2})
    full = _trainer(tmp_path, True, "full", **kw)
    full.fit(train, val)
    # the same run, stopped after 3 steps of epoch 1 (as if killed), then resumed
    part = _trainer(tmp_path, True, "part", **kw)
    orig = part.train_step
    calls = {"n": 0}

    def dying_step(*args):
        if calls["n"] == 3:
            raise KeyboardInterrupt
        calls["n"] += 1
        return orig(*args)

    part.train_step = dying_step
    with pytest.raises(KeyboardInterrupt):
        part.fit(train, val)
    saved = checkpoint.load(tmp_path / "part_state.pt")
    assert (saved["epoch"], saved["step"], saved["batch_in_epoch"]) == (0, 2, 2)  # the mid-epoch state at step 2
    resumed = _trainer(tmp_path, True, "part", **kw)
    steps = _count_steps(resumed)
    resumed.fit(train, val)
    assert resumed.step == full.step and resumed.epoch == full.epoch
    # work was not redone: the resumed run continued from step 2 and ran only the steps after it
    assert resumed.resumed_from == (0, 2) and resumed.resumed_file == tmp_path / "part_state.pt"
    assert steps["n"] == full.step - 2 and resumed.fresh_start_reason is None
    for a, b in zip(full.netG.state_dict().values(), resumed.netG.state_dict().values()):
        assert torch.equal(a, b)


def _count_steps(trainer: Trainer) -> dict[str, int]:
    """Count the optimisation steps ``trainer`` executes from now on (``{"n": ...}``, updated as it trains)."""
    steps = {"n": 0}
    orig = trainer.train_step

    def counted(*args, **kwargs):
        steps["n"] += 1
        return orig(*args, **kwargs)

    trainer.train_step = counted
    return steps


def test_corrupt_checkpoint_is_named(tmp_path):
    p = tmp_path / "bad.pt"
    p.write_bytes(b"not a checkpoint")
    with pytest.raises(checkpoint.CheckpointError, match="bad.pt"):
        checkpoint.load(p)


KILL_SCRIPT = """
import dataclasses, sys, time, torch
from huescale.training import recipe
from huescale.data.dataset import PairDataset
from huescale.data.store import PairStore
from huescale.training.trainer import Trainer
from test_train import tiny_config
store, out = PairStore(sys.argv[1]), sys.argv[2]
r = recipe.build(tiny_config(True, epochs=2, batch_size=8, lr=1e-3), "colorizer", "adversarial")
r.phase = dataclasses.replace(r.phase, checkpoint_every=2)
t = Trainer(r, out + "/state.pt", out + "/best.pt", progress=False)
step = t.train_step
ran = [0]
def slow_step(*args):
    time.sleep(float(sys.argv[3]))
    ran[0] += 1
    return step(*args)
t.train_step = slow_step
t.fit(PairDataset(store, "train", "64"), PairDataset(store, "val", "64"))
torch.save({"netG": t.netG.state_dict(), "step": t.step, "epoch": t.epoch, "steps_run": ran[0],
            "resumed_from": t.resumed_from}, out + "/final.pt")
"""


def test_kill_9_mid_epoch_then_resume_matches_uninterrupted_run(store, tmp_path):
    """A SIGKILL mid-epoch loses nothing: the resumed run ends with the same step count and weights."""
    import signal
    import subprocess
    import sys
    import time

    script = tmp_path / "run.py"
    script.write_text(KILL_SCRIPT)
    ref, killed = tmp_path / "ref", tmp_path / "killed"
    ref.mkdir()
    killed.mkdir()
    env = _env_with_tests()
    subprocess.run([sys.executable, str(script), str(store.root), str(ref), "0"], check=True, timeout=600, env=env)
    proc = subprocess.Popen([sys.executable, str(script), str(store.root), str(killed), "0.3"], env=env)
    deadline = time.time() + 300
    while time.time() < deadline:  # wait for a mid-epoch checkpoint (step 2 of epoch 1), then SIGKILL
        st = killed / "state.pt"
        if st.is_file():
            try:
                s = checkpoint.load(st)
            except checkpoint.CheckpointError:
                continue
            if s["batch_in_epoch"] > 0:
                break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert not (killed / "final.pt").exists(), "the run finished before it could be killed"
    at_kill = checkpoint.load(killed / "state.pt")  # the last state the killed run wrote
    subprocess.run([sys.executable, str(script), str(store.root), str(killed), "0"], check=True, timeout=600, env=env)
    a, b = torch.load(ref / "final.pt"), torch.load(killed / "final.pt")
    assert (a["step"], a["epoch"]) == (b["step"], b["epoch"])
    # the restart did not redo the killed run's work: it continued from its last state and ran only the rest
    assert a["resumed_from"] is None and a["steps_run"] == a["step"]
    assert b["resumed_from"] == (at_kill["epoch"], at_kill["step"]) and at_kill["step"] > 0
    assert b["steps_run"] == b["step"] - at_kill["step"] < a["steps_run"]
    for k in a["netG"]:
        assert torch.equal(a["netG"][k], b["netG"][k]), k
    best_a, best_b = checkpoint.load(ref / "best.pt"), checkpoint.load(killed / "best.pt")
    assert best_a["val_l1"] == best_b["val_l1"]


def test_resume_after_outputs_were_removed_writes_the_best_weights(store, tmp_path):
    """DVC deletes a stage's outs before re-running it: the best weights come back from the state."""
    train, val = PairDataset(store, "train", "64"), PairDataset(store, "val", "64")
    kw = dict(epochs=2, batch_size=8, lr=1e-3, max_batches=3)
    t = _trainer(tmp_path, **kw)
    t.fit(train, val)
    best = checkpoint.load(tmp_path / "run_best.pt")
    (tmp_path / "run_best.pt").unlink()
    again_t = _trainer(tmp_path, **kw)
    steps = _count_steps(again_t)
    again_t.fit(train, val)  # nothing left to train: resumes at the end
    assert steps["n"] == 0 and again_t.resumed_from == (t.epoch, t.step) == (2, 6)  # no step redone
    again = checkpoint.load(tmp_path / "run_best.pt")
    assert again["val_l1"] == best["val_l1"]
    for k in best["state_dict"]:
        assert torch.equal(best["state_dict"][k], again["state_dict"][k]), k


def test_corrupt_state_falls_back_to_previous_good_one(store, tmp_path):
    train, val = PairDataset(store, "train", "64"), PairDataset(store, "val", "64")
    kw = dict(batch_size=8, lr=1e-3, max_batches=3, loop={"checkpoint_every": 2})
    _trainer(tmp_path, epochs=2, **kw).fit(train, val)
    state = tmp_path / "run_state.pt"
    assert checkpoint.previous(state).is_file()
    state.write_bytes(state.read_bytes()[:100])  # truncated, as by a crash of the disk
    t = _trainer(tmp_path, epochs=3, **kw)
    prev_step = checkpoint.load(checkpoint.previous(state))["step"]
    t._try_resume()
    assert t.step == prev_step > 0  # resumed from run_state.prev.pt, not from scratch
    assert t.resumed_file == checkpoint.previous(state) and t.resumed_from == (t.epoch, prev_step)


def test_nan_loss_stops_with_clear_message_and_keeps_checkpoint(store, tmp_path):
    from huescale.training.trainer import TrainingDiverged

    train, val = PairDataset(store, "train", "64"), PairDataset(store, "val", "64")
    kw = dict(batch_size=8, lr=1e-3, max_batches=3)
    t = _trainer(tmp_path, epochs=2, **kw)
    t.fit(train, val)
    good = (tmp_path / "run_state.pt").read_bytes()
    t2 = _trainer(tmp_path, epochs=3, **kw)
    t2.task = dataclasses.replace(COLORIZATION, prepare=lambda b: tuple(v * float("nan")
                                                                        for v in COLORIZATION.prepare(b)))
    with pytest.raises(TrainingDiverged, match="loss_G_L1 became nan"):
        t2.fit(train, val)
    assert (tmp_path / "run_state.pt").read_bytes() == good  # the last good checkpoint is kept as it was


def test_same_seed_same_data_gives_identical_metrics(store, tmp_path):
    train, val = PairDataset(store, "train", "64"), PairDataset(store, "val", "64")
    kw = dict(epochs=1, batch_size=8, lr=1e-3, max_batches=4)
    h1 = _trainer(tmp_path, True, "a", **kw).fit(train, val)
    h2 = _trainer(tmp_path, True, "b", **kw).fit(train, val)
    assert h1[-1].values == h2[-1].values


DDP_SCRIPT = """
import sys, torch
from huescale.training import distributed, recipe
from huescale.data.dataset import PairDataset
from huescale.data.store import PairStore
from huescale.training.trainer import Trainer
from test_train import tiny_config
device = distributed.init_from_env(torch.device("cpu"))
torch.set_num_threads(1)
store, out, kind = PairStore(sys.argv[1]), sys.argv[2], sys.argv[3]
if kind == "espcn":  # no BatchNorm: DDP must reproduce one process up to float summation order
    cfg = tiny_config()
    cfg.pretrain.upscaler.epochs, cfg.pretrain.upscaler.batch_size, cfg.pretrain.upscaler.max_batches = 1, 8, 4
    r, tier = recipe.build(cfg, "upscaler", "pretrain"), "256"
else:
    r, tier = recipe.build(tiny_config(True, epochs=1, batch_size=8, lr=1e-3, max_batches=4), "colorizer",
                           "adversarial"), "64"
t = Trainer(r, out + "/state.pt", out + "/best.pt", progress=False)
hist = t.fit(PairDataset(store, "train", tier), PairDataset(store, "val", tier))
rank, world = distributed.world()
torch.save({"netG": t.netG.state_dict(), "val_l1": hist[-1].values["val_l1"], "step": t.step},
           f"{out}/final_{world}_{rank}.pt")
"""


@pytest.mark.parametrize("kind", ["espcn", "gan"])
def test_ddp_two_gloo_processes_follow_one_process(store, tmp_path, kind):
    """torchrun with 2 CPU processes (gloo) at global batch 8 = 1 process at batch 8.

    Each rank takes half of every global batch and DDP averages the gradients.
    Without BatchNorm (ESPCN) the weights match one process to float precision;
    with it (U-Net + PatchGAN GAN step) each rank normalises its 4 images on
    their own, so only the validation loss is compared, within 5 %.
    """
    import subprocess
    import sys
    from pathlib import Path

    script = tmp_path / "ddp.py"
    script.write_text(DDP_SCRIPT)
    torchrun = str(Path(sys.executable).parent / "torchrun")
    single, multi = tmp_path / "single", tmp_path / "multi"  # separate folders: no resuming from each other
    single.mkdir()
    multi.mkdir()
    env = _env_with_tests()
    subprocess.run([sys.executable, str(script), str(store.root), str(single), kind], check=True, timeout=300, env=env)
    subprocess.run([torchrun, "--standalone", "--nproc_per_node=2", str(script), str(store.root), str(multi), kind],
                   check=True, timeout=300, env=env)
    one = torch.load(single / "final_1_0.pt")
    r0, r1 = torch.load(multi / "final_2_0.pt"), torch.load(multi / "final_2_1.pt")
    assert one["step"] == r0["step"] == r1["step"] == 4
    for k in r0["netG"]:  # the ranks hold identical weights (BN running stats are per rank; rank 0's are saved)
        if "running_" not in k and "num_batches" not in k:
            assert torch.equal(r0["netG"][k], r1["netG"][k]), k
    if kind == "espcn":
        for k in one["netG"]:
            assert torch.allclose(one["netG"][k], r0["netG"][k], atol=1e-5, rtol=1e-4), k
        assert r0["val_l1"] == pytest.approx(one["val_l1"], rel=1e-4)
    else:
        assert r0["val_l1"] == pytest.approx(one["val_l1"], rel=0.05)


def test_read_only_output_gives_a_clear_error_and_keeps_inputs(store, tmp_path):
    """/proc is a real read-only file system: the checkpoint writer names the file and what to do."""
    before = (store.root / "manifest.json").read_bytes()
    with pytest.raises(checkpoint.CheckpointError, match="cannot write checkpoint /proc/huescale/state.pt"):
        checkpoint.save_atomic({"x": torch.zeros(1)}, "/proc/huescale/state.pt")
    assert (store.root / "manifest.json").read_bytes() == before


def test_persistent_loader_workers_give_the_same_run(store, tmp_path):
    train, val = PairDataset(store, "train", "64"), PairDataset(store, "val", "64")
    kw = dict(epochs=2, batch_size=8, lr=1e-3, max_batches=3)
    h0 = _trainer(tmp_path, name="w0", **kw).fit(train, val)
    h2 = _trainer(tmp_path, name="w2", loop={"num_workers": 2}, **kw).fit(train, val)
    assert [r.values for r in h0] == [r.values for r in h2]


def test_discriminator_collapse_is_flagged(store, tmp_path):
    train, val = PairDataset(store, "train", "64"), PairDataset(store, "val", "64")
    kw = dict(epochs=1, batch_size=8, lr=1e-3, max_batches=3, collapse_steps=2)
    hist = _trainer(tmp_path, True, collapse_threshold=1e9, **kw).fit(train, val)  # any loss_D counts as collapsed
    assert hist[-1].values["d_collapse"] == 1.0
    assert _trainer(tmp_path, True, "n", collapse_threshold=1e-3, **kw).fit(train, val)[-1].values["d_collapse"] == 0.0


def test_bf16_autocast_on_cpu_trains_like_fp32(store, tmp_path):
    """runtime.amp auto -> bf16 autocast where the CPU has AMX/AVX512-BF16: the same run's losses and validation L1
    stay within a few percent of fp32 (bf16 keeps 8 bits of mantissa), and the weights stay float32."""
    from huescale.training.distributed import bf16_supported

    if not bf16_supported(torch.device("cpu")):
        pytest.skip("this CPU has neither AMX nor AVX512-BF16: runtime.amp auto trains in fp32 here")
    train, val = PairDataset(store, "train", "64"), PairDataset(store, "val", "64")
    kw = dict(epochs=2, batch_size=8, lr=1e-3, max_batches=6)
    fp32 = _trainer(tmp_path, name="fp32", **kw)
    cfg = tiny_config(**kw)
    cfg.runtime.amp = "auto"
    r = recipe.build(cfg, "colorizer", "pretrain")
    assert r.phase.bf16 and not fp32.amp
    bf16 = Trainer(r, tmp_path / "b_state.pt", tmp_path / "b_best.pt", progress=False)
    h32, h16 = fp32.fit(train, val), bf16.fit(train, val)
    assert all(p.dtype == torch.float32 for p in bf16.netG.parameters())
    for a, b in zip(h32, h16):
        assert b.values["val_l1"] == pytest.approx(a.values["val_l1"], rel=0.05)
        assert b.values["loss_G_L1"] == pytest.approx(a.values["loss_G_L1"], rel=0.05)
    assert h16[-1].values["val_l1"] < h16[0].values["val_l1"] * 1.05  # it learns, as fp32 does

# -- issue 13, item 9: resume is reported, and exact for models with dropout -------------------------------

def _dying(trainer: Trainer, after: int) -> Trainer:
    """Make ``trainer`` raise KeyboardInterrupt (as if killed) at its step number ``after`` (0-based)."""
    orig, calls = trainer.train_step, {"n": 0}

    def step(x, y, extra=None):
        if calls["n"] == after:
            raise KeyboardInterrupt
        calls["n"] += 1
        return orig(x, y, extra)

    trainer.train_step = step
    return trainer


def test_resumed_run_reports_the_saved_epoch_and_step(store, tmp_path, caplog):
    """The second run of an interrupted phase starts at the saved step (not 0) and says so in the log."""
    import logging

    train, val = PairDataset(store, "train", "64"), PairDataset(store, "val", "64")
    kw = dict(epochs=2, batch_size=8, lr=1e-3, loop={"checkpoint_every": 2})
    with pytest.raises(KeyboardInterrupt):
        _dying(_trainer(tmp_path, **kw), 3).fit(train, val)  # steps 0-2 done, state saved after step 2
    assert checkpoint.load(tmp_path / "run_state.pt")["step"] == 2
    resumed = _trainer(tmp_path, **kw)
    with caplog.at_level(logging.INFO, logger="huescale.training.trainer"):
        resumed.fit(train, val)
    assert resumed.resumed_from == (0, 2)
    assert resumed.fresh_start_reason is None
    assert any("resumed" in r.getMessage() and "run_state.pt" in r.getMessage() and "step 2" in r.getMessage()
               for r in caplog.records), caplog.text
    fresh = _trainer(tmp_path, name="other", **kw)
    fresh.fit(train, val)
    assert fresh.resumed_from is None and fresh.fresh_start_reason is None  # nothing to resume: no warning


def test_state_of_other_settings_is_a_loud_fresh_start_naming_the_file_and_setting(store, tmp_path, caplog):
    import logging

    train, val = PairDataset(store, "train", "64"), PairDataset(store, "val", "64")
    kw = dict(epochs=1, batch_size=8, max_batches=2)
    _trainer(tmp_path, lr=1e-3, **kw).fit(train, val)
    other = _trainer(tmp_path, lr=2e-3, **kw)
    with caplog.at_level(logging.WARNING, logger="huescale.training.trainer"):
        other.fit(train, val)
    assert other.resumed_from is None and other.step == 2  # trained from scratch ...
    assert "run_state.pt" in other.fresh_start_reason and "lr" in other.fresh_start_reason  # ... and says why
    warn = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert warn and "run_state.pt" in warn[0].getMessage() and "lr" in warn[0].getMessage(), caplog.text


def test_unreadable_state_is_a_loud_fresh_start(store, tmp_path, caplog):
    import logging

    train, val = PairDataset(store, "train", "64"), PairDataset(store, "val", "64")
    (tmp_path / "run_state.pt").write_bytes(b"garbage, not a checkpoint")
    t = _trainer(tmp_path, epochs=1, batch_size=8, max_batches=2)
    with caplog.at_level(logging.WARNING, logger="huescale.training.trainer"):
        t.fit(train, val)
    assert t.resumed_from is None and "run_state.pt" in t.fresh_start_reason
    assert "corrupt or unreadable" in t.fresh_start_reason
    assert any(r.levelno == logging.WARNING and "run_state.pt" in r.getMessage() for r in caplog.records)


def test_fresh_start_and_resume_are_tagged_on_the_mlflow_stage_run(store, tmp_path):
    """recipe.run_phase tags the active MLflow run ``resume.<phase>``: where it resumed, or why it started afresh."""
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    mlflow.set_experiment("resume-tags")  # not the experiment an earlier test made active in this process
    try:
        state = tmp_path / "state.pt"
        state.write_bytes(b"garbage")
        cfg = tiny_config(epochs=1, batch_size=8, max_batches=2)
        with mlflow.start_run() as run:
            recipe.run_phase(recipe.build(cfg, "colorizer", "pretrain"), store, "pretrain_colorizer",
                             tmp_path / "best.pt", tmp_path / "h.csv", state, progress=False)
        tag = mlflow.get_run(run.info.run_id).data.tags["resume.pretrain_colorizer"]
        assert tag.startswith("started afresh: ") and "state.pt" in tag and "corrupt" in tag, tag
        # a killed run's state (saved after step 2) is resumed by the next run_phase, and tagged so
        r = recipe.build(tiny_config(epochs=1, batch_size=8), "colorizer", "pretrain")
        r.phase = dataclasses.replace(r.phase, checkpoint_every=2)
        t = _dying(Trainer(r, state, tmp_path / "best.pt", progress=False), 3)
        with pytest.raises(KeyboardInterrupt):
            t.fit(PairDataset(store, "train", "64"), PairDataset(store, "val", "64"))
        r = recipe.build(tiny_config(epochs=1, batch_size=8), "colorizer", "pretrain")
        r.phase = dataclasses.replace(r.phase, checkpoint_every=2)
        with mlflow.start_run() as run:
            recipe.run_phase(r, store, "pretrain_colorizer", tmp_path / "best.pt", tmp_path / "h.csv", state,
                             progress=False)
        tag = mlflow.get_run(run.info.run_id).data.tags["resume.pretrain_colorizer"]
        assert tag.startswith("resumed at epoch 0, step 2 from ") and "state.pt" in tag, tag
    finally:
        mlflow.set_tracking_uri(None)


DROPOUT_MODELS = {  # tiny versions of the generators with dropout, and the role they train in
    "resunet": ("colorizer", ModelSpec("resunet", {"base_channels": 4, "n_blocks": 3})),
    "encdec32": ("colorizer", ModelSpec("encdec32", {"base_channels": 4, "n_down": 3})),
    "joint": ("joint", ModelSpec("joint", {"base_channels": 4, "n_blocks": 3, "n_up_blocks": 1})),
}


@pytest.mark.parametrize("name", sorted(DROPOUT_MODELS))
def test_resume_is_bit_identical_for_models_with_dropout(store, tmp_path, name):
    """Dropout draws from the global RNG: a resumed run must continue its stream exactly where the killed one
    stopped (making the loader's iterator must not draw from it), so the weights match an uninterrupted run."""
    role, spec = DROPOUT_MODELS[name]
    assert any(isinstance(m, torch.nn.modules.dropout._DropoutNd) and m.p > 0
               for m in recipe.models.build(spec.name, **spec.kwargs).modules()), "the model must use dropout"
    tier = recipe.ROLES[role].tier
    train, val = PairDataset(store, "train", tier), PairDataset(store, "val", tier)

    def make(run: str) -> Trainer:
        cfg = tiny_config(epochs=2, batch_size=4, lr=1e-3, max_batches=4)
        setattr(cfg.model, role, spec)
        r = recipe.build(cfg, role, "pretrain")
        r.phase = dataclasses.replace(r.phase, checkpoint_every=2)
        return Trainer(r, tmp_path / f"{run}_state.pt", tmp_path / f"{run}_best.pt", progress=False)

    full = make("full")
    full.fit(train, val)
    with pytest.raises(KeyboardInterrupt):
        _dying(make("part"), 3).fit(train, val)  # killed in epoch 1 after the checkpoint of step 2
    resumed = make("part")
    resumed.fit(train, val)
    assert resumed.resumed_from == (0, 2)
    assert (resumed.epoch, resumed.step) == (full.epoch, full.step) == (2, 8)
    for k, v in full.netG.state_dict().items():
        assert torch.equal(v, resumed.netG.state_dict()[k]), k
    assert [r.values for r in resumed.history] == [r.values for r in full.history]
