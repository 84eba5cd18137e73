"""Encoders and decoders: plain nn.Modules that know nothing about losses or training."""

from torch import nn

from disent.nets.conv64 import ConvDecoder, ConvEncoder
from disent.nets.mlp import MLPDecoder, MLPEncoder

ENCODERS = {"conv": ConvEncoder, "mlp": MLPEncoder}
DECODERS = {"conv": ConvDecoder, "mlp": MLPDecoder}


def build_encoder_decoder(
    name: str, observation_shape: tuple[int, int, int], latent_dim: int, **kwargs
) -> tuple["ConvEncoder | MLPEncoder", "ConvDecoder | MLPDecoder"]:
    """The encoder/decoder pair called `name` for observations of shape (C, H, W)."""
    if name not in ENCODERS:
        raise ValueError(f"unknown net '{name}': choose one of {sorted(ENCODERS)} (model.net=...)")
    encoder = ENCODERS[name](observation_shape, latent_dim, **kwargs)
    decoder = DECODERS[name](observation_shape, latent_dim, **kwargs)
    return encoder, decoder


INITS = ("glorot",)  # model.init; null keeps PyTorch's default init


def initialise(module: nn.Module, init: str | None) -> None:
    """Re-initialise every conv and linear layer of `module` as `init` says. "glorot": as
    disentanglement_lib's nets, TensorFlow's default (Glorot-uniform weights, zero biases). None:
    PyTorch's default (weights and biases uniform in ±1/√fan_in), which leaves a deep net's outputs
    nearly the same for every input at the start."""
    if init is None:
        return
    if init not in INITS:
        raise ValueError(
            f"unknown init {init!r}: choose one of {list(INITS)} or null (model.init=...)"
        )
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
            nn.init.xavier_uniform_(layer.weight)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)


__all__ = [
    "ConvEncoder",
    "ConvDecoder",
    "MLPEncoder",
    "MLPDecoder",
    "build_encoder_decoder",
    "initialise",
]
