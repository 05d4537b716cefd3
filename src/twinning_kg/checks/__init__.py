"""Stage 3, checks: SHACL shapes (pyshacl, and pyshacl-turbo at world scale), the claims
audit and check-links. They read the graph; they never write a release."""
