/// A small PNG encoder: 8-bit palette images, zlib stream of fixed-Huffman deflate blocks with LZ77
/// matches (or stored blocks), CRC-32 per chunk, Adler-32 over the image data. Pure, no dependencies.

/// CRC-32 (ISO-HDLC / PNG / zlib polynomial 0xEDB88320, reflected), as PNG chunks carry it.
public struct CRC32: Sendable {
    static let table: [UInt32] = (0..<256).map { n -> UInt32 in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    public private(set) var state: UInt32 = 0xFFFF_FFFF

    public init() {}

    public mutating func update<S: Sequence>(_ bytes: S) where S.Element == UInt8 {
        var c = state
        for b in bytes { c = Self.table[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        state = c
    }

    public var value: UInt32 { state ^ 0xFFFF_FFFF }

    public static func checksum<S: Sequence>(_ bytes: S) -> UInt32 where S.Element == UInt8 {
        var crc = CRC32()
        crc.update(bytes)
        return crc.value
    }
}

/// Adler-32 (RFC 1950), the zlib stream's trailer.
public enum Adler32 {
    public static func checksum(_ bytes: [UInt8]) -> UInt32 {
        var a: UInt32 = 1, b: UInt32 = 0
        var i = 0
        while i < bytes.count {
            // 5552 bytes keep the sums below 2^32 before the modulo.
            let end = min(i + 5552, bytes.count)
            while i < end {
                a &+= UInt32(bytes[i])
                b &+= a
                i += 1
            }
            a %= 65521
            b %= 65521
        }
        return b << 16 | a
    }
}

/// Bits into bytes, least significant bit first (deflate's order).
struct BitWriter {
    var bytes: [UInt8] = []
    var buffer: UInt64 = 0
    var count = 0

    mutating func write(_ value: UInt32, bits: Int) {
        buffer |= UInt64(value) << UInt64(count)
        count += bits
        while count >= 8 {
            bytes.append(UInt8(truncatingIfNeeded: buffer))
            buffer >>= 8
            count -= 8
        }
    }

    /// A Huffman code, sent most significant bit first.
    mutating func writeCode(_ code: UInt32, length: Int) {
        var reversed: UInt32 = 0
        var c = code
        for _ in 0..<length {
            reversed = reversed << 1 | (c & 1)
            c >>= 1
        }
        write(reversed, bits: length)
    }

    mutating func alignToByte() {
        if count > 0 { write(0, bits: 8 - count) }
    }
}

/// Raw deflate (RFC 1951) and zlib (RFC 1950) streams.
public enum Deflate {
    public enum Mode: Sendable { case stored, fixedHuffman }

    static let lengthBase: [Int] = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258]
    static let lengthExtra: [Int] = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0]
    static let distanceBase: [Int] = [1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073,
                                      4097, 6145, 8193, 12289, 16385, 24577]
    static let distanceExtra: [Int] = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13]

    /// A zlib stream: header, deflate data, Adler-32.
    public static func zlib(_ data: [UInt8], mode: Mode = .fixedHuffman) -> [UInt8] {
        // CMF 0x78: deflate, 32 KB window; FLG 0x01 makes (CMF·256 + FLG) a multiple of 31, no dictionary.
        var out: [UInt8] = [0x78, 0x01]
        out += deflate(data, mode: mode)
        let adler = Adler32.checksum(data)
        out += [UInt8(adler >> 24), UInt8(truncatingIfNeeded: adler >> 16), UInt8(truncatingIfNeeded: adler >> 8), UInt8(truncatingIfNeeded: adler)]
        return out
    }

    public static func deflate(_ data: [UInt8], mode: Mode) -> [UInt8] {
        switch mode {
        case .stored: return stored(data)
        case .fixedHuffman: return fixed(data)
        }
    }

    /// Stored blocks of up to 65,535 bytes (an empty input is one empty final block).
    static func stored(_ data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        var offset = 0
        repeat {
            let length = min(65_535, data.count - offset)
            let final = offset + length == data.count
            out.append(final ? 1 : 0)  // BFINAL, BTYPE 00, padding to the byte boundary
            out += [UInt8(length & 0xFF), UInt8(length >> 8), UInt8(~length & 0xFF), UInt8((~length >> 8) & 0xFF)]
            out += data[offset..<offset + length]
            offset += length
        } while offset < data.count
        return out
    }

