"""Small helpers every app shares, with no Django and nothing of ours.

The bottom of the dependency picture (docs/architecture.md): the apps and
the action processes import from here; this package imports only the
standard library, so an action process stays light and nothing here can
pull a model in by accident (tests/test_boundaries.py checks both).

- ``canonical``: the one JSON encoding that hashes and signatures cover.
- ``limits``: bounds on the nesting depth of untrusted JSON and YAML.
- ``nul``: find a NUL character in JSON-like data, naming where it is.
- ``redaction``: mask secret values before anything is shown or stored.
"""
