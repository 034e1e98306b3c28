"""Model loading, prompt formatting, generation and log-probs."""
