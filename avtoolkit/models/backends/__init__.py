"""Built-in backends components; every module here registers itself on import."""
