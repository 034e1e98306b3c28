"""Training loops: SFT, reward model, DPO."""
