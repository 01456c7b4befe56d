"""Data: media decoding, mouth cropping, features, datasets and the demo corpus."""
