"""Built-in heads components; every module here registers itself on import."""
