"""Mouth regions of interest: landmark detection, alignment to a mean face, contact sheets."""
