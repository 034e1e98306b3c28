"""Pure loss functions, each citing its paper and formula."""
from prefpipe.losses.preference import bradley_terry_loss, dpo_loss

__all__ = ["bradley_terry_loss", "dpo_loss"]
