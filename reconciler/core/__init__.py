"""The controller's pure core: values in, values out; no clients, clock or logging.

Everything a user can get wrong in a manifest is decided here, so every
refusal is a typed :class:`store.errors.PermanentError` subclass whose
``reason`` becomes the Kubernetes Event reason and the metric label.
"""
