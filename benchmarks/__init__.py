"""The avtoolkit benchmark harness: ``python benchmarks/run.py [--quick]`` (``make bench``)."""
