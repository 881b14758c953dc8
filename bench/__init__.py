"""`python -m bench` (`make bench`): each pipeline stage measured against its own ceiling in the same run.

Every figure is a ratio between a stage of the product and the plainest thing that does the same
I/O on the same machine, the same broker and the same store, on the same payloads, over several
alternating rounds (medians reported). Absolute numbers are recorded too, but only the ratios are
meant to be compared between machines.
"""
