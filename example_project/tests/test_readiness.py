"""Readiness tests of the digits classifier for its edge deployment."""

import pytest


@pytest.mark.device_fit(model="optimized")
def test_optimized_fits(deploy_device):
    """The int8 model alone: the fit is checked for every device in the table."""


@pytest.mark.device_fit(model=["baseline", "optimized"])
def test_shadow_pair_fits(deploy_device):
    """During rollout both models run side by side on the device (shadow mode)."""


def test_target_keeps_the_model_offline(deploy_target, deploy_config):
    """The target must serve without network: the optimized model requires it."""
    assert deploy_config.model("optimized").requires_offline
    assert deploy_target.offline, f"{deploy_target.name} is not offline-capable"
