"""Stage 4, release: the release directory (store, dumps, DCAT catalog, VoID, manifest),
its date, the reader the server opens it with, leases, and pushing it to a remote store."""
