"""The web application: SPARQL endpoint, linked data, catalog and VoID, audit."""
