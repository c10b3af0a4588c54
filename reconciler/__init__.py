"""nicpool's controller: Kubernetes objects in, etcd leases and pod annotations out.

``reconciler.core`` is the pure part (annotation parsing, NAD -> provider ->
subnet resolution, planning, retention and GC decisions); ``reconciler.kube``
is the only package that talks to the Kubernetes API.
"""
