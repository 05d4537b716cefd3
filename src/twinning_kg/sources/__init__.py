"""Stage 1, sources: Turtle files and outside data read into named graphs.

Nothing here knows about the graph steps, the checks or the release that follow.
"""
