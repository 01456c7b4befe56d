"""Built-in encoders components; every module here registers itself on import."""
