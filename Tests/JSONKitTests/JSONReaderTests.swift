import Foundation
import JSONKit
import Testing

/// JSONKit's reader against the reference, Foundation's `JSONDecoder` through Codable: the same
/// bytes decoded both ways give the same values, and what the reference refuses the reader
/// refuses too, with an error that says what and where.
@Suite struct JSONReaderTests {
    /// Reads all of `text` with `body` (only whitespace may follow the value).
    static func read<T>(_ text: String, _ body: (inout JSONReader) throws(JSONReadError) -> T) -> Result<T, JSONReadError> {
        Result { () throws(JSONReadError) in try JSONReader.read(Array(text.utf8)[...], body) }
    }

    static func reference<T: Decodable>(_ type: T.Type, _ text: String) -> T? {
        try? JSONDecoder().decode(T.self, from: Data(text.utf8))
    }

    static let validStrings: [String] = [
        #""""#, #""plain""#, #""\"\\\/\b\f\n\r\t""#, #""\u0000\u001f\u007f""#, #""\u00e9\u00E9 é""#, #""日本語 😀""#,
        #""\ud83d\ude00""#, #""\uD83D\uDE00 and \u20ac""#, #""a\u0041b""#, "\"\u{10FFFF}\"", #""\uffff\uFFFE""#, "\"e\u{301}\"",
    ]

