"""Stage 2, graph: what is derived from the loaded sources before anything checks it
(lifecycle shortcuts, `tw:twinnedWith`, prefixes, quads for Oxigraph) and the queries over
claims that every later stage runs the same way."""
