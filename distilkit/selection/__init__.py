"""Sample selection: which training images an epoch uses, and how strongly each is distilled (SAKD)."""
