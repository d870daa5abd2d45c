import JSONKit
import NATSClient

extension JetStreamPublisher {
    /// The relay's publisher: acknowledgements read in place with JSONKit's reader.
    package static func forViews(connection: NATSConnection, stream: String) throws -> JetStreamPublisher {
        try JetStreamPublisher(connection: connection, stream: stream, readAck: { quickAck($0) })
    }

    /// `{"stream":"…","seq":N[,"duplicate":true|false][,"domain":"…"]}` → stored; nil for anything else.
    static func quickAck(_ bytes: [UInt8]) -> PublishResult? {
        guard let fields = try? JSONReader.members(of: bytes, maxDepth: 257) else { return nil }
        var sequence: UInt64?
        var duplicate = false
        for (key, range) in fields {
            switch key {
            case "seq":
                guard let value = try? JSONReader.read(bytes[range], { (r: inout JSONReader) throws(JSONReadError) in try r.readIntegerLiteral() }), value >= 0 else {
                    return nil
                }
                sequence = UInt64(value)
            case "duplicate":
                let token = bytes[range]
                if token.elementsEqual("true".utf8) { duplicate = true } else if !token.elementsEqual("false".utf8) { return nil }
            case "stream", "domain":
                continue
            default:
                return nil
            }
        }
        return sequence.map { .stored(sequence: $0, duplicate: duplicate) }
    }

}
