"""containerd (Debian's 1.6 with Debian's runc) and the cluster's CNI configuration.

containerd runs in the node's network and mount namespaces with its root in
the lab and its state under the node's ``/run/containerd`` (a lab directory,
see :mod:`ops.node.mounts`; shims put their sockets there). Settings that are
not the defaults, and why:

* ``restrict_oom_score_adj``: the sandbox's ``oom_score_adj`` of -998 needs
  CAP_SYS_RESOURCE, which this machine's bounding set lacks; runc then fails
  with ``can't get final child's PID from pipe: EOF``. Restricted, the
  score is never set below containerd's own.
* ``netns_mounts_under_state_dir``: pod network namespaces are pinned under
  the state dir, not the machine's /run/netns.
* ``sandbox_image``: the pause image built by ``ops/tools/build-images.sh``
  and imported with ``ctr``; nothing is ever pulled.

The cluster network is Multus (thin plugin) with one delegate, a single
``bridge`` + ``host-local`` plugin (not a conflist: Multus v4.2.2 passes a
stripped conflist on DEL, ``bridge ... failed (delete): no IP ranges
specified``, multus-cni #1449, and pods stay Terminating). ``isGateway``
gives pods a default route through ``cni0`` to the node namespace (where
the apiserver and nicpool's etcd listen); the ``ip_forward`` it enables is
the node namespace's own.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from ops.node.layout import POD_CIDR, Layout
from ops.node.pki import kubeconfig

PAUSE_IMAGE = "localhost/nicpool-pause:3.10"
BUSYBOX_IMAGE = "localhost/busybox:1.35"
NICPOOL_IMAGE = "localhost/nicpool:0.1.0"
REFERENCE_PLUGINS = Path(os.environ.get("NICPOOL_CNI_PLUGINS", "/usr/lib/cni"))
NAMESPACE = "k8s.io"
"""containerd namespace of the CRI plugin: images must be imported there."""


def containerd_config(layout: Layout) -> str:
    root = layout.containerd_dir
    return f"""\
version = 2
root = "{root / "root"}"
state = "/run/containerd"
disabled_plugins = [
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
]

[grpc]
  address = "/run/containerd/containerd.sock"

[plugins."io.containerd.internal.v1.opt"]
  path = "{root / "opt"}"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"

  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"

    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false

  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/opt/cni/bin"
    conf_dir = "{layout.cni_conf}"
    max_conf_num = 1
"""


def containerd_argv(layout: Layout) -> list[str]:
    config = layout.containerd_dir / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(containerd_config(layout))
    return ["containerd", "--config", str(config)]


def cluster_network(layout: Layout) -> dict[str, object]:
    return {
        "cniVersion": "0.3.1",
        "name": "nicpool-lab",
        "type": "bridge",
        "bridge": "cni0",
        "isGateway": True,
        "ipMasq": False,
        "ipam": {
            "type": "host-local",
            "subnet": POD_CIDR,
            "routes": [{"dst": "0.0.0.0/0"}],
            "dataDir": str(layout.root / "cni" / "host-local"),
        },
    }


def install_cni(layout: Layout, *, multus: Path, server: str, token: str) -> None:
    """Plugins into the node's /opt/cni/bin, Multus's config into containerd's conf dir."""
    layout.cni_bin.mkdir(parents=True, exist_ok=True)
    for plugin in sorted(REFERENCE_PLUGINS.iterdir()):
        link = layout.cni_bin / plugin.name
        if not link.exists():
            link.symlink_to(plugin)
    (layout.cni_bin / "multus").unlink(missing_ok=True)
    (layout.cni_bin / "multus").symlink_to(multus)
    layout.node_kubeconfigs.mkdir(parents=True, exist_ok=True)
    multus_kubeconfig = layout.node_kubeconfigs / "multus.kubeconfig"
    multus_kubeconfig.write_text(
        kubeconfig(server, layout.pki / "ca.crt", "nicpool-lab:multus", token)
    )
    cache = layout.root / "cni" / "multus"
    cache.mkdir(parents=True, exist_ok=True)
    layout.cni_conf.mkdir(parents=True, exist_ok=True)
    config = {
        "cniVersion": "0.3.1",
        "name": "multus-cni-network",
        "type": "multus",
        "kubeconfig": str(multus_kubeconfig),
        "cniDir": str(cache),
        "binDir": "/opt/cni/bin",
        "logLevel": "verbose",
        "logFile": str(layout.logs / "multus.log"),
        "delegates": [cluster_network(layout)],
    }
    (layout.cni_conf / "00-multus.conf").write_text(json.dumps(config, indent=2) + "\n")


def ctr(layout: Layout, *args: str, timeout: float = 300) -> str:
    """``ctr`` against the node's containerd, in the CRI namespace."""
    argv = ["ctr", "--address", str(layout.containerd_socket), "--namespace", NAMESPACE, *args]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode:
        raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip()}")
    return done.stdout


def import_image(layout: Layout, archive: Path) -> None:
    ctr(layout, "images", "import", str(archive))


def images(layout: Layout) -> set[str]:
    return set(ctr(layout, "images", "list", "--quiet").split())


def tag_image(layout: Layout, source: str, target: str) -> None:
    """A second name for an imported image (an "upgrade" without a registry)."""
    ctr(layout, "images", "tag", "--force", source, target)


def tasks(layout: Layout) -> dict[str, int]:
    """Running containers: containerd id -> host pid."""
    found = {}
    for line in ctr(layout, "tasks", "list").splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 2 and fields[1].isdigit():
            found[fields[0]] = int(fields[1])
    return found
