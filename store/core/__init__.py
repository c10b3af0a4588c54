"""Pure core of the store: no etcd, clock, logging or metrics in here."""
