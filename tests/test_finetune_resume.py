"""`encoder finetune` checkpoints and `--resume`: an interrupted run resumed to its end writes the
same bytes as an uninterrupted one, `--epochs` can grow (the linear decay then follows the new
total), a checkpoint never goes back, settings must match the checkpoint's, and Ctrl-C (a real
SIGINT to a child process) exits 130 leaving a complete checkpoint and no temp files."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from embedkit.bpe.model import BPETokenizer
from embedkit.classify import finetune as F
from embedkit.classify import finetune_files as FF
from embedkit.cli import main
from embedkit.encoder.model import Encoder
from embedkit.encoder.optim import AdamW, lr_at
from embedkit.store import read_store
from cli_run import interrupt_after, run

ANIMALS = ["the cat sat on the mat .", "a dog ran to the park .", "the bird flew over a house .",
           "a cat ran over the mat .", "the dog sat in a park .", "a bird sat on the house ."]
PLACES = ["my friend walked along the river bank .", "the teacher put money in the bank .",
          "a child slept under the old tree .", "the river ran along the old bank .",
          "my teacher slept under a tree .", "the child put money in a bank ."]
# 12 lines, batches of 2: 6 steps an epoch, 18 in all; checkpoints at 4, 6, 8, 12, 16 and 18
ARGS = ["--epochs", 3, "--lr", 1e-2, "--batch-size", 2, "--warmup", 1, "--seed", 3,
        "--checkpoint-every", 4, "--threads", 1, "-q"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("ftresume")
    corpus = d / "corpus.txt"
    corpus.write_text("\n".join((ANIMALS + PLACES) * 10) + "\n")
    tok = BPETokenizer.train([str(corpus)], 300)
    Encoder.train(str(corpus), tok, d / "enc", steps=10, dim=16, heads=2, ffn=32, layers=1,
                  max_len=12, batch_size=8, warmup=2, lr=1e-2, threads=1)
    (d / "train.tsv").write_text("".join(f"animal\t{s}\n" for s in ANIMALS) +
                                 "".join(f"place\t{s}\n" for s in PLACES))
    return d


def finetune(d, model, *extra):
    return ["encoder", "finetune", d / "enc", d / "train.tsv", "-o", model, *extra]


@pytest.fixture(scope="module")
def straight(setup, tmp_path_factory):
    """MODEL and MODEL.ckpt bytes of an uninterrupted run with ARGS."""
    model = tmp_path_factory.mktemp("straight") / "m.ekc"
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in finetune(setup, model, "--valid", setup / "train.tsv", *ARGS)])
    assert e.value.code == 0
    return model.read_bytes(), F.checkpoint_path(model).read_bytes()


def interrupt_at(monkeypatch, step: int) -> None:
    """Ctrl-C as step ``step`` starts (its gradients are being computed)."""
    real, calls = F.loss_and_grads, []

    def counting(*args, **kw):
        calls.append(1)
        if len(calls) == step:
            raise KeyboardInterrupt
        return real(*args, **kw)

    monkeypatch.setattr(F, "loss_and_grads", counting)


@pytest.mark.parametrize("stop,saved,epoch,done", [(11, 8, 2, 2), (7, 6, 2, 0)])
def test_resumed_run_writes_the_bytes_of_an_uninterrupted_one(setup, straight, capsys, tmp_path,
                                                              monkeypatch, stop, saved, epoch,
                                                              done):
    d, model = setup, tmp_path / "m.ekc"
    interrupt_at(monkeypatch, stop)
    code, out, err = run(finetune(d, model, "--valid", d / "train.tsv", *ARGS), capsys)
    assert code == 130 and "interrupted" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.ekc", "m.ekc.ckpt"]
    assert len(F.load(model).meta["finetune"]["history"]) == 1  # MODEL holds finished epochs
    meta, arrays = FF.load_checkpoint(F.checkpoint_path(model))
    state = meta["train"]
    assert (state["step"], state["epoch"], state["batches_done"], state["total_steps"]) == \
        (saved, epoch, done, 18)
    assert {"m.head.w", "v.head.w", "m.wte", "v.wte"} <= set(arrays) and "m.out_b" not in arrays
    monkeypatch.undo()
    # settings not given are the checkpoint's: --resume alone finishes the run
    code, out, err = run(finetune(d, model, "--valid", d / "train.tsv", "--resume", "--threads",
                                  1, "-q", "--json"), capsys)
    assert code == 0, err
    summary = json.loads(out)
    assert (summary["steps"], summary["steps_this_run"], summary["epochs"]) == (18, 18 - saved, 3)
    assert [h["epoch"] for h in summary["history"]] == [1, 2, 3]
    assert model.read_bytes() == straight[0]
    assert F.checkpoint_path(model).read_bytes() == straight[1]


def test_twice_interrupted_and_resumed_with_all_options_repeated(setup, straight, capsys,
                                                                  tmp_path, monkeypatch):
    d, model = setup, tmp_path / "m.ekc"
    args = finetune(d, model, "--valid", d / "train.tsv", *ARGS)
    interrupt_at(monkeypatch, 5)
    assert run(args, capsys)[0] == 130
    interrupt_at(monkeypatch, 10 - 4)  # the resumed run starts at step 4: stops as step 10 starts
    assert run(args + ["--resume"], capsys)[0] == 130
    assert read_store(F.checkpoint_path(model))[0]["train"]["step"] == 8
    monkeypatch.undo()
    code, _, err = run(args + ["--resume"], capsys)
    assert code == 0, err
    assert model.read_bytes() == straight[0]


def lrs_of_run(monkeypatch, args, capsys) -> list[float]:
    """The learning rate of every AdamW step the command takes."""
    real, seen = AdamW.step, []

    def step(self, params, grads):
        norm, lr = real(self, params, grads)
        seen.append(lr)
        return norm, lr

    monkeypatch.setattr(AdamW, "step", step)
    code, _, err = run(args, capsys)
    monkeypatch.undo()
    assert code == 0, err
    return seen


def test_more_epochs_continue_with_the_decay_over_the_new_total(setup, capsys, tmp_path,
                                                                monkeypatch):
    d = setup
    two = ["--epochs", 2] + ARGS[2:]
    first = lrs_of_run(monkeypatch, finetune(d, tmp_path / "m.ekc", *two), capsys)
    assert first == [lr_at(t, 1e-2, 1, 12) for t in range(1, 13)]
    more = lrs_of_run(monkeypatch, finetune(d, tmp_path / "m.ekc", "--resume", "--epochs", 3,
                                            "--threads", 1, "-q"), capsys)
    # steps 13..18 on the line that falls to 0 after step 18: the rate jumps up at the resume
    assert more == [lr_at(t, 1e-2, 1, 18) for t in range(13, 19)] and more[0] > first[-1]
    straight = lrs_of_run(monkeypatch, finetune(d, tmp_path / "s.ekc", *ARGS), capsys)
    assert more == straight[12:] and first != straight[:12]
    meta = F.load(tmp_path / "m.ekc").meta
    assert [h["epoch"] for h in meta["finetune"]["history"]] == [1, 2, 3]
    assert meta["finetune"]["epochs"] == 3
    state = read_store(F.checkpoint_path(tmp_path / "m.ekc"))[0]["train"]
    assert (state["step"], state["total_steps"], state["epoch"]) == (18, 18, 4)


@pytest.fixture
def finished(setup, capsys, tmp_path):
    """A finished 2-epoch run (12 steps) in tmp_path; -> (MODEL path, its bytes, ckpt bytes)."""
    model = tmp_path / "m.ekc"
    code, _, err = run(finetune(setup, model, "--epochs", 2, *ARGS[2:]), capsys)
    assert code == 0, err
    return model, model.read_bytes(), F.checkpoint_path(model).read_bytes()


def refused(args, capsys, finished, tmp_path) -> str:
    """The one-line error of ``args``; exit 2, no output, nothing written or changed."""
    model, blob, ckpt = finished
    code, out, err = run(args, capsys)
    assert code == 2 and out == "", err
    assert err.startswith("embedkit: error: ") and err.count("\n") == 1, err
    assert model.read_bytes() == blob and F.checkpoint_path(model).read_bytes() == ckpt
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.ekc", "m.ekc.ckpt"]
    return err


@pytest.mark.parametrize("epochs", [None, 2, 1])
def test_a_total_at_or_below_the_checkpoint_is_refused(setup, capsys, finished, tmp_path, epochs):
    extra = [] if epochs is None else ["--epochs", epochs]
    err = refused(finetune(setup, finished[0], "--resume", *extra, "-q"), capsys, finished,
                  tmp_path)
    assert "m.ekc.ckpt: checkpoint is already at step 12; give --epochs beyond it" in err


@pytest.mark.parametrize("extra,message", [
    (["--lr", 0.02], "fine-tuned with --lr 0.01, not with --lr 0.02"),
    (["--pool", "first"], "with --pool mean, not with --pool first"),
    (["--batch-size", 3], "with --batch-size 2, not with --batch-size 3"),
    (["--warmup", 2], "with --warmup 1, not with --warmup 2"),
    (["--seed", 4], "with --seed 3, not with --seed 4"),
    (["--lowercase"], "without --lowercase, not with --lowercase"),
    (["--label-prefix", "@@"], "with --label-prefix __label__, not with --label-prefix @@"),
])
def test_a_setting_other_than_the_checkpoints_is_named(setup, capsys, finished, tmp_path, extra,
                                                       message):
    err = refused(finetune(setup, finished[0], "--resume", "--epochs", 3, *extra, "-q"), capsys,
                  finished, tmp_path)
    assert message in err


@pytest.mark.parametrize("what,message", [
    ("labels", "checkpoint was fine-tuned on the labels animal, place; "),
    ("lines", "holds other lines than the TRAIN this checkpoint was fine-tuned on"),
    ("encoder", "is not the one this checkpoint was fine-tuned from"),
])
def test_other_train_lines_or_encoder_are_refused(setup, capsys, finished, tmp_path_factory,
                                                  tmp_path, what, message):
    d = setup
    other = tmp_path_factory.mktemp("other")
    enc, train = d / "enc", d / "train.tsv"
    if what == "labels":
        train = other / "t.tsv"
        train.write_text((d / "train.tsv").read_text().replace("place\t", "site\t"))
    elif what == "lines":
        train = other / "t.tsv"
        train.write_text((d / "train.tsv").read_text().replace("old tree", "big tree"))
    else:
        e = Encoder.load(d / "enc")
        e.params["wte"][0, 0] += 1
        enc = other / "enc"
        e.save(enc)
    args = ["encoder", "finetune", enc, train, "-o", finished[0], "--resume", "--epochs", 3, "-q"]
    assert message in refused(args, capsys, finished, tmp_path)


def test_resume_without_a_checkpoint_is_one_line(setup, capsys, tmp_path):
    code, out, err = run(finetune(setup, tmp_path / "m.ekc", "--resume", "-q"), capsys)
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "m.ekc.ckpt: no checkpoint to resume from" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("damage,message", [
    ("text", "not an embedkit"),
    ("model", "expected a 'encoder-classifier-checkpoint'"),
    ("moment", "optimizer moment 'm.head.w' missing"),
    ("state", "step, epoch or counts are not valid"),
    ("settings", "settings or digests missing or not valid"),
])
def test_a_damaged_checkpoint_is_refused(setup, capsys, finished, tmp_path, damage, message):
    from embedkit.store import write_store

    model, blob, _ = finished
    ckpt = F.checkpoint_path(model)
    meta, arrays = read_store(ckpt)
    if damage == "text":
        ckpt.write_text("hello\n")
    elif damage == "model":
        ckpt.write_bytes(blob)
    elif damage == "moment":
        del arrays["m.head.w"]
        write_store(ckpt, F.CHECKPOINT_KIND, meta, arrays)
    elif damage == "state":
        meta["train"]["step"] = 13  # past total_steps 12
        write_store(ckpt, F.CHECKPOINT_KIND, meta, arrays)
    else:
        meta["train"]["settings"]["lr"] = "fast"
        write_store(ckpt, F.CHECKPOINT_KIND, meta, arrays)
    before = ckpt.read_bytes()
    code, out, err = run(finetune(setup, model, "--resume", "--epochs", 3, "-q"), capsys)
    assert code == 2 and out == "" and err.count("\n") == 1, err
    assert message in err and ckpt.read_bytes() == before and model.read_bytes() == blob


def test_nan_after_a_checkpoint_names_what_is_kept(setup, capsys, tmp_path, monkeypatch):
    real, calls = F.loss_and_grads, []

    def poisoned(*args, **kw):
        calls.append(1)
        loss, g, c = real(*args, **kw)
        return (float("nan") if len(calls) == 10 else loss), g, c

    monkeypatch.setattr(F, "loss_and_grads", poisoned)
    code, out, err = run(finetune(setup, tmp_path / "m.ekc", *ARGS), capsys)
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "step 10: the loss is nan" in err
    assert "model of epoch 1 is kept in" in err and "checkpoint of step 8 in" in err
    assert read_store(F.checkpoint_path(tmp_path / "m.ekc"))[0]["train"]["step"] == 8


CHILD = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
         "from embedkit.cli import main; main()")


def test_ctrl_c_exits_130_with_a_complete_checkpoint_that_resumes(setup, capsys, tmp_path):
    """A real SIGINT mid-run. The child installs Python's own SIGINT handler itself, so the test
    holds even when the runner was started with SIGINT ignored (which children would inherit)."""
    d, model = setup, tmp_path / "m.ekc"
    ckpt = F.checkpoint_path(model)
    p = subprocess.Popen([sys.executable, "-c", CHILD, *map(str, finetune(
        d, model, "--epochs", 100000, "--checkpoint-every", 3, "--batch-size", 2, "--lr", 1e-3,
        "--threads", 1, "-q"))], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    err = interrupt_after(p, ckpt)  # the first checkpoint appears, then a few more steps
    assert p.returncode == 130, err
    assert b"interrupted" in err and b"Traceback" not in err
    meta, arrays = FF.load_checkpoint(ckpt)
    state = meta["train"]
    assert state["step"] % 3 == 0 or state["batches_done"] == 0
    assert all(np.isfinite(a).all() for a in arrays.values())
    assert {q.name for q in tmp_path.iterdir()} <= {"m.ekc", "m.ekc.ckpt"}
    # and it goes on, here to the end of the epoch it stopped in
    code, out, err = run(finetune(d, model, "--resume", "--epochs", state["epoch"], "--threads",
                                  1, "-q", "--json"), capsys)
    assert code == 0, err
    summary = json.loads(out)
    assert summary["steps"] == 6 * state["epoch"] > state["step"]
    assert summary["steps_this_run"] == summary["steps"] - state["step"]
    assert len(F.load(model).meta["finetune"]["history"]) == state["epoch"]
