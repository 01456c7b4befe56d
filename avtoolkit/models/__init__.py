"""Model parts (encoders, fusion, backends, heads) and the assembler that wires them."""

from avtoolkit.models.assemble import AVModel, assemble
from avtoolkit.models.contract import Backend, Encoder, Fusion, Head, lengths_to_mask

__all__ = ["AVModel", "Backend", "Encoder", "Fusion", "Head", "assemble", "lengths_to_mask"]
