import Foundation
@testable import HTTPAPI
import Testing

/// Request bodies are parsed with the byte-level reader instead of Foundation's `JSONDecoder`: the same documents give
/// the same `JSONValue` trees, and the same documents are refused.
@Suite struct RequestBodyParserTests {
    static let documents: [String] = [
        #"{}"#, #"[]"#, #"{"a":1}"#, #" { "network" : "10.0.0.0/24" , "metric" : 100 , "enabled" : true } "#,
        #"{"n":null,"t":true,"f":false,"s":"","arr":[1,"x",null,[],{}]}"#,
        #"{"i":-0,"j":0,"k":-12,"max":9223372036854775807,"min":-9223372036854775808}"#,
        #"{"big":9223372036854775808,"huge":1e300,"tiny":1e-300,"neg":-1.5}"#,
        #"{"frac":1.0,"exp":1e2,"expfrac":2.5e1,"half":0.5,"negfrac":-3.000}"#,
        #"{"esc":"q\"b\\s\/n\nt\tu\u00e9\ud83d\ude00","uni":"é😀"}"#,
        #"{"deep":{"a":{"b":{"c":[[[1]]]}}}}"#,
        "\u{FEFF}{\"bom\":1}",
        "1", "\"s\"", "true", "null",
        // Refused by both.
        "", " ", "{", "}", #"{"a"}"#, #"{"a":}"#, "{'a':1}", #"{"a":01}"#, #"{"a":1.}"#,
        #"{"a":.5}"#, #"{"a":+1}"#, #"{"a":tru}"#, #"{"a":NaN}"#, #"{"a":1} x"#, #"{"a":"\x"}"#, "{\"a\":\"\u{01}\"}",
    ]

    @Test func sameTreesAsFoundation() throws {
        for text in Self.documents {
            let bytes = Array(text.utf8)
            let foundation = try? JSONDecoder().decode(JSONValue.self, from: Data(bytes))
            let ours = try? JSONValue.parse(bytes)
            #expect(ours == foundation, "\(text)")
        }
        // The cases above exercise both sides: some parse, some do not.
        #expect(Self.documents.filter { (try? JSONValue.parse(Array($0.utf8))) != nil }.count >= 14)
        #expect(Self.documents.filter { (try? JSONValue.parse(Array($0.utf8))) == nil }.count >= 13)
    }

    /// Foundation's decoder takes a trailing comma; RFC 8259 (and NetBird's Go handlers) do not, and neither does this parser.
    @Test func trailingCommasAreRefused() {
        for text in ["[1,]", #"{"a":1,}"#] {
            #expect((try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))) != nil, "\(text)")
            #expect((try? JSONValue.parse(Array(text.utf8))) == nil, "\(text)")
        }
    }

    @Test func numbers() throws {
        #expect(try JSONValue.parse(Array("1.0".utf8)) == .int(1))
        #expect(try JSONValue.parse(Array("1e2".utf8)) == .int(100))
        #expect(try JSONValue.parse(Array("1.5".utf8)) == .double(1.5))
        #expect(try JSONValue.parse(Array("9223372036854775808".utf8)) == .double(9_223_372_036_854_775_808))
    }

    @Test func lastDuplicateKeyWins() throws {
        #expect(try JSONValue.parse(Array(#"{"a":1,"a":2}"#.utf8)) == .object(["a": .int(2)]))
    }

    @Test func invalidUTF8IsRefused() {
        #expect((try? JSONValue.parse([0x22, 0xff, 0xfe, 0x22])) == nil)
    }

    @Test func nestingIsBounded() {
        let deep = String(repeating: "[", count: 600) + String(repeating: "]", count: 600)
        #expect((try? JSONValue.parse(Array(deep.utf8))) == nil)
        let fine = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        #expect((try? JSONValue.parse(Array(fine.utf8))) != nil)
    }
}
