"""Small helpers shared by the engine, the data and the CLI."""
