"""`python -m edge_runtime` is the `edge-runtime` command."""

from edge_runtime.cli import main

main()
