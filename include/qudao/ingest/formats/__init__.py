"""One module per delivered format: its reader, and how its records feed the row sink."""
