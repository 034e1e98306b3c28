"""Pure loss functions, each citing its paper and formula; the DPO family also as config-chosen
objects (`dpo_variants`)."""
from prefpipe.losses.dpo_variants import DPO_VARIANTS, DPOLoss, DPOOutput, dpo_variant
from prefpipe.losses.policy_gradient import (
    KL_ESTIMATORS,
    clipped_value_loss,
    entropy_from_logits,
    gae,
    group_advantages,
    kl_k1,
    kl_k2,
    kl_k3,
    masked_mean,
    ppo_policy_loss,
    whiten,
)
from prefpipe.losses.preference import (
    bradley_terry_loss,
    dpo_loss,
    hinge_loss,
    ipo_loss,
    preference_logits,
    robust_dpo_loss,
    simpo_loss,
)

__all__ = ["DPO_VARIANTS", "KL_ESTIMATORS", "DPOLoss", "DPOOutput", "bradley_terry_loss",
           "clipped_value_loss", "dpo_loss", "dpo_variant", "entropy_from_logits", "gae",
           "group_advantages", "hinge_loss", "ipo_loss", "kl_k1", "kl_k2", "kl_k3", "masked_mean",
           "ppo_policy_loss", "preference_logits", "robust_dpo_loss", "simpo_loss", "whiten"]
