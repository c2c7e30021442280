"""Multi-task learning with gated blocks: which nodule characteristics share features (issue 7)."""
