import BenchKit
import RouteModel
import Testing

@Suite struct PNGTests {
    @Test func crc32KnownValues() {
        #expect(CRC32.checksum(Array("123456789".utf8)) == 0xCBF4_3926)
        #expect(CRC32.checksum([UInt8]()) == 0)
        // The CRC every PNG's IEND chunk carries (over the type alone).
        #expect(CRC32.checksum(Array("IEND".utf8)) == 0xAE42_6082)
        var split = CRC32()
        split.update(Array("1234".utf8))
        split.update(Array("56789".utf8))
        #expect(split.value == 0xCBF4_3926)
    }

    @Test func adler32KnownValues() {
        #expect(Adler32.checksum(Array("Wikipedia".utf8)) == 0x11E6_0398)
        #expect(Adler32.checksum([]) == 1)
        // Long input crosses the 5,552-byte reduction boundary.
        let big = [UInt8](repeating: 0xFF, count: 100_000)
        var a: UInt64 = 1, b: UInt64 = 0
        for x in big { a = (a + UInt64(x)) % 65521; b = (b + a) % 65521 }
        #expect(Adler32.checksum(big) == UInt32(b << 16 | a))
    }

    static func samples() -> [[UInt8]] {
        var rng = SplitMix(seed: 3)
        let random = (0..<5_000).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let runs = (0..<70_000).map { i in UInt8((i / 300) % 3) }  // long runs: matches of 258 and long distances
        let text = Array(String(repeating: "the quick brown fox jumps over the lazy dog; ", count: 200).utf8)
        return [[], [42], [1, 2], random, runs, text, random + runs + text]
    }

    @Test(arguments: [Deflate.Mode.stored, .fixedHuffman])
    func zlibRoundTrips(mode: Deflate.Mode) throws {
        for data in Self.samples() {
            let stream = Deflate.zlib(data, mode: mode)
            #expect((Int(stream[0]) << 8 | Int(stream[1])) % 31 == 0)
            #expect(stream[0] & 0x0F == 8)
            let inflated = try Inflate.zlib(stream)
            #expect(inflated == data)
        }
    }

    @Test func fixedHuffmanCompressesRuns() {
        let white = [UInt8](repeating: 0, count: 1_000_000)
        #expect(Deflate.zlib(white).count < 10_000)
        #expect(Deflate.zlib(white, mode: .stored).count > 1_000_000)
    }

    @Test func pngStructure() throws {
        let palette = [PNG.RGB(255, 255, 255), PNG.RGB(200, 0, 0)]
        var pixels = [UInt8](repeating: 0, count: 7 * 5)
        pixels[3 * 7 + 4] = 1
        let file = PNG.encode(width: 7, height: 5, palette: palette, pixels: pixels)
        #expect(Array(file.prefix(8)) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        let chunks = try Chunks.parse(Array(file.dropFirst(8)))
        #expect(chunks.map(\.type) == ["IHDR", "PLTE", "IDAT", "IEND"])
        let ihdr = chunks[0].data
        #expect(ihdr == [0, 0, 0, 7, 0, 0, 0, 5, 8, 3, 0, 0, 0])
        #expect(chunks[1].data == [255, 255, 255, 200, 0, 0])
        let raw = try Inflate.zlib(chunks[2].data)
        #expect(raw.count == 5 * 8)
        // Filter byte 0, then the row's indices.
        #expect(Array(raw[3 * 8..<4 * 8]) == [0, 0, 0, 0, 0, 1, 0, 0])
        #expect(chunks[3].data.isEmpty)
    }
}

/// PNG chunks with their CRCs checked.
enum Chunks {
    struct Chunk { var type: String; var data: [UInt8] }
    struct Bad: Error {}

