"""Built-in datasets components; every module here registers itself on import."""
