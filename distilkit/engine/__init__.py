"""One engine for every command: trainer (fit), validator (evaluate), inference, checkpoints."""
