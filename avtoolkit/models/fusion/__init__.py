"""Built-in fusion components; every module here registers itself on import."""