    /// One final block with the fixed Huffman codes; LZ77 matches found through a hash of the next 3
    /// bytes with bounded chains (greedy matching, 32 KB window).
    static func fixed(_ data: [UInt8]) -> [UInt8] {
        var w = BitWriter()
        w.bytes.reserveCapacity(data.count / 8 + 64)
        w.write(1, bits: 1)  // BFINAL
        w.write(1, bits: 2)  // BTYPE 01: fixed Huffman
        let window = 32_768, hashBits = 15, maxChain = 24
        var head = [Int32](repeating: -1, count: 1 << hashBits)
        var previous = [Int32](repeating: -1, count: window)
        func hash(_ i: Int) -> Int {
            let v = UInt32(data[i]) << 16 | UInt32(data[i + 1]) << 8 | UInt32(data[i + 2])
            return Int((v &* 2_654_435_761) >> UInt32(32 - hashBits))
        }
        func insert(_ i: Int) {
            guard i + 2 < data.count else { return }
            let h = hash(i)
            previous[i & (window - 1)] = head[h]
            head[h] = Int32(i)
        }
        var i = 0
        let n = data.count
        while i < n {
            var bestLength = 0, bestDistance = 0
            if i + 2 < n {
                var candidate = Int(head[hash(i)])
                var chain = 0
                let limit = min(258, n - i)
                while candidate >= 0 && i - candidate <= window && chain < maxChain {
                    if data[candidate + bestLength] == data[i + bestLength] || bestLength == 0 {
                        var length = 0
                        while length < limit && data[candidate + length] == data[i + length] { length += 1 }
                        if length > bestLength {
                            bestLength = length
                            bestDistance = i - candidate
                            if length == limit { break }
                        }
                    }
                    let next = Int(previous[candidate & (window - 1)])
                    if next >= candidate { break }
                    candidate = next
                    chain += 1
                }
            }
            if bestLength >= 3 {
                writeLength(&w, bestLength)
                writeDistance(&w, bestDistance)
                for k in 0..<bestLength { insert(i + k) }
                i += bestLength
            } else {
                writeLiteral(&w, Int(data[i]))
                insert(i)
                i += 1
            }
        }
        writeLiteral(&w, 256)  // end of block
        w.alignToByte()
        return w.bytes
    }

    static func writeLiteral(_ w: inout BitWriter, _ symbol: Int) {
        switch symbol {
        case 0...143: w.writeCode(UInt32(0x30 + symbol), length: 8)
        case 144...255: w.writeCode(UInt32(0x190 + symbol - 144), length: 9)
        case 256...279: w.writeCode(UInt32(symbol - 256), length: 7)
        default: w.writeCode(UInt32(0xC0 + symbol - 280), length: 8)
        }
    }

    static func writeLength(_ w: inout BitWriter, _ length: Int) {
        var code = lengthBase.count - 1
        while lengthBase[code] > length { code -= 1 }
        writeLiteral(&w, 257 + code)
        if lengthExtra[code] > 0 { w.write(UInt32(length - lengthBase[code]), bits: lengthExtra[code]) }
    }

    static func writeDistance(_ w: inout BitWriter, _ distance: Int) {
        var code = distanceBase.count - 1
        while distanceBase[code] > distance { code -= 1 }
        w.writeCode(UInt32(code), length: 5)
        if distanceExtra[code] > 0 { w.write(UInt32(distance - distanceBase[code]), bits: distanceExtra[code]) }
    }
}

/// An 8-bit palette image (one byte per pixel, index into `palette`), as PNG color type 3.
public enum PNG {
    public struct RGB: Sendable, Equatable, Hashable {
        public var r: UInt8, g: UInt8, b: UInt8
        public init(_ r: UInt8, _ g: UInt8, _ b: UInt8) {
            self.r = r
            self.g = g
            self.b = b
        }
    }

    /// PNG file bytes of a `width`×`height` image whose pixels (row by row) index `palette` (≤ 256 colors).
    public static func encode(width: Int, height: Int, palette: [RGB], pixels: [UInt8], mode: Deflate.Mode = .fixedHuffman) -> [UInt8] {
        precondition(width > 0 && height > 0 && pixels.count == width * height && !palette.isEmpty && palette.count <= 256)
        var out: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        var header: [UInt8] = []
        header += bigEndian(UInt32(width)) + bigEndian(UInt32(height))
        header += [8, 3, 0, 0, 0]  // 8 bits, palette, deflate, adaptive filtering, no interlace
        chunk(&out, "IHDR", header)
        chunk(&out, "PLTE", palette.flatMap { [$0.r, $0.g, $0.b] })
        // Each scanline: filter type 0 (none; palette images gain little from filters), then its pixels.
        var raw: [UInt8] = []
        raw.reserveCapacity((width + 1) * height)
        for y in 0..<height {
            raw.append(0)
            raw += pixels[y * width..<(y + 1) * width]
        }
        chunk(&out, "IDAT", Deflate.zlib(raw, mode: mode))
        chunk(&out, "IEND", [])
        return out
    }

    static func bigEndian(_ v: UInt32) -> [UInt8] {
        [UInt8(v >> 24), UInt8(truncatingIfNeeded: v >> 16), UInt8(truncatingIfNeeded: v >> 8), UInt8(truncatingIfNeeded: v)]
    }

    static func chunk(_ out: inout [UInt8], _ type: String, _ data: [UInt8]) {
        out += bigEndian(UInt32(data.count))
        let typeBytes = Array(type.utf8)
        var crc = CRC32()
        crc.update(typeBytes)
        crc.update(data)
        out += typeBytes
        out += data
        out += bigEndian(crc.value)
    }
}
