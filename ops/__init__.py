"""Operations: deploy manifests, monitoring, the demo, and the lab they all start from."""
