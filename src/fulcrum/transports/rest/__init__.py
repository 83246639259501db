"""REST door (FastAPI): parse, authorise, call a service, map errors."""
