"""``--pad-stem N`` (``harness.models.pad_stem``) and the kernel choices' plumbing (``harness.config.KernelChoices``):
a stem padded with zero channels gives the same values and gradients (bit for bit in the eager step here; to
float rounding where the CPU picks other kernels for 8 channels), keeps the parameters and checkpoints, and changes
no training result beyond rounding."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

from harness.config import KernelChoices  # noqa: E402
from harness.models import PaddedStemConv, build_model, count_parameters, pad_stem  # noqa: E402

from .test_harness import learnable  # noqa: E402, F401  (the module's 600-patch repository fixture)
from .test_pooling import same, values_and_gradients  # noqa: E402


@pytest.mark.parametrize(("name", "parameters"), [("shortcnn", 2_523_403), ("inception_v3", 21_873_675)])
def test_a_padded_stem_gives_the_same_values_gradients_and_state(name: str, parameters: int) -> None:
    torch.manual_seed(0)
    plain = build_model(name, 3, 43).model.to(memory_format=torch.channels_last)
    padded = pad_stem(copy.deepcopy(plain), 8)
    stem = next(m for m in padded.modules() if isinstance(m, nn.Conv2d))
    assert isinstance(stem, PaddedStemConv) and stem.padded_channels == 8 and stem.weight.shape[1] == 3
    x = torch.randn(2, 3, 120, 120).contiguous(memory_format=torch.channels_last)
    assert same(values_and_gradients(padded, x), values_and_gradients(plain, x))
    assert count_parameters(padded) == count_parameters(plain) == parameters
    state = plain.state_dict()
    assert {k: v.shape for k, v in padded.state_dict().items()} == {k: v.shape for k, v in state.items()}
    fresh = pad_stem(build_model(name, 3, 43).model, 8)
    fresh.load_state_dict(state)  # a checkpoint of the plain model loads as it is, and back
    assert same(values_and_gradients(fresh.to(memory_format=torch.channels_last), x), values_and_gradients(plain, x))


def test_a_compiled_padded_stem_keeps_nhwc_and_the_values() -> None:
    torch.manual_seed(0)
    plain = build_model("shortcnn", 3, 43).model.to(memory_format=torch.channels_last)
    padded = pad_stem(copy.deepcopy(plain), 8)
    x = torch.randn(4, 3, 120, 120).contiguous(memory_format=torch.channels_last)
    stem = padded.get_submodule("features.0")
    seen: list[bool] = []
    stem.register_forward_hook(lambda m, i, o: seen.append(o.is_contiguous(memory_format=torch.channels_last)))
    padded(x)
    assert seen == [True]  # NHWC in, NHWC out: no layout conversion around the stem
    torch._dynamo.reset()
    compiled = values_and_gradients(torch.compile(padded), x)  # inductor, its C++ kernels on the CPU
    torch._dynamo.reset()
    expected = values_and_gradients(plain, x)
    assert all(torch.allclose(a, b, rtol=1e-5, atol=1e-6) for a, b in zip(compiled, expected, strict=True))


def test_a_stem_is_padded_only_to_more_channels() -> None:
    with pytest.raises(ValueError, match="cannot pad the stem to 3 channels: ShortCNN has a stem of 3 channels"):
        pad_stem(build_model("shortcnn", 3, 43).model, 3)
    with pytest.raises(ValueError, match="has no convolution"):
        pad_stem(nn.Linear(3, 4), 8)


def test_kernel_choices_parse_name_and_apply() -> None:
    choices = KernelChoices.parse(["pad-stem=8", "aten-max-pool"])
    assert choices == KernelChoices(aten_max_pool=True, pad_stem=8)
    assert choices.names == ["aten-max-pool", "pad-stem=8"] and KernelChoices.parse(choices.names) == choices
    assert isinstance(choices.apply(build_model("shortcnn", 3, 43).model).get_submodule("features.0"), PaddedStemConv)
    assert KernelChoices().names == [] and KernelChoices().train_args == [] and KernelChoices().batch_fuse is None
    eager = KernelChoices.parse(["eager-batches", "pad-stem=4"])
    assert eager.batch_fuse is False and eager.train_args == ["--pad-stem", "4", "--eager-batches"]
    assert KernelChoices.parse(eager.names) == eager
    assert KernelChoices.parse(["fused-sgd"]).train_args == ["--fused-sgd"]
    for bad in (["pad-stem"], ["pad-stem=x"], ["fused"], ["aten-max-pool=2"], ["eager-batches=1"], ["pad-stem=0"],
                ["fused-sgd=1"]):  # fmt: skip
        with pytest.raises(ValueError, match="unknown kernel knob"):
            KernelChoices.parse(bad)


def test_a_run_with_pad_stem_learns_as_one_without(
    learnable: Path,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from harness.config import TrainConfig
    from harness.train import parse_args, train_seeds

    runs: dict[Any, dict[str, Any]] = {}
    for pad in (None, 8):
        config = TrainConfig(repo=str(learnable), epochs=2, lr=0.05, batch_size=32, max_batches=4, loader_threads=1,
                             kernels=KernelChoices(pad_stem=pad), out=str(tmp_path / str(pad)))  # fmt: skip
        (runs[pad],) = train_seeds([config])
    assert runs[8]["config"]["kernels"]["pad_stem"] == 8 and runs[None]["parameters"] == runs[8]["parameters"]
    for padded, plain in zip(runs[8]["history"], runs[None]["history"], strict=True):  # equal to float rounding:
        assert padded == pytest.approx(plain, rel=1e-6)  # the CPU's kernels for 8 channels sum in another order
    assert runs[8]["test"] == pytest.approx(runs[None]["test"], rel=1e-6)
    assert parse_args(["--repo", "r", "--pad-stem", "8"])[0].kernels == KernelChoices(pad_stem=8)
    assert parse_args(["--repo", "r", "--eager-batches"])[0].kernels == KernelChoices(eager_batches=True)
    with pytest.raises(SystemExit):
        parse_args(["--repo", "r", "--pad-stem", "3"])
    assert "--pad-stem 3: the stem already has 3 input bands" in capsys.readouterr().err


def test_fused_sgd_is_chosen_again_after_a_checkpoint_loads() -> None:
    """PyTorch's ``load_state_dict`` takes the saved implementation along with the state; ``restore`` puts the
    run's choice back, both ways."""
    model = nn.Linear(4, 2)
    for saved, asked in (
        (KernelChoices(), KernelChoices(fused_sgd=True)),
        (KernelChoices(fused_sgd=True), KernelChoices()),
    ):
        optimizer = asked.optimizer(model.parameters(), lr=0.1, momentum=0.9)
        optimizer.load_state_dict(saved.optimizer(model.parameters(), lr=0.1, momentum=0.9).state_dict())
        assert optimizer.param_groups[0]["fused"] == (True if saved.fused_sgd else None)  # taken from the checkpoint
        asked.restore(optimizer)
        assert optimizer.param_groups[0]["fused"] == (True if asked.fused_sgd else None)


