"""Model registry for the benchmark: the paper's ShortCNN and InceptionV3 (timm).

``shortcnn`` (Sumbul et al. 2019, Fig. 3 of the paper): conv 5x5, 32 -> max-pool 2 -> conv 5x5, 32 -> max-pool 2
-> conv 3x3, 64 -> linear, ReLU after each conv, "same" padding, Xavier-uniform init, zero biases.  For RGB
120x120 and 43 classes it has exactly 2,523,403 trainable parameters (the paper's count).

``inception_v3``: timm's Inception-v3; inputs are resized to 299x299 (bilinear) inside the model.  ImageNet
weights come from a local file (``weights=PATH``: a timm/torchvision state dict) or, when the Hub is reachable,
from timm's pretrained tag (one timm lists for ``inception_v3``, else :class:`ben_hub.errors.WeightsError`);
otherwise the model starts from random init.  ``weights_origin`` says which.  For 43 classes it has 21,873,675
trainable parameters, as torchvision's without its auxiliary head.  The paper's 25,200,371 is exactly
torchvision's ``inception_v3`` with ImageNet weights, its 1000-class auxiliary head kept and only the main
``fc`` replaced by 43 outputs (tested): that head cannot have been trained on 43 labels, so the network that
learned is this one, with the same torchvision ImageNet weights as timm's ``tv_in1k`` tag.
"""

from __future__ import annotations

import pickle
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


