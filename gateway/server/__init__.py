"""How the gateway is served over HTTP (uvicorn protocol and connection deadlines)."""