def test_a_run_with_fused_sgd_trains_bit_for_bit_as_one_without_and_resumes(
    learnable: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    """SGD with momentum (state to carry over): the fused kernel gives the very same run on the CPU, and a run
    stopped after one epoch resumes under the other implementation to the same result."""
    from harness.config import TrainConfig
    from harness.train import parse_args, train_seeds

    def run(fused: bool, out: str, epochs: int = 2) -> dict[str, Any]:
        kernels = KernelChoices(fused_sgd=fused)
        config = TrainConfig(repo=str(learnable), epochs=epochs, lr=0.05, momentum=0.9, batch_size=32, max_batches=4,
                             loader_threads=1, kernels=kernels, out=str(tmp_path / out))  # fmt: skip
        return train_seeds([config])[0]

    plain, fused = run(False, "plain"), run(True, "fused")
    assert fused["config"]["kernels"]["fused_sgd"]
    assert fused["history"] == plain["history"] and fused["test"] == plain["test"]
    run(True, "switched", epochs=1)
    assert run(False, "switched")["history"] == plain["history"]
    assert parse_args(["--repo", "r", "--fused-sgd"])[0].kernels == KernelChoices(fused_sgd=True)


def test_fused_sgd_with_momentum_is_refused_where_a_gradient_scaler_steps_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The reason, on the installed torch: a scaler that skips an overflowing first step leaves PyTorch's default
    SGD without momentum state, and its fused SGD with buffers it never wrote.  So ``train.py`` refuses the pair
    where accelerate steps the optimiser through a scaler (fp16 on CUDA; here a CPU scaler stands in), before any
    data is read; without momentum, or without the fused kernel, it goes on (to the missing repository here)."""
    from accelerate import Accelerator

    from harness import train

    for fused in (None, True):
        weight = nn.Parameter(torch.ones(4))
        optimizer = torch.optim.SGD([weight], lr=0.1, momentum=0.9, fused=fused)
        scaler = torch.amp.GradScaler("cpu")
        scaler.scale((weight * float("inf")).sum()).backward()  # an overflowing first step
        scaler.step(optimizer)
        assert torch.equal(weight.detach(), torch.ones(4))  # the step was skipped
        assert ("momentum_buffer" in optimizer.state[weight]) == bool(fused)  # ...but the fused one left buffers

    class Scaled(Accelerator):
        def __init__(self) -> None:
            super().__init__(cpu=True)
            self.scaler = torch.amp.GradScaler("cpu")

    monkeypatch.setattr(train, "Accelerator", Scaled)
    missing = str(tmp_path / "no-repo")
    assert train.main(["--repo", missing, "--fused-sgd", "--momentum", "0.9", "--out", str(tmp_path)]) == 2
    assert "error: --fused-sgd with --momentum 0.9 under fp16 mixed precision" in capsys.readouterr().err
    for options in (["--fused-sgd"], ["--momentum", "0.9"]):
        assert train.main(["--repo", missing, *options, "--out", str(tmp_path)]) == 2
        error = capsys.readouterr().err
        assert "no-repo" in error and "--fused-sgd with" not in error


def test_coordinate_descent_tunes_inductor_only_while_active() -> None:
    """The knob sets inductor's coordinate-descent tuning for as long as the run's compiled graphs may compile,
    and leaves it as it found it; train.py's option of the same name chooses it."""
    import torch._inductor.config as inductor

    from harness.train import parse_args

    choices = KernelChoices.parse(["coordinate-descent", "aten-max-pool"])
    assert choices.names == ["aten-max-pool", "coordinate-descent"] and choices.train_args[-1] == "--coordinate-descent"
    before = inductor.coordinate_descent_tuning
    with choices.active():
        assert inductor.coordinate_descent_tuning is True
    assert inductor.coordinate_descent_tuning == before
    with KernelChoices().active():
        assert inductor.coordinate_descent_tuning == before
    assert parse_args(["--repo", "r", "--coordinate-descent"])[0].kernels == KernelChoices(coordinate_descent=True)
