"""The views: one module per kind of resource, each a set of `async (Request) -> Response`
functions that `web.app._routes` lists (Datasette's layout)."""
