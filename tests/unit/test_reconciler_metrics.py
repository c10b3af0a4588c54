"""Every label value the controller can count is exported at 0 before the first count."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from reconciler import metrics
from reconciler.core import errors as core_errors
from store import errors as store_errors

pytestmark = pytest.mark.unit


def _refusal_classes() -> list[type[store_errors.PermanentError]]:
    return [
        obj
        for module in (store_errors, core_errors)
        for obj in vars(module).values()
        if isinstance(obj, type) and issubclass(obj, store_errors.PermanentError)
    ]


def test_every_refusal_reason_is_exported_at_zero() -> None:
    metrics.publish_zeroes()
    reasons = {cls.reason for cls in _refusal_classes()}
    assert {"PoolExhausted", "AddressInUse", "AmbiguousSubnet", "NoProvider"} <= reasons
    for reason in reasons:
        value = REGISTRY.get_sample_value("nicpool_allocation_errors_total", {"reason": reason})
        assert value is not None, reason


def test_nad_reasons_and_retry_operations_are_exported() -> None:
    metrics.publish_zeroes()
    for error in core_errors.NAD_REFUSALS:
        labels = {"reason": error.reason}
        assert REGISTRY.get_sample_value("nicpool_nad_errors_total", labels) is not None
    for operation in ("allocate", "release", "put_subnet", "delete_subnet", "annotate_pod"):
        labels = {"operation": operation}
        assert REGISTRY.get_sample_value("nicpool_retries_total", labels) is not None


def test_a_new_refusal_class_is_picked_up_without_a_list_to_edit() -> None:
    assert len(core_errors.refusal_reasons()) == len({c.reason for c in _refusal_classes()})