class ShortCNN(nn.Module):
    def __init__(self, in_channels: int, num_classes: int, size: int = 120) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
        )  # fmt: skip
        self.classifier = nn.Linear(64 * (size // 4) ** 2, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d | nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


class Resized(nn.Module):
    """Resize inputs (bilinear) before the wrapped model: Inception-v3 expects 299x299."""

    def __init__(self, model: nn.Module, size: int) -> None:
        super().__init__()
        self.model, self.size = model, size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.size:
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
        return self.model(x)


class PaddedStemConv(nn.Conv2d):
    """A convolution whose input channels are padded with zeros to ``padded_channels`` before it runs, its weight
    likewise (the zero input channels meet zero weights): the same sums, so the same outputs and the same gradients
    for the stored weight, which keeps its shape (parameters, state dict and checkpoints as before).  3-channel
    NHWC inputs miss the 8-channel (16-byte) alignment of tensor-core convolution kernels; padded, they meet it."""

    padded_channels: int

    def _conv_forward(self, input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        extra = self.padded_channels - input.shape[1]
        channels_last = input.is_contiguous(memory_format=torch.channels_last) and not input.is_contiguous()
        input = F.pad(input, (0, 0, 0, 0, 0, extra))
        weight = F.pad(weight, (0, 0, 0, 0, 0, extra))
        if channels_last:  # keep NHWC whatever the pad returns
            input = input.contiguous(memory_format=torch.channels_last)
            weight = weight.contiguous(memory_format=torch.channels_last)
        return super()._conv_forward(input, weight, bias)


def pad_stem(model: nn.Module, channels: int) -> nn.Module:
    """``model`` with its first convolution (the stem) a :class:`PaddedStemConv` padding its inputs to
    ``channels`` (in place; returned for chaining).  ShortCNN's stem is 5x5 over the 3 RGB bands, InceptionV3's
    3x3, stride 2, over the same bands resized to 299.

    Raises:
        ValueError: when the stem has ``channels`` input channels or more, or is grouped.
    """
    stem = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    if stem is None or stem.groups != 1 or stem.in_channels >= channels:
        found = "no convolution" if stem is None else f"a stem of {stem.in_channels} channels, groups {stem.groups}"
        raise ValueError(f"cannot pad the stem to {channels} channels: {type(model).__name__} has {found}")
    stem.__class__ = PaddedStemConv
    object.__setattr__(stem, "padded_channels", channels)  # a plain int attribute, not a registered submodule
    return model


@dataclass(frozen=True)
class BuiltModel:
    model: nn.Module
    weights_origin: str  # "random", "file:<path>", "hub:<tag>"


def _unpickling_reason(err: Exception) -> str:
    """torch's ``weights_only`` refusal in one line, without its advice to load with ``weights_only=False``."""
    found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(err))
    if found:
        return (f"it holds a pickled {found.group(1)}, not only tensors, and ben-hub never runs pickled code; "
                "save the weights alone (torch.save(model.state_dict(), PATH)) or as .safetensors")  # fmt: skip
    detail = str(err).partition("WeightsUnpickler error:")[2].split("Check the documentation")[0].split()
    return f"not a torch file ({' '.join(detail) or 'unpickling failed'})"


def _load_failure(err: Exception) -> str:
    """Why a weights file could not be read, in the user's terms (torch's and safetensors' own words are long)."""
    if isinstance(err, pickle.UnpicklingError):
        return _unpickling_reason(err)
    if isinstance(err, EOFError):
        return "the file is empty"
    if "central directory" in str(err) or "zip archive" in str(err):
        return "a torch file cut short or damaged (its zip archive is incomplete); copy or download it again"
    first = str(err).splitlines()[0] if str(err) else type(err).__name__
    return f"not a weights file torch or safetensors can read ({first})"


def read_state_dict(path: str) -> dict[str, torch.Tensor]:
    """A state dict from a ``.safetensors`` file or a torch file (a plain state dict, or one under ``state_dict``
    or ``model`` as training scripts save it; ``module.`` prefixes of DataParallel/DDP removed)."""
    from ben_hub.errors import WeightsError

    try:
        if path.endswith(".safetensors"):
            from safetensors.torch import load_file

            state: Any = load_file(path)
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise WeightsError(f"{path}: {_load_failure(err)}") from err
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"{path}: holds no state dict (a mapping of parameter names to tensors)")
    return {k.removeprefix("module."): v for k, v in state.items()}


def load_weights(model: nn.Module, path: str, head: tuple[str, ...] = (), stem: str | None = None) -> None:
    """Load ``path`` into ``model``; keys starting with ``head`` (a classifier for other classes) are left at
    their initial values.  Every other parameter must be in the file with its shape, or nothing is loaded.

    ``stem``: the first convolution's weight; RGB ImageNet weights there are adapted to the model's number of
    input bands by timm's ``adapt_input_conv`` (channels repeated and rescaled).
    """
    from ben_hub.errors import WeightsError

    state = {k: v for k, v in read_state_dict(path).items() if not (head and k.startswith(head))}
    own = {k: v for k, v in model.state_dict().items() if not (head and k.startswith(head))}
    if stem in state and stem in own and state[stem].ndim == 4 and state[stem].shape[1] != own[stem].shape[1]:
        from timm.models import adapt_input_conv

        state[stem] = adapt_input_conv(own[stem].shape[1], state[stem], base_chans=state[stem].shape[1])
    missing = sorted(set(own) - set(state))
    wrong = sorted(k for k in own if k in state and state[k].shape != own[k].shape)
    if missing or wrong:
        example = ", ".join((missing + wrong)[:3])
        raise WeightsError(
            f"{path}: does not fit {type(model).__name__} ({len(missing)} parameters missing, {len(wrong)} of "
            f"another shape, e.g. {example}); pass weights saved from this architecture"
        )
    model.load_state_dict(state, strict=False)


def is_weights_file(weights: str) -> bool:
    """A path (separator or known suffix) rather than a timm pretrained tag such as ``tv_in1k``."""
    return "/" in weights or Path(weights).suffix in (".pt", ".pth", ".bin", ".safetensors") or Path(weights).exists()


def build_shortcnn(in_channels: int, num_classes: int, weights: str | None) -> BuiltModel:
    from ben_hub.errors import WeightsError

    model = ShortCNN(in_channels, num_classes)
    if weights:
        if not Path(weights).is_file():
            raise WeightsError(f"{weights}: no such weights file (ShortCNN takes a local state dict)")
        load_weights(model, weights)
        return BuiltModel(model, f"file:{weights}")
    return BuiltModel(model, "random")


def hub_unreachable() -> str | None:
    """Why the Hub cannot be reached at all, or ``None``: offline mode, or its host name does not resolve (no DNS,
    a mistyped ``HF_ENDPOINT``).  Then ``huggingface_hub`` would retry each file 5 times (23 s) before giving up."""
    from urllib.parse import urlparse

    from huggingface_hub import constants

    from ben_hub.hub import unresolvable

    if constants.HF_HUB_OFFLINE:
        return "HF_HUB_OFFLINE is set"
    host = urlparse(constants.ENDPOINT).hostname or constants.ENDPOINT
    try:
        socket.getaddrinfo(host, 443)
    except OSError as err:
        return f"{host} does not resolve" if unresolvable(err) else None
    return None


def cached_weights(name: str) -> str | None:
    """The local copy of timm's pretrained ``name`` (``inception_v3.tv_in1k``) in the Hub cache, if one is there."""
    import timm
    from huggingface_hub import try_to_load_from_cache

    config = timm.models.get_pretrained_cfg(name)
    repo = config.hf_hub_id if config else None
    for filename in ("model.safetensors", "pytorch_model.bin"):  # the files timm reads, in its order
        found = try_to_load_from_cache(repo, filename) if repo else None
        if isinstance(found, str):
            return found
    return None


def pretrained(name: str, in_channels: int, num_classes: int) -> BuiltModel | None:
    """timm's pretrained ``name`` from the Hub, or from its cached copy when the Hub cannot be reached (at once,
    without retries); ``None``, with a warning, when neither: the run starts from random init and records it."""
    import timm

    overlay, why = {}, hub_unreachable()
    if why is not None:
        cached = cached_weights(name)
        if cached is None:
            print(f"warning: no ImageNet weights {name}: the Hub cannot be reached ({why}) and none are cached; "
                  "random init (give --weights PATH for a local copy)")  # fmt: skip
            return None
        overlay = {"file": cached}
    try:
        model = timm.create_model(name, pretrained=True, num_classes=num_classes, in_chans=in_channels,
                                  pretrained_cfg_overlay=overlay)  # fmt: skip
    except Exception as err:
        print(f"warning: could not fetch ImageNet weights {name} ({err}); random init")
        return None
    return BuiltModel(Resized(model, 299), f"hub:{name}")


def build_inception_v3(in_channels: int, num_classes: int, weights: str | None) -> BuiltModel:
    import timm

    from ben_hub.errors import WeightsError

    if weights and is_weights_file(weights):
        if not Path(weights).is_file():
            raise WeightsError(f"{weights}: no such weights file; give a local file or a timm tag such as tv_in1k")
        model = timm.create_model("inception_v3", pretrained=False, num_classes=num_classes, in_chans=in_channels)
        load_weights(model, weights, head=("fc.", "AuxLogits."), stem="Conv2d_1a_3x3.conv.weight")
        return BuiltModel(Resized(model, 299), f"file:{weights}")
    if weights:  # a timm pretrained tag, e.g. "tv_in1k": needs the Hub
        tags = [name.partition(".")[2] for name in timm.list_pretrained("inception_v3.*")]
        if weights not in tags:
            raise WeightsError(f"{weights}: neither a weights file nor a timm pretrained tag of inception_v3; give a "
                               f"local file or one of {', '.join(tags)}")  # fmt: skip
        found = pretrained(f"inception_v3.{weights}", in_channels, num_classes)
        if found is not None:
            return found
    model = timm.create_model("inception_v3", pretrained=False, num_classes=num_classes, in_chans=in_channels)
    return BuiltModel(Resized(model, 299), "random")


MODELS: dict[str, Callable[[int, int, str | None], BuiltModel]] = {
    "shortcnn": build_shortcnn,
    "inception_v3": build_inception_v3,
}


def build_model(name: str, in_channels: int, num_classes: int, weights: str | None = None) -> BuiltModel:
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    return MODELS[name](in_channels, num_classes, weights)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
