"""The trainer: it learns real data, repeats itself, resumes exactly, and selects honestly."""

from __future__ import annotations

import csv
import json

import pydantic
import pytest
import torch

from amcf.io import torch_save
from amcf.objective import MCLoss
from amcf.train import state
from amcf.train.config import TrainConfig
from amcf.train.evaluate import evaluate
from amcf.train.fit import TrainResult, checkpoint_due, fit
from amcf.train.records import summarise

# checkpoint_every=1: the kill tests below resume from the epoch they killed at
FAST = dict(epochs=4, batch_size=64, lr=0.05, progress=False, checkpoint_every=1)


def _models(make_cnn, k=2, seed=0):
    return [make_cnn(seed=seed + j) for j in range(k)]


def _strip_time(history):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history]


def _same_weights(a, b) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(),
                                                   b.state_dict().values(), strict=True))


def test_fit_learns_digits_and_writes_outputs(digits, make_cnn, tmp_path):
    config = TrainConfig(epochs=8, batch_size=64, lr=0.05, progress=False)
    result = fit(_models(make_cnn), digits, config, out_dir=tmp_path)

    assert isinstance(result, TrainResult)
    # 10 classes: chance is 0.1. Two small CNNs reach ~0.95 here in about a second.
    assert result.test_acc > 0.9
    assert result.history[0]["val_acc"] < result.val_acc  # it improved while training
    m = json.loads((tmp_path / "metrics.json").read_text())
    for key in ("selected_epoch", "val_acc", "test_acc", "best_test_acc", "final_test_acc",
                "members", "epochs", "num_models", "model_epochs", "trainable_params",
                "device"):
        assert key in m, key
    # wall-clock time lives in timing.json only: the other files repeat byte for byte
    assert "wall_time_s" not in m
    timing = json.loads((tmp_path / "timing.json").read_text())
    assert timing == result.timing and len(timing["epoch_seconds"]) == 8
    assert timing["wall_time_s"] == sum(r["seconds"] for r in result.history) > 0
    assert m["epochs"] == 8 and m["num_models"] == 2 and m["model_epochs"] == 16
    assert m["device"] == "cpu"
    assert m["trainable_params"] == sum(p.numel() for p in make_cnn().parameters()) * 2
    assert len(m["members"]) == 2 and all(0 <= mm["test_acc"] <= 1 for mm in m["members"])

    with open(tmp_path / "history.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == list(range(1, 9))
    assert {"train_loss", "lr", "val_acc", "test_acc", "val_acc_m1", "test_acc_m0"} <= set(rows[0])
    assert "seconds" not in rows[0]
    assert [float(r["val_acc"]) for r in rows] == [r["val_acc"] for r in result.history]

    # the prediction file is the fused test prediction of the selected epoch
    with open(tmp_path / "test_predictions.csv", newline="") as f:
        preds = list(csv.DictReader(f))
    assert len(preds) == len(digits.test)
    assert [int(p["label"]) for p in preds] == digits.test.labels.tolist()
    acc = sum(p["label"] == p["prediction"] for p in preds) / len(preds)
    assert acc == pytest.approx(m["test_acc"])
    assert (tmp_path / "checkpoint.pt").exists()


def test_same_seed_repeats_and_other_seed_differs(digits, make_cnn):
    runs = []
    for seed in (0, 0, 1):
        models = _models(make_cnn)
        runs.append((fit(models, digits, TrainConfig(**FAST, seed=seed)), models))
    (a, ma), (b, mb), (c, _) = runs
    assert _strip_time(a.history) == _strip_time(b.history)
    assert all(_same_weights(x, y) for x, y in zip(ma, mb, strict=True))
    # same starting weights, other batch order and augmentation
    assert [r["train_loss"] for r in a.history] != [r["train_loss"] for r in c.history]


def test_cpu_training_is_channels_last_and_its_layout_is_part_of_the_run(digits, make_cnn):
    # the CPU trainer runs its convolutions channels-last (oneDNN is faster there); the layout
    # changes the summation order, so a run in the other layout is another run
    nhwc, nchw = _models(make_cnn), _models(make_cnn)
    a = fit(nhwc, digits, TrainConfig(**FAST))
    b = fit(nchw, digits, TrainConfig(**FAST, channels_last=False))
    convs = [p for p in nhwc[0].parameters() if p.dim() == 4]
    assert convs and all(p.is_contiguous(memory_format=torch.channels_last) for p in convs)
    assert all(p.is_contiguous() for p in nchw[0].parameters())
    assert a.metrics["identity"] != b.metrics["identity"]
    # the same training, summed in another order: close, not equal bit for bit
    assert abs(a.history[-1]["train_loss"] - b.history[-1]["train_loss"]) < 0.05


class _Kill(Exception):
    pass


def _kill_after(last: int):
    """An epoch callback that "kills" the process once epoch ``last`` has finished."""

    def callback(epoch, row):
        if epoch == last:
            raise _Kill

    return callback


def test_resume_after_kill_is_bit_identical(digits, make_cnn, tmp_path):
    config = TrainConfig(**FAST)
    whole_models = _models(make_cnn)
    whole = fit(whole_models, digits, config, out_dir=tmp_path / "whole")

    with pytest.raises(_Kill):
        fit(_models(make_cnn), digits, config, out_dir=tmp_path / "cut", callback=_kill_after(2))
    assert not (tmp_path / "cut" / "metrics.json").exists()
    resumed_models = _models(make_cnn)
    resumed = fit(resumed_models, digits, config, out_dir=tmp_path / "cut")

    assert resumed.resumed_from_epoch == 2
    assert _strip_time(resumed.history) == _strip_time(whole.history)
    assert all(_same_weights(x, y) for x, y in zip(whole_models, resumed_models, strict=True))
    assert resumed.metrics == whole.metrics
    for name in ("test_predictions.csv", "history.csv", "metrics.json"):
        assert (tmp_path / "cut" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes()
    # the resumed run's wall time counts the epochs before the kill too
    assert len(resumed.timing["epoch_seconds"]) == FAST["epochs"]


def test_sparse_checkpoints_resume_bit_identically_from_the_latest(digits, make_cnn,
                                                                     tmp_path, monkeypatch):
    # the default interval (every 10 epochs or 10 minutes) writes no checkpoint in a run of
    # seconds; every 3 epochs of 7: epochs 3 and 6, and the 7th as the run keeps its own
    config = TrainConfig(**{**FAST, "epochs": 7, "checkpoint_every": 3,
                            "checkpoint_minutes": None})
    assert config.identity() == TrainConfig(**{**FAST, "epochs": 7}).identity()
    written = []
    save = state.save_resume_state
    monkeypatch.setattr(state, "save_resume_state",
                        lambda path, **p: (written.append(p["epoch"]), save(path, **p)))
    whole_models = _models(make_cnn)
    whole = fit(whole_models, digits, config, out_dir=tmp_path / "whole")
    assert written == [3, 6, 7]
    assert [p.name for p in (tmp_path / "whole").glob("*.pt")] == ["checkpoint.pt"]

    written.clear()
    with pytest.raises(_Kill):  # killed after epoch 5: the latest checkpoint is epoch 3's
        fit(_models(make_cnn), digits, config, out_dir=tmp_path / "cut", callback=_kill_after(5))
    assert written == [3]
    resumed_models = _models(make_cnn)
    resumed = fit(resumed_models, digits, config, out_dir=tmp_path / "cut")
    assert resumed.resumed_from_epoch == 3
    assert _strip_time(resumed.history) == _strip_time(whole.history)
    assert all(_same_weights(x, y) for x, y in zip(whole_models, resumed_models, strict=True))
    for name in ("test_predictions.csv", "history.csv", "metrics.json"):
        assert (tmp_path / "cut" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes()

    # a run that does not keep its checkpoint never writes the last epoch's
    written.clear()
    fit(_models(make_cnn), digits, config, out_dir=tmp_path / "pruned", keep_checkpoint=False)
    assert written == [3, 6] and not (tmp_path / "pruned" / "checkpoint.pt").exists()


def test_checkpoint_interval_by_epochs_or_minutes():
    config = TrainConfig(epochs=20, checkpoint_every=5, checkpoint_minutes=2.0)
    due = [e for e in range(1, 21) if checkpoint_due(config, e, 0.0, keep_checkpoint=False)]
    assert due == [5, 10, 15]
    assert checkpoint_due(config, 7, 120.0, keep_checkpoint=False)  # two minutes since
    assert not checkpoint_due(config, 7, 119.0, keep_checkpoint=False)
    assert checkpoint_due(config, 20, 0.0, keep_checkpoint=True)
    every = config.model_copy(update={"checkpoint_minutes": 0.0})
    assert all(checkpoint_due(every, e, 0.0, False) for e in range(1, 20))
    with pytest.raises(pydantic.ValidationError, match="checkpoint_every"):
        TrainConfig(checkpoint_every=0)


def test_checkpoints_stream_to_disk_with_the_bytes_of_an_in_memory_save(tmp_path):
    import io

    obj = {"w": torch.randn(300, 40), "ids": [torch.arange(5)], "lr": 0.01}
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    torch_save(obj, tmp_path / "a.pt")
    assert (tmp_path / "a.pt").read_bytes() == buffer.getvalue()
    assert [p.name for p in tmp_path.iterdir()] == ["a.pt"]  # no temporary left behind


def test_resume_state_reads_the_training_devices_random_stream_only():
    g = torch.Generator().manual_seed(3)
    saved = state.rng_state(g, torch.device("cpu"))
    assert saved["cuda"] is None  # no CUDA call at all for a CPU run
    g.manual_seed(4)
    torch.manual_seed(9)
    state.restore_rng(saved, g, torch.device("cpu"))
    assert torch.equal(g.get_state(), torch.Generator().manual_seed(3).get_state())


def test_finished_run_is_returned_without_training(digits, make_cnn, tmp_path):
    config = TrainConfig(**FAST)
    trained = _models(make_cnn)
    first = fit(trained, digits, config, out_dir=tmp_path)
    again_models = _models(make_cnn)
    again = fit(again_models, digits, config, out_dir=tmp_path, callback=_kill_after(1))
    assert again.cached and again.metrics == json.loads((tmp_path / "metrics.json").read_text())
    assert _strip_time(again.history) == _strip_time(first.history)
    # the returned models carry the trained (last-epoch) weights
    assert all(_same_weights(x, y) for x, y in zip(trained, again_models, strict=True))
    assert torch.equal(again.test_predictions, first.test_predictions)
    # without the checkpoint (deleted to save space) the numbers still come back from disk
    (tmp_path / "checkpoint.pt").unlink()
    third = fit(_models(make_cnn), digits, config, out_dir=tmp_path, callback=_kill_after(1))
    assert third.cached and _strip_time(third.history) == _strip_time(first.history)


def test_resume_with_other_settings_is_refused(digits, make_cnn, tmp_path):
    config = TrainConfig(**FAST)
    with pytest.raises(_Kill):
        fit(_models(make_cnn), digits, config, out_dir=tmp_path, callback=_kill_after(1))
    with pytest.raises(RuntimeError, match=r"config\.lr.*\n.*resume=False"):
        fit(_models(make_cnn), digits, config.model_copy(update={"lr": 0.1}), out_dir=tmp_path)
    with pytest.raises(RuntimeError, match="objective"):
        fit(_models(make_cnn), digits, config, MCLoss(lam=0.5), out_dir=tmp_path)
    with pytest.raises(RuntimeError, match="architectures"):
        fit([make_cnn(width=8), make_cnn(seed=1)], digits, config, out_dir=tmp_path)
    frozen = _models(make_cnn)
    frozen[0].conv1.weight.requires_grad_(False)
    with pytest.raises(RuntimeError, match="frozen layers"):
        fit(frozen, digits, config, out_dir=tmp_path)
    with pytest.raises(RuntimeError, match="starting weights"):
        fit(_models(make_cnn, seed=5), digits, config, out_dir=tmp_path)
    # a cosmetic setting may change; resume=False starts over
    fit(_models(make_cnn), digits, config.model_copy(update={"progress": True}),
        out_dir=tmp_path)
    fresh = fit(_models(make_cnn), digits, config.model_copy(update={"lr": 0.1}),
                out_dir=tmp_path, resume=False)
    assert fresh.resumed_from_epoch == 0 and not fresh.cached
    # and a finished run with other settings is refused as well
    with pytest.raises(RuntimeError, match="metrics.json"):
        fit(_models(make_cnn), digits, config, out_dir=tmp_path)


def test_corrupt_checkpoint_names_the_fix(digits, make_cnn, tmp_path):
    (tmp_path / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(RuntimeError, match="resume=False"):
        fit(_models(make_cnn), digits, TrainConfig(**FAST), out_dir=tmp_path)


class _Collapses(MCLoss):
    """Trains normally for two epochs, then wipes the heads and stops all learning."""

    def before_epoch(self, models, epoch, batches):
        if epoch >= 3:
            with torch.no_grad():
                for m in models:
                    m.fc.weight.zero_()
                    m.fc.bias.zero_()

    def after_backward(self, models):
        if models[0].fc.weight.abs().sum() == 0:
            for m in models:
                for p in m.parameters():
                    p.grad = None


def test_selection_reads_test_at_best_val_epoch(digits, make_cnn, tmp_path):
    result = fit(_models(make_cnn), digits, TrainConfig(**FAST), _Collapses(), out_dir=tmp_path)
    h = result.history
    # all-zero logits predict class 0 for every image: about one in ten right
    assert h[-1]["test_acc"] < 0.2 and h[1]["test_acc"] > 0.5
    assert result.selected_epoch in (1, 2)
    assert result.test_acc == h[result.selected_epoch - 1]["test_acc"]
    assert result.best_test_acc == max(r["test_acc"] for r in h)
    assert result.metrics["final_test_acc"] == h[-1]["test_acc"]
    preds = (tmp_path / "test_predictions.csv").read_text().splitlines()[1:]
    right = sum(line.split(",")[1] == line.split(",")[2] for line in preds)
    assert right / len(preds) == pytest.approx(result.test_acc)


def test_summarise_selection_rules():
    def row(epoch, val, test, v0, t0, v1, t1):
        return {"epoch": epoch, "val_acc": val, "test_acc": test, "val_acc_m0": v0,
                "test_acc_m0": t0, "val_acc_m1": v1, "test_acc_m1": t1}

    history = [row(1, 0.5, 0.55, 0.4, 0.45, 0.5, 0.5),
               row(2, 0.8, 0.70, 0.7, 0.60, 0.3, 0.9),
               row(3, 0.8, 0.90, 0.6, 0.80, 0.2, 0.1),  # val ties epoch 2: the first wins
               row(4, 0.6, 0.65, 0.5, 0.50, 0.6, 0.3)]
    s = summarise(history, 2)
    assert s["selected_epoch"] == 2 and s["val_acc"] == 0.8 and s["test_acc"] == 0.70
    assert s["best_test_acc"] == 0.90 and s["final_test_acc"] == 0.65
    assert s["members"][0] == {"selected_epoch": 2, "val_acc": 0.7, "test_acc": 0.6,
                               "best_test_acc": 0.8}
    assert s["members"][1]["selected_epoch"] == 4 and s["members"][1]["test_acc"] == 0.3


class _Recorder(MCLoss):
    """Counts the hooks, drains the before-epoch batches, and freezes model 0 by its grads."""

    def __init__(self, lam: float = 0.2, block_first: bool = True, drain: bool = True):
        super().__init__(lam)
        self.block_first, self.drain = block_first, drain
        self.setups, self.epochs, self.drained, self.after = 0, [], 0, 0

    def setup(self, models, generator):
        self.setups += 1

    def before_epoch(self, models, epoch, batches):
        self.epochs.append(epoch)
        if self.drain:
            self.drained += sum(int(y.numel()) for _, y in batches)

    def after_backward(self, models):
        self.after += 1
        if self.block_first:
            for p in models[0].parameters():
                p.grad = None  # SGD skips a parameter without gradient, weight decay too


def test_objective_hooks_shape_the_training(digits, make_cnn):
    models = _models(make_cnn)
    before = [{k: v.clone() for k, v in m.named_parameters()} for m in models]
    rec = _Recorder()
    fit(models, digits, TrainConfig(**FAST), rec)
    steps = -(-len(digits.train) // FAST["batch_size"])
    assert rec.setups == 1 and rec.epochs == [1, 2, 3, 4]
    assert rec.drained == 4 * len(digits.train) and rec.after == 4 * steps
    assert all(torch.equal(p, before[0][k]) for k, p in models[0].named_parameters())
    assert not torch.equal(models[1].fc.weight, before[1]["fc.weight"])


def test_before_epoch_batches_do_not_disturb_the_run(digits, make_cnn):
    config = TrainConfig(**FAST)
    drained = fit(_models(make_cnn), digits, config, _Recorder(block_first=False))
    untouched = fit(_models(make_cnn), digits, config,
                    _Recorder(block_first=False, drain=False))
    assert _strip_time(drained.history) == _strip_time(untouched.history)


class _Constant(MCLoss):
    def penalty(self, models):
        return 5.0


def test_penalty_joins_the_loss(digits, make_cnn):
    config = TrainConfig(**FAST)
    base = fit(_models(make_cnn), digits, config)
    shifted = fit(_models(make_cnn), digits, config, _Constant())
    # a constant has no gradient: same training, every recorded loss 5 higher
    assert [r["val_acc"] for r in base.history] == [r["val_acc"] for r in shifted.history]
    for a, b in zip(base.history, shifted.history, strict=True):
        assert b["train_loss"] - a["train_loss"] == pytest.approx(5.0, abs=1e-4)


def test_frozen_parameters_stay_and_lr_follows_the_schedule(digits, make_cnn):
    models = _models(make_cnn)
    for m in models:
        m.conv1.weight.requires_grad_(False)
    start = [m.conv1.weight.clone() for m in models]
    config = TrainConfig(**{**FAST, "step_size": 2, "gamma": 0.5})
    result = fit(models, digits, config)
    assert all(torch.equal(m.conv1.weight, w) for m, w in zip(models, start, strict=True))
    assert [r["lr"] for r in result.history] == pytest.approx([0.05, 0.05, 0.025, 0.025])
    n_conv1 = models[0].conv1.weight.numel()
    total = sum(p.numel() for p in models[0].parameters())
    assert result.metrics["trainable_params"] == 2 * (total - n_conv1)


def test_evaluate_fuses_by_summed_logits(digits, make_cnn):
    models = _models(make_cnn, k=3)
    out = evaluate(models, digits.val, batch_size=128)
    x = torch.stack([digits.val[i][0] for i in range(len(digits.val))])
    with torch.no_grad():
        for m in models:
            m.eval()
        logits = [m(x) for m in models]
    expected = (logits[0] + logits[1] + logits[2]).argmax(1)
    assert torch.equal(out["predictions"], expected)
    assert torch.equal(out["labels"], digits.val.labels)
    assert out["acc"] == pytest.approx((expected == digits.val.labels).float().mean().item())
    for j, z in enumerate(logits):
        own = (z.argmax(1) == digits.val.labels).float().mean().item()
        assert out["member_acc"][j] == pytest.approx(own)


@pytest.mark.parametrize(("field", "value", "message"), [
    ("epochs", 0, "greater than or equal to 1"),
    ("batch_size", -4, "greater than or equal to 1"),
    ("lr", 0.0, "greater than 0"),
    ("momentum", 1.0, "less than 1"),
    ("weight_decay", -1e-4, "greater than or equal to 0"),
    ("gamma", 1.5, "less than or equal to 1"),
    ("step_size", 0, "greater than or equal to 1"),
    ("device", "gpu", "use 'auto', 'cpu', 'cuda'"),
    ("lrate", 0.1, "Extra inputs are not permitted"),
])
def test_invalid_config_names_field_and_range(field, value, message):
    with pytest.raises(pydantic.ValidationError) as err:
        TrainConfig(**{field: value})
    assert field in str(err.value) and message in str(err.value)


def test_bad_fit_arguments_fail_before_training(digits, make_cnn):
    with pytest.raises(ValueError, match="non-empty sequence"):
        fit([], digits, TrainConfig(**FAST))
    m = make_cnn()
    with pytest.raises(ValueError, match="appears twice"):
        fit([m, m], digits, TrainConfig(**FAST))
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            fit([m], digits, TrainConfig(**FAST, device="cuda"))
    for p in m.parameters():
        p.requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        fit([m], digits, TrainConfig(**FAST))


def test_a_run_finished_before_timings_moved_out_is_reused_without_them(digits, make_cnn,
                                                                        tmp_path):
    # an older trainer wrote wall_time_s into metrics.json and a seconds column into
    # history.csv, and no timing.json: the cached run must come back in today's format
    config = TrainConfig(**FAST)
    first = fit(_models(make_cnn), digits, config, out_dir=tmp_path)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    (tmp_path / "metrics.json").write_text(json.dumps({**metrics, "wall_time_s": 1.5}))
    (tmp_path / "timing.json").unlink()
    again = fit(_models(make_cnn), digits, config, out_dir=tmp_path)
    assert again.cached and again.metrics == first.metrics
    assert again.timing["epoch_seconds"] == first.timing["epoch_seconds"]  # from the checkpoint


def test_a_pruned_finished_run_keeps_what_resuming_and_the_report_read(digits, make_cnn,
                                                                      tmp_path):
    config = TrainConfig(**FAST)
    first = fit(_models(make_cnn), digits, config, out_dir=tmp_path, keep_checkpoint=False)
    assert not (tmp_path / "checkpoint.pt").exists()
    assert {p.name for p in tmp_path.iterdir()} >= {"metrics.json", "history.csv",
                                                    "test_predictions.csv"}
    again = fit(_models(make_cnn), digits, config, out_dir=tmp_path, keep_checkpoint=False)
    assert again.cached and again.metrics == first.metrics
    assert _strip_time(again.history) == _strip_time(first.history)
    kept = fit(_models(make_cnn), digits, config, out_dir=tmp_path / "kept")
    assert (tmp_path / "kept" / "checkpoint.pt").is_file()  # the default keeps it
    assert kept.metrics["val_acc"] == first.metrics["val_acc"]
