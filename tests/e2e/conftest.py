"""The e2e tier reuses the controller tier's real control plane fixtures."""

from tests.controller.conftest import control_plane, kube_namespace  # noqa: F401
