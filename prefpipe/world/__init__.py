"""The embedded default world: prompts, a hidden gold preference, SFT corpus and tokenizer."""
