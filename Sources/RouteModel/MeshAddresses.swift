/// The tenant's mesh range and the addresses peers take in it.
///
/// NetBird gives each account a network (`types.NewNetwork`: a random /16 of 100.64.0.0/10) and allocates a peer's
/// address in it (`AllocatePeerIP`: random tries, then the lowest free, network and broadcast addresses reserved).
/// Routeplane allocates the lowest free host address instead: the choice is a pure function of the tenant's state, so
/// the write path decides it inside `decide` against the state the append lands on, and two controllers enrolling at
/// once can never hand out the same address (the second is decided again on the state that holds the first).
public enum MeshAddresses {
    /// Routeplane's default mesh range: the whole shared address space of RFC 6598, as NetBird's global network.
    public static let defaultRange = try! Prefix(parsing: "100.64.0.0/10")

    /// Why an address cannot be a peer's mesh address in `range`; nil when it can (free and a host address in it).
    public static func refusal(_ address: IPAddress, in range: Prefix, state: TenantState) -> ValidationError? {
        guard range.contains(address) else {
            return .invalid("ip", "ip \(address) is outside the tenant's mesh range \(range)")
        }
        if range.isV4 && range.length <= 30 {
            let size = UInt64(1) << UInt64(32 - range.length)
            let offset = (address.low & 0xFFFF_FFFF) - (range.address.low & 0xFFFF_FFFF)
            if offset == 0 || offset == size - 1 {
                return .invalid("ip", "ip \(address) is the network or broadcast address of the mesh range \(range)")
            }
        }
        if let other = state.peer(meshIP: address) {
            return .conflict("ip", "mesh ip \(address) is already used by peer \(other)")
        }
        return nil
    }

    /// The lowest free host address of `range` (network and broadcast addresses excluded), or nil when every one is
    /// taken. IPv4 ranges of /30 or wider only. Probes at most one address per peer plus one: each taken candidate is
    /// a peer's address.
    public static func firstFree(in range: Prefix, state: TenantState) -> IPAddress? {
        guard range.isV4, range.length <= 30 else { return nil }
        let base = UInt32(truncatingIfNeeded: range.address.low)
        let size = UInt64(1) << UInt64(32 - range.length)
        var offset: UInt64 = 1
        while offset < size - 1 {
            let candidate = IPAddress(v4: base &+ UInt32(offset))
            if state.peer(meshIP: candidate) == nil { return candidate }
            offset += 1
        }
        return nil
    }

    /// The address a peer enrolling with a setup key gets: the one it reported (checked), else the lowest free one.
    static func choose(reported: String?, in range: Prefix, state: TenantState) throws(ValidationError) -> IPAddress {
        guard let reported, !reported.isEmpty else {
            guard range.isV4, range.length <= 30 else {
                throw .invalid("ip", "the tenant's mesh range \(range) is not an IPv4 range of /30 or wider: report an ip")
            }
            guard let free = firstFree(in: range, state: state) else {
                throw ValidationError(.preconditionFailed, field: "ip", "the tenant's mesh range \(range) has no free address")
            }
            return free
        }
        if reported.utf8.count > Limits.ipTextMaxBytes {
            throw .invalid("ip", "ip must be at most \(Limits.ipTextMaxBytes) characters, got \(reported.utf8.count)")
        }
        let address: IPAddress
        do {
            address = try IPAddress(parsing: reported)
        } catch {
            throw .invalid("ip", "invalid mesh ip \(error)")
        }
        if let refusal = refusal(address, in: range, state: state) { throw refusal }
        return address
    }
}

extension Limits {
    /// Longest `os` an agent may report (Unicode scalars). NetBird stores `PeerSystemMeta.OS` without a limit; its
    /// values are short words ("linux", "windows", "darwin"), 64 only bounds abuse.
    public static let osMaxScalars = 64
    /// Longest `ip` text accepted (the longest IPv6 text form is 45 characters).
    public static let ipTextMaxBytes = 64
}
