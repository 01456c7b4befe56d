"""avtoolkit-resnet: the 3D-conv + ResNet-18 video frontend as an avtoolkit plugin.

Nothing is imported here on purpose: avtoolkit lists plugins from their entry-point
metadata and imports :mod:`avtoolkit_resnet.encoder` only when the component is used.
"""

__version__ = "0.1.0"
