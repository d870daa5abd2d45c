import Crypto

/// Tenants hashed to a fixed number of partitions: the unit of projection and relay work a controller owns
/// (`PartitionOwnership`). The same function exists in Swift (`partition(of:)`, for a NOTIFY's tenant, without a
/// query) and in SQL (`sqlExpression(tenantColumn:)`, for the relay's claim): the first 32 bits of the MD5 of the
/// tenant id's UTF-8 bytes, big-endian, modulo the count. MD5 only because PostgreSQL has it built in; nothing here
/// needs a cryptographic hash, only the same spread in both places.
public struct TenantPartitions: Sendable, Equatable, Hashable {
    /// Partitions; every controller on a database must use the same count (it is part of the lock keys, so
    /// controllers with another count balance among themselves: see `PartitionOwnership`).
    public let count: Int

    /// 16: enough to spread over a handful of controllers (ceil(16 / 3) = 6), few enough that each controller's
    /// ownership round trip stays one small statement.
    public static let standard = TenantPartitions(count: 16)

    public init(count: Int) {
        precondition(count >= 1 && count <= 1_024, "partition count must be 1…1024")
        self.count = count
    }

    /// The partition of `tenant` (0..<count).
    public func partition(of tenant: String) -> Int {
        let digest = Array(Insecure.MD5.hash(data: Array(tenant.utf8)))
        let high = UInt32(digest[0]) << 24 | UInt32(digest[1]) << 16 | UInt32(digest[2]) << 8 | UInt32(digest[3])
        return Int(high % UInt32(count))
    }

    /// The same function in SQL, on a text column or expression (e.g. `o.tenant_id`).
    public func sqlExpression(tenantColumn: String) -> String {
        "((('x' || left(md5(\(tenantColumn)), 8))::bit(32)::int8 % \(count))::int4)"
    }

    /// Every partition.
    public var all: Set<Int> { Set(0..<count) }
}
