"""Encoders and decoders: plain nn.Modules that know nothing about losses or training."""

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


__all__ = ["ConvEncoder", "ConvDecoder", "MLPEncoder", "MLPDecoder", "build_encoder_decoder"]
