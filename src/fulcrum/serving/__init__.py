"""Serving HTTP in any Fulcrum process: the embedded uvicorn server with its perimeter, and
the health endpoints. Used by the API's REST door and by the worker alike."""
