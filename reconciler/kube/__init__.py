"""The only package that talks to the Kubernetes API (import-linter contract).

``config`` turns a kubeconfig (or the in-cluster service account) into a
:class:`~reconciler.kube.client.KubeClient`; ``client`` does REST with plain
JSON dicts (the generated models cost more CPU than the IPAM itself);
``errors`` translates HTTP failures into nicpool's Permanent/Temporary
errors in one place; ``informer`` is list-then-watch with relist on 410.
"""
