"""`edge-runtime bench`: what this machine can do, measured, and which tiers it should host.

One module per measurement (`hardware`, `models`, `generator`, `stt`, `nlu`, `mqtt`), each
returning `Figure`s and `Note`s (`results`); `runner` plans and runs the steps with a progress
line per step, `report` prints the table, writes the JSON and compares two runs, and
`recommend` turns the figures into hosting advice. `stats` and `child` are the small pieces
the benchmark scripts under `benchmarks/` share.

Importing this package loads nothing heavy: the benchmark scripts import `stats` from here.
"""