    static let invalidStrings: [(text: String, error: String)] = [
        (#""abc"#, "unterminated string at byte 4"),
        (#""\ud800""#, "high surrogate \\ud800 not followed by a low surrogate at byte 7"),
        (#""\udc00""#, "lone low surrogate \\udc00 in string at byte 7"),
        (#""\ud83d\u0041""#, "high surrogate \\ud83d not followed by a low surrogate at byte 13"),
        (#""\x""#, "invalid escape \\x at byte 2"),
        (#""\u12g4""#, "invalid hex digit in \\u escape at byte 5"),
        (#""\u12""#, "truncated \\u escape at byte 3"),
        ("\"tab\there\"", "unescaped control character 0x9 in string at byte 4"),
        ("\"nul\u{0}\"", "unescaped control character 0x0 in string at byte 4"),
        (#"'single'"#, "expected a string, found ''' at byte 0"),
    ]

    @Test func stringsDecodeAsTheReferenceDoes() {
        for text in Self.validStrings {
            let fast = Self.read(text) { (r: inout JSONReader) throws(JSONReadError) in try r.readString() }
            let reference = Self.reference(String.self, text)
            #expect(reference != nil, "\(text)")
            #expect((try? fast.get()) == reference, "\(text)")
        }
        for (text, error) in Self.invalidStrings {
            let fast = Self.read(text) { (r: inout JSONReader) throws(JSONReadError) in try r.readString() }
            #expect(Self.reference(String.self, text) == nil, "\(text)")
            guard case .failure(let e) = fast else { Issue.record("accepted \(text)"); continue }
            #expect(e.description == error, "\(text)")
        }
    }

    @Test func invalidUTF8IsRefused() {
        let bad: [[UInt8]] = [[0xff], [0xc0, 0x80], [0xc3], [0xe0, 0x80, 0x80], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0x80]]
        for b in bad {
            let bytes = [UInt8(ascii: "\"")] + b + [UInt8(ascii: "\"")]
            let fast = Result { () throws(JSONReadError) in try JSONReader.read(bytes[...]) { (r: inout JSONReader) throws(JSONReadError) in try r.readString() } }
            #expect((try? JSONDecoder().decode(String.self, from: Data(bytes))) == nil, "\(b)")
            guard case .failure(let e) = fast else { Issue.record("accepted \(b)"); continue }
            #expect(e.description == "invalid UTF-8 in string at byte 1", "\(b)")
        }
        for b: [UInt8] in [[0xc3, 0xa9], [0xe2, 0x82, 0xac], [0xf0, 0x9f, 0x98, 0x80], [0xf4, 0x8f, 0xbf, 0xbf]] {
            let bytes = [UInt8(ascii: "\"")] + b + [UInt8(ascii: "\"")]
            let fast = try? JSONReader.read(bytes[...]) { (r: inout JSONReader) throws(JSONReadError) in try r.readString() }
            #expect(fast != nil && fast == (try? JSONDecoder().decode(String.self, from: Data(bytes))), "\(b)")
        }
    }

    /// `readInt` reads what Foundation reads into `Int` (integral values spelled with a fraction
    /// or an exponent too); `readIntegerLiteral` only plain integers. Both at Int64's edges.
    @Test func integersAtTheEdges() {
        let texts = ["0", "-0", "7", "-7", "9223372036854775807", "-9223372036854775808", "9223372036854775808", "-9223372036854775809",
                     "12345678901234567890", "1.0", "1e2", "100e-2", "1.5", "-2.5e0", "1e400", "0.0", "1E+2", "true", "\"1\"", "null"]
        for text in texts {
            let fast = try? Self.read(text) { (r: inout JSONReader) throws(JSONReadError) in try r.readInt() }.get()
            #expect(fast == Self.reference(Int.self, text), "\(text)")
            #expect(fast.map(Int64.init) == Self.reference(Int64.self, text), "\(text)")
            let literal = try? Self.read(text) { (r: inout JSONReader) throws(JSONReadError) in try r.readIntegerLiteral() }.get()
            let plain = !text.contains(".") && !text.lowercased().contains("e") && !text.contains("\"")
            #expect(literal == (plain ? Self.reference(Int.self, text) : nil), "\(text)")
        }
        #expect(Self.read("9223372036854775808") { (r: inout JSONReader) throws(JSONReadError) in try r.readInt() }.errorText == "number does not fit in Int at byte 0")
        #expect(Self.read(" 1.5") { (r: inout JSONReader) throws(JSONReadError) in try r.readInt() }.errorText
                == "number 1.5 is not an integer that fits in Int at byte 1")
        #expect(Self.read("1e2") { (r: inout JSONReader) throws(JSONReadError) in try r.readIntegerLiteral() }.errorText
                == "expected an integer without fraction or exponent at byte 0")
        #expect(Self.read("\"1\"") { (r: inout JSONReader) throws(JSONReadError) in try r.readInt() }.errorText == "expected an integer, found a string at byte 0")
    }

    struct Sample: Codable, Equatable {
        var name: String
        var count: Int
        var tags: [String]
        var flag: Bool?
        var nested: [[Int64]]
    }

    static func fastSample(_ text: String) -> Sample? {
        try? read(text) { (r: inout JSONReader) throws(JSONReadError) -> Sample in
            var name = JSONField<String>(), count = JSONField<Int>(), tags = JSONField<[String]>(), flag = JSONField<Bool>()
            var nested = JSONField<[[Int64]]>()
            try r.readObject { (key, r) throws(JSONReadError) -> Bool in
                switch key {
                case "name": try name.read(&r)
                case "count": try count.read(&r)
                case "tags": try tags.read(&r)
                case "flag": try flag.readNullable(&r)
                case "nested": try nested.read(&r)
                default: return false
                }
                return true
            }
            return Sample(name: try name.required("name", r), count: try count.required("count", r), tags: try tags.required("tags", r),
                          flag: flag.value, nested: try nested.required("nested", r))
        }.get()
    }

    /// Objects through `readObject` and `JSONField` against a synthesized Codable conformance.
    @Test func objectsDecodeAsTheReferenceDoes() {
        let texts = [
            #"{"name":"a","count":1,"tags":[],"nested":[]}"#,
            #" { "nested" : [ [ 1 , -9223372036854775808 ] , [ ] ] , "tags" : [ "x" , "\u00e9" ] , "count" : 2.0 , "name" : "b" , "flag" : true } "#,
            #"{"name":"a","count":1,"tags":[],"nested":[],"flag":null,"unknown":{"deep":[1,{"x":null}]}}"#,
            #"{"n\u0061me":"escaped key","count":1,"tags":["t"],"nested":[[1]]}"#,
            #"{"name":"a","count":1,"tags":[],"nested":[],"flag":1}"#,
            #"{"name":"a","count":1,"tags":[null],"nested":[]}"#,
            #"{"name":null,"count":1,"tags":[],"nested":[]}"#,
            #"{"count":1,"tags":[],"nested":[]}"#,
            #"{"name":"a","count":1.5,"tags":[],"nested":[]}"#,
            #"{"name":"a","count":1,"tags":[],"nested":[[9223372036854775808]]}"#,
            #"[]"#, #"null"#, #"{}"#, "",
        ]
        for text in texts {
            #expect(Self.fastSample(text) == Self.reference(Sample.self, text), "\(text)")
        }
    }

    /// Nesting up to the limit reads, one deeper is refused; the limit is the reader's, not the stack's.
    @Test func nestingLimit() {
        func nested(_ depth: Int) -> String { String(repeating: "[", count: depth) + String(repeating: "]", count: depth) }
        let skip = { (r: inout JSONReader) throws(JSONReadError) in try r.skipValue() }
        #expect((try? Self.read(nested(512), skip).get()) != nil)
        #expect(Self.read(nested(513), skip).errorText == "nesting deeper than 512 at byte 512")
        #expect(Self.read(String(repeating: "{\"a\":", count: 100_000), skip).errorText == "nesting deeper than 512 at byte 2560")
        #expect(Self.read(nested(100_000), skip).errorText == "nesting deeper than 512 at byte 512")
        let shallow = { (r: inout JSONReader) throws(JSONReadError) in
            let members = try r.readMembers()
            #expect(members.count == 1)
        }
        #expect(Result { () throws(JSONReadError) in try JSONReader.read(Array("{\"a\":\(nested(3))}".utf8)[...], maxDepth: 4, shallow) }.errorText == nil)
        #expect(Result { () throws(JSONReadError) in try JSONReader.read(Array("{\"a\":\(nested(4))}".utf8)[...], maxDepth: 4, shallow) }.errorText
                == "nesting deeper than 4 at byte 8")
    }

    /// Syntax errors name what was wrong and where.
    @Test func syntaxErrorsSayWhatAndWhere() {
        let skip = { (r: inout JSONReader) throws(JSONReadError) in try r.skipValue() }
        let cases: [(String, String)] = [
            ("", "unexpected end of input at byte 0"),
            ("{", "expected a string key, found the end of the input at byte 1"),
            (#"{"a":1,}"#, "expected a string key, found '}' at byte 7"),
            (#"{"a" 1}"#, "expected ':' after key, found a number at byte 5"),
            (#"{"a":1 "b":2}"#, "expected ',' or '}' in object, found a string at byte 7"),
            ("[1,]", "trailing comma in array at byte 3"),
            ("[1 2]", "expected ',' or ']' in array, found a number at byte 3"),
            ("tru", "invalid literal at byte 0"),
            ("01", "unexpected '1' after the JSON value at byte 1"),
            ("1.", "expected a digit after '.' in number at byte 2"),
            ("1e", "expected a digit in exponent at byte 2"),
            ("-", "expected a digit in number at byte 1"),
            ("+1", "expected a value, found '+' at byte 0"),
            (#"{"a":1}{}"#, "unexpected '{' after the JSON value at byte 7"),
        ]
        for (text, error) in cases {
            #expect(Self.read(text, skip).errorText == error, "\(text)")
            // Foundation accepts a trailing comma (more lenient than RFC 8259); the reader does not.
            let lenient = text.contains(",}") || text.contains(",]")
            #expect(((try? JSONSerialization.jsonObject(with: Data(text.utf8), options: .fragmentsAllowed)) != nil) == lenient, "\(text)")
        }
    }


    @Test func membersKeepEachValuesBytes() throws {
        let text = #" {"a" : [1, {"b":"c"}], "\u0064" :"x\ny" ,"e":null} "#
        let bytes = Array(text.utf8)
        let members = try JSONReader.members(of: bytes)
        #expect(members.map(\.key) == ["a", "d", "e"])
        #expect(members.map { String(decoding: bytes[$0.value], as: UTF8.self) } == [#"[1, {"b":"c"}]"#, #""x\ny""#, "null"])
        #expect(throws: JSONReadError.self) { try JSONReader.members(of: Array("[]".utf8)) }
    }

    /// The escaper's output reads back as the same string, with both readers.
    @Test func escapedStringsReadBack() {
        let samples = ["", "plain", "quote \" backslash \\ slash /", "\u{0}\u{1}\u{8}\u{9}\u{a}\u{c}\u{d}\u{1f}\u{7f}", "é日本😀", "e\u{301}"]
        for s in samples {
            let literal = JSONString.quoted(s)
            #expect(Self.reference(String.self, literal) == s, "\(literal)")
            #expect((try? Self.read(literal) { (r: inout JSONReader) throws(JSONReadError) in try r.readString() }.get()) == s, "\(literal)")
        }
    }
}

extension Result where Failure == JSONReadError {
    var errorText: String? {
        if case .failure(let e) = self { return e.description }
        return nil
    }
}
