"""Stage 5, query: the `QueryEngine` contract and its engines (pyoxigraph worker processes,
a remote store), with the guard, the sandbox, the egress proxy, admission and result formats."""
