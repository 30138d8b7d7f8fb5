"""The PostgreSQL warehouse: which server, connections, the platform's schemas."""
