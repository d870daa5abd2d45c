import PostgresClient
import RouteModel

/// Reads `SELECT seq, type, data FROM events …` and decodes each row from the result's memory: no
/// `String` per cell and no row arrays (the generic `PostgresRows` copy was ~6% of the rebuild's CPU).
enum EventRowReader {
    static func read(_ s: PostgresSession, _ sql: String, _ parameters: [String], tenant: String) throws -> [SequencedEvent] {
        try s.withResult(sql, parameters) { cells in
            let count = cells.rowCount
            guard cells.columnCount == 3 else { throw ProjectionError.invalidResponse("malformed event row of tenant \(tenant)") }
            var out: [SequencedEvent] = []
            out.reserveCapacity(count)
            for r in 0..<count {
                guard !cells.isNull(r, 0), !cells.isNull(r, 1), !cells.isNull(r, 2), let seq = cells.int64(r, 0) else {
                    throw ProjectionError.invalidResponse("malformed event row of tenant \(tenant)")
                }
                let type = cells.string(r, 1)
                let data = Array(cells.bytes(r, 2))
                do throws(EventDecodingError) {
                    out.append(SequencedEvent(sequence: seq, event: try RouteEvent.decode(type: type, json: data)))
                } catch {
                    throw ProjectionError.undecodableEvent(tenant: tenant, sequence: seq, type: type, reason: error.description)
                }
            }
            return out
        }
    }
}