    static func parse(_ bytes: [UInt8]) throws -> [Chunk] {
        var out: [Chunk] = []
        var i = 0
        func u32(_ at: Int) -> Int { Int(bytes[at]) << 24 | Int(bytes[at + 1]) << 16 | Int(bytes[at + 2]) << 8 | Int(bytes[at + 3]) }
        while i < bytes.count {
            guard i + 12 <= bytes.count else { throw Bad() }
            let length = u32(i)
            let type = Array(bytes[i + 4..<i + 8])
            let data = Array(bytes[i + 8..<i + 8 + length])
            let crc = u32(i + 8 + length)
            guard CRC32.checksum(type + data) == UInt32(crc) else { throw Bad() }
            out.append(Chunk(type: String(decoding: type, as: UTF8.self), data: data))
            i += 12 + length
        }
        return out
    }
}

/// A minimal inflater (stored and fixed-Huffman blocks: what the encoder writes), to check it independently.
enum Inflate {
    struct Bad: Error { var reason: String }

    struct Bits {
        let bytes: [UInt8]
        var position = 0  // in bits
        mutating func bit() throws -> Int {
            guard position / 8 < bytes.count else { throw Bad(reason: "out of data") }
            let b = Int(bytes[position / 8] >> UInt8(position % 8)) & 1
            position += 1
            return b
        }
        mutating func bits(_ n: Int) throws -> Int {
            var v = 0
            for k in 0..<n { v |= try bit() << k }
            return v
        }
        /// A Huffman code of `n` bits, most significant first.
        mutating func code(_ n: Int) throws -> Int {
            var v = 0
            for _ in 0..<n { v = v << 1 | (try bit()) }
            return v
        }
    }

    static let lengthBase = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258]
    static let lengthExtra = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0]
    static let distBase = [1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577]
    static let distExtra = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13]

    static func zlib(_ stream: [UInt8]) throws -> [UInt8] {
        guard stream.count >= 6, stream[0] & 0x0F == 8, (Int(stream[0]) << 8 | Int(stream[1])) % 31 == 0 else { throw Bad(reason: "header") }
        var reader = Bits(bytes: Array(stream.dropFirst(2).dropLast(4)))
        var out: [UInt8] = []
        var final = 0
        repeat {
            final = try reader.bits(1)
            let type = try reader.bits(2)
            switch type {
            case 0:
                reader.position = (reader.position + 7) / 8 * 8
                let len = try reader.bits(16), nlen = try reader.bits(16)
                guard len == ~nlen & 0xFFFF else { throw Bad(reason: "stored length") }
                for _ in 0..<len { out.append(UInt8(try reader.bits(8))) }
            case 1:
                while true {
                    let symbol = try fixedSymbol(&reader)
                    if symbol < 256 { out.append(UInt8(symbol)); continue }
                    if symbol == 256 { break }
                    let l = symbol - 257
                    guard l < 29 else { throw Bad(reason: "length symbol") }
                    let length = lengthBase[l] + (try reader.bits(lengthExtra[l]))
                    let d = try reader.code(5)
                    guard d < 30 else { throw Bad(reason: "distance symbol") }
                    let distance = distBase[d] + (try reader.bits(distExtra[d]))
                    guard distance <= out.count else { throw Bad(reason: "distance too far") }
                    for _ in 0..<length { out.append(out[out.count - distance]) }
                }
            default:
                throw Bad(reason: "block type \(type)")
            }
        } while final == 0
        let trailer = stream.suffix(4).reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        guard trailer == Adler32.checksum(out) else { throw Bad(reason: "adler") }
        return out
    }

    static func fixedSymbol(_ r: inout Bits) throws -> Int {
        var code = try r.code(7)
        if code <= 0b0010111 { return 256 + code }
        code = code << 1 | (try r.bit())
        if code >= 0b0011_0000 && code <= 0b1011_1111 { return code - 0b0011_0000 }
        if code >= 0b1100_0000 && code <= 0b1100_0111 { return 280 + code - 0b1100_0000 }
        code = code << 1 | (try r.bit())
        if code >= 0b1_1001_0000 && code <= 0b1_1111_1111 { return 144 + code - 0b1_1001_0000 }
        throw Bad(reason: "code")
    }
}
