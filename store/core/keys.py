"""The key layout under the configurable prefix (default ``/nicpool/v1/``).

::

    <prefix>format                                 "1": the record format of this prefix
    <prefix>election/<lease-id>                    one key per campaigning replica
    <prefix>subnets/<subnet>/spec                  the validated SubnetSpec (JSON)
    <prefix>subnets/<subnet>/bitmap/<4|6>/<chunk>  512-byte allocation bitmap chunk
    <prefix>subnets/<subnet>/cursor/<4|6>          next-fit cursor (last offset handed out)
    <prefix>subnets/<subnet>/cooling/<4|6>/<chunk> when that chunk's addresses were freed (JSON)
    <prefix>subnets/<subnet>/generation/<4|6>      rewritten by every allocation or release
    <prefix>subnets/<subnet>/leases/<ip>           Lease record per address
    <prefix>subnets/<subnet>/macs/<mac>            MAC index: the attachment key holding it
    <prefix>subnets/<subnet>/vips/<vip>            the pod NIC attachment key borrowing a Vip
    <prefix>attachments/<ns>/<pod>/<provider>      Attachment record per pod NIC (owner index)
    <prefix>attachments/<ns>/<pod>/<provider>@<if> ... of each NIC of a provider attached twice
    <prefix>owners/ipamclaim/<ns>/<claim>          OwnerRecord of an IPAMClaim's addresses
    <prefix>owners/vm/<ns>/<vm>/<provider>[@<if>]  OwnerRecord of a VM NIC's addresses
    <prefix>attachments/_vip/<vip>/vip             a Vip's reservation (``store.core.vips``)

The version lives in the prefix, so a future format can be written beside
the old one and migrated. Chunk numbers are zero-padded hex so a prefix scan
returns them in order.
"""

from __future__ import annotations

from dataclasses import dataclass

from store.core.identity import (
    IPAMCLAIM,
    VIRTUAL_MACHINE,
    AttachmentRef,
    Family,
    Mac,
    OwnerRef,
    PodRef,
    Provider,
    SubnetName,
)

FORMAT_VERSION = "1"


@dataclass(frozen=True)
class Keys:
    prefix: str

    def __post_init__(self) -> None:
        if not self.prefix.startswith("/") or not self.prefix.endswith("/"):
            raise ValueError(f"etcd prefix {self.prefix!r} must start and end with '/'")

    @property
    def format(self) -> str:
        return f"{self.prefix}format"

    @property
    def election(self) -> str:
        return f"{self.prefix}election/"

    @property
    def subnets(self) -> str:
        return f"{self.prefix}subnets/"

    def subnet(self, name: SubnetName) -> str:
        return f"{self.prefix}subnets/{name}/"

    def spec(self, name: SubnetName) -> str:
        return f"{self.subnet(name)}spec"

    def bitmap(self, name: SubnetName, family: Family) -> str:
        return f"{self.subnet(name)}bitmap/{family}/"

    def chunk(self, name: SubnetName, family: Family, index: int) -> str:
        return f"{self.bitmap(name, family)}{index:012x}"

    def cooling(self, name: SubnetName, family: Family, index: int | None = None) -> str:
        """The release times beside bitmap chunk ``index`` (``store.core.cooldown``);
        without ``index``, the prefix of the family's records."""
        base = f"{self.subnet(name)}cooling/{family}/"
        return base if index is None else f"{base}{index:012x}"

    def cursor(self, name: SubnetName, family: Family) -> str:
        return f"{self.subnet(name)}cursor/{family}"

    def generation(self, name: SubnetName, family: Family) -> str:
        """Touched by every transaction that changes the family's leases, so a
        CIDR change can compare "no lease of that family came or went since I
        counted them" without contending with allocations in other families."""
        return f"{self.subnet(name)}generation/{family}"

    def leases(self, name: SubnetName) -> str:
        return f"{self.subnet(name)}leases/"

    def lease(self, name: SubnetName, ip: str) -> str:
        return f"{self.leases(name)}{ip}"

    def mac(self, name: SubnetName, mac: Mac) -> str:
        return f"{self.subnet(name)}macs/{mac}"

    def vip_binding(self, name: SubnetName, vip: str) -> str:
        """Which pod NIC borrows the Vip's address (absent while the Vip is unused)."""
        return f"{self.subnet(name)}vips/{vip}"

    @property
    def attachments(self) -> str:
        return f"{self.prefix}attachments/"

    def attachment(self, ref: AttachmentRef) -> str:
        # "@" appears in no provider, pod name or interface name nicpool accepts.
        nic = f"{ref.provider}@{ref.interface}" if ref.interface else ref.provider
        return f"{self.attachments}{ref.pod.namespace}/{ref.pod.name}/{nic}"

    def attachment_ref(self, key: str) -> AttachmentRef:
        """Inverse of :meth:`attachment`."""
        namespace, name, nic = key[len(self.attachments) :].split("/", 2)
        provider, _, interface = nic.partition("@")
        return AttachmentRef(PodRef(namespace, name), Provider(provider), interface)

    def pod_attachments(self, pod: PodRef) -> str:
        return f"{self.attachments}{pod.namespace}/{pod.name}/"

    @property
    def owners(self) -> str:
        return f"{self.prefix}owners/"

    def owner(self, ref: OwnerRef) -> str:
        if ref.kind == IPAMCLAIM:
            return f"{self.owners}ipamclaim/{ref.namespace}/{ref.name}"
        return f"{self.vm_owners(ref.namespace, ref.name)}{ref.nic}"

    def vm_owners(self, namespace: str, name: str) -> str:
        """Every NIC's owner record of one VM (a VM has one per NIC)."""
        return f"{self.owners}vm/{namespace}/{name}/"

    def owner_ref(self, key: str) -> OwnerRef:
        """Inverse of :meth:`owner`."""
        kind, namespace, rest = key[len(self.owners) :].split("/", 2)
        if kind == "ipamclaim":
            return OwnerRef(IPAMCLAIM, namespace, rest)
        name, nic = rest.split("/", 1)
        return OwnerRef(VIRTUAL_MACHINE, namespace, name, nic)

    def holder_key(self, ref: AttachmentRef, owner: OwnerRef | None) -> str:
        """What leases and the MAC index point at: the owner's record, else the NIC's."""
        return self.attachment(ref) if owner is None else self.owner(owner)
