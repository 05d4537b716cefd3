"""The web application: SPARQL endpoint, linked data, publication."""
