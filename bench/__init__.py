"""The benchmark behind seed claim 1 ("async helps I/O, not CPU"): ``python -m bench``.

Separate from the spec: the spec proves *whether* requests overlap; this measures *how much* that
is worth, in requests per second and latency, for each kind of work, on real servers.
See docs/benchmarks/README.md for the method and the latest figures.
"""
