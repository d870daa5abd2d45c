import BenchKit
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing

/// The elements of an SVG document as an XML parser reads them: a document that does not parse fails the test.
private struct Parsed {
    struct Element {
        var name: String
        var attributes: [String: String]
        var text: String
        func number(_ attribute: String) -> Double? { attributes[attribute].flatMap(Double.init) }
    }

    var elements: [Element] = []

    init(_ document: String) throws {
        final class Collector: NSObject, XMLParserDelegate {
            var elements: [Element] = []
            var open: [Int] = []
            func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                        attributes: [String: String]) {
                elements.append(Element(name: name, attributes: attributes, text: ""))
                open.append(elements.count - 1)
            }
            func parser(_ parser: XMLParser, foundCharacters string: String) {
                if let i = open.last { elements[i].text += string }
            }
            func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
                open.removeLast()
            }
        }
        let parser = XMLParser(data: Data(document.utf8))
        let collector = Collector()
        parser.delegate = collector
        guard parser.parse() else { throw ParseFailure(error: parser.parserError.map { "\($0)" } ?? "?") }
        elements = collector.elements
    }

    struct ParseFailure: Error { var error: String }

    func all(_ name: String) -> [Element] { elements.filter { $0.name == name } }
    var texts: [String] { all("text").map(\.text) }
}

private func points(_ polyline: Parsed.Element) -> [(x: Double, y: Double)] {
    (polyline.attributes["points"] ?? "").split(separator: " ").map { pair in
        let xy = pair.split(separator: ",").map { Double($0)! }
        return (xy[0], xy[1])
    }
}

@Suite struct SVGTests {
    @Test func escapesMarkupInText() throws {
        #expect(SVG.escape(#"a<b & "c" 'd'>"#) == "a&lt;b &amp; &quot;c&quot; &#39;d&#39;&gt;")
        #expect(SVG.escape("change -> view, µs") == "change -&gt; view, µs")
        #expect(SVG.escape("bell\u{7}") == "bell?")
        var svg = SVG(width: 100, height: 50)
        let label = "p99 <1 s & \"raw\" </text><script>"
        svg.text(label, x: 5, y: 20, SVG.Color(1, 2, 3), size: 12)
        let document = svg.render()
        #expect(!document.contains("<script>"))
        // The parser gives back exactly the text that was written.
        let parsed = try Parsed(document)
        #expect(parsed.texts == [label])
        #expect(parsed.all("script").isEmpty)
    }

    @Test func documentHeaderAndElements() throws {
        var svg = SVG(width: 200, height: 100.5)
        let red = SVG.Color(255, 0, 16)
        svg.line(0, 1, 10.25, 20, red, thickness: 2, dash: (on: 4, off: 3))
        svg.polyline([(1, 2), (3.333, 4), (5, 6)], red)
        svg.rect(x: 1, y: 1, width: 5, height: 5, stroke: red)
        svg.text("up", x: 10, y: 50, red, size: 14, anchor: .middle, vertical: true)
        let document = svg.render()
        #expect(document.hasPrefix(#"<svg xmlns="http://www.w3.org/2000/svg" width="200" height="100.5" viewBox="0 0 200 100.5""#))
        #expect(document.hasSuffix("</svg>\n"))
        let parsed = try Parsed(document)
        #expect(parsed.elements.map(\.name) == ["svg", "rect", "line", "polyline", "rect", "text"])
        let background = parsed.all("rect")[0]
        #expect(background.attributes["fill"] == "#ffffff" && background.number("width") == 200)
        let line = parsed.all("line")[0]
        #expect(line.attributes["stroke"] == "#ff0010")
        #expect(line.number("x2") == 10.25 && line.number("y2") == 20)
        #expect(line.attributes["stroke-dasharray"] == "4 3")
        #expect(parsed.all("polyline")[0].attributes["points"] == "1,2 3.33,4 5,6")
        #expect(parsed.all("rect")[1].attributes["fill"] == "none")
        let text = parsed.all("text")[0]
        #expect(text.attributes["text-anchor"] == "middle")
        #expect(text.attributes["transform"] == "rotate(-90 10 50)")
    }

    @Test func numbersAndColors() {
        #expect(SVG.number(12) == "12")
        #expect(SVG.number(3.5) == "3.5")
        #expect(SVG.number(-0.25) == "-0.25")
        #expect(SVG.number(-0.001) == "0")
        #expect(SVG.number(.nan) == "0")
        #expect(SVG.Color(31, 119, 180).hex == "#1f77b4")
    }

    @Test func wrapsAtSpaces() {
        // 0.6 em per character: 6 at size 10.
        #expect(SVG.textWidth("abc", size: 10) == 18)
        #expect(SVG.wrap("aaa bbb ccc", maxWidth: 6 * 7, size: 10) == ["aaa bbb", "ccc"])
        #expect(SVG.wrap("aaa bbb ccc", maxWidth: 1_000, size: 10) == ["aaa bbb ccc"])
        #expect(SVG.wrap("abcdefgh x", maxWidth: 12, size: 10) == ["abcdefgh", "x"])
        #expect(SVG.wrap("", maxWidth: 10, size: 10) == [""])
    }

    @Test func ticks() {
        #expect(Ticks.linear(min: 0, max: 1) == [0, 0.2, 0.4, 0.6, 0.8, 1])
        #expect(Ticks.linear(min: 0, max: 100, count: 4) == [0, 25, 50, 75, 100] || Ticks.linear(min: 0, max: 100, count: 4) == [0, 50, 100])
        #expect(Ticks.linear(min: 3, max: 17, count: 7) == [4, 6, 8, 10, 12, 14, 16])
        #expect(Ticks.log(min: 1, max: 10_000) == [1, 10, 100, 1_000, 10_000])
        #expect(Ticks.log(min: 0.5, max: 2_000) == [1, 10, 100, 1_000])
        #expect(Ticks.label(1_000) == "1k")
        #expect(Ticks.label(10_000) == "10k")
        #expect(Ticks.label(0.5) == "0.5")
        #expect(Ticks.label(2_000_000) == "2M")
        #expect(Ticks.label(0) == "0")
    }

    @Test func axisFractions() {
        let log = Chart.Axis(label: "", scale: .log10, min: 1, max: 1_000)
        #expect(abs(log.fraction(10) - 1.0 / 3) < 1e-12)
        #expect(log.fraction(0) == 0)
        #expect(log.fraction(1e9) == 1)
        let linear = Chart.Axis(label: "", min: 0, max: 1)
        #expect(linear.fraction(0.25) == 0.25)
    }

    static let red = SVG.Color(200, 0, 0), blue = SVG.Color(0, 0, 200), grey = SVG.Color(120, 120, 120)

    static var chart: Chart { Chart(
        title: "latency CDF <all>", subtitle: "p99 & more",
        x: Chart.Axis(label: "ms (log)", scale: .log10, min: 1, max: 10_000), y: Chart.Axis(label: "fraction", min: 0, max: 1),
        series: [Chart.Series(name: "a -> b", color: red, points: [(2, 0.1), (50, 0.5), (900, 1)], steps: true),
                 Chart.Series(name: "raw", color: blue, points: [(1, 0.2), (3, 1)], dashed: true, markers: true, pointLabels: ["first", ""])],
        markers: [Chart.VerticalMarker(x: 1000, label: "1 s target", color: grey)],
        legend: .bottomRight) }

    @Test func chartHasAxesTicksAndLabels() throws {
        var svg = SVG(width: 500, height: 400)
        Self.chart.draw(into: &svg, originX: 50, originY: 20, width: 400, height: 300)
        let parsed = try Parsed(svg.render())
        let texts = parsed.texts
        // Title and subtitle, escaped on the way out and read back whole.
        #expect(texts.contains("latency CDF <all>"))
        #expect(texts.contains("p99 & more"))
        // Axis labels (the y label turned) and the tick labels of both axes.
        #expect(texts.contains("ms (log)"))
        let yLabel = try #require(parsed.all("text").first { $0.text == "fraction" })
        #expect(yLabel.attributes["transform"]?.hasPrefix("rotate(-90 ") == true)
        for tick in ["1", "10", "100", "1k", "10k", "0", "0.2", "0.4", "0.6", "0.8"] { #expect(texts.contains(tick), "tick \(tick)") }
        // The marker and the legend.
        #expect(texts.contains("1 s target"))
        #expect(texts.contains("a -> b") && texts.contains("raw"))
        #expect(texts.contains("first"))
        // The plot frame is the plot area, moved to the panel's origin.
        let area = Self.chart.plotArea(width: 400, height: 300)
        let frame = try #require(parsed.all("rect").first { $0.attributes["fill"] == "none" && $0.attributes["stroke"] == Chart.ink.hex })
        // (Coordinates are written with two decimals.)
        func near(_ a: Double?, _ b: Double) -> Bool { a.map { abs($0 - b) <= 0.005 } ?? false }
        #expect(near(frame.number("x"), area.left + 50) && near(frame.number("y"), area.top + 20))
        #expect(near(frame.number("width"), area.width) && near(frame.number("height"), area.height))
        // The marker's dashed line at x = 1000.
        let marker = try #require(parsed.all("line").first { $0.attributes["stroke"] == Self.grey.hex })
        #expect(marker.attributes["stroke-dasharray"] != nil)
        #expect(abs(marker.number("x1")! - (Self.chart.position(x: 1000, y: 0, width: 400, height: 300).x + 50)) < 0.01)
        // Everything lies inside the panel.
        for element in parsed.elements where element.name != "svg" && element.name != "rect" {
            for attribute in ["x", "x1", "x2"] { if let v = element.number(attribute) { #expect(v >= 50 && v <= 450, "\(element.name) \(attribute) \(v)") } }
            for attribute in ["y", "y1", "y2"] { if let v = element.number(attribute) { #expect(v >= 20 && v <= 320, "\(element.name) \(attribute) \(v)") } }
        }
    }

    @Test func seriesPointsLandOnTheirPositions() throws {
        var svg = SVG(width: 400, height: 300)
        Self.chart.draw(into: &svg, originX: 0, originY: 0, width: 400, height: 300)
        let parsed = try Parsed(svg.render())
        let lines = parsed.all("polyline")
        #expect(lines.count == 2)
        func at(_ x: Double, _ y: Double) -> (x: Double, y: Double) { Self.chart.position(x: x, y: y, width: 400, height: 300) }
        func close(_ a: (x: Double, y: Double), _ b: (x: Double, y: Double)) -> Bool { abs(a.x - b.x) < 0.01 && abs(a.y - b.y) < 0.01 }

        // The CDF: from the x axis up to the first point, then a horizontal and a vertical step per point.
        let cdf = try #require(lines.first { $0.attributes["stroke"] == Self.red.hex })
        #expect(cdf.attributes["stroke-dasharray"] == nil)
        let expected = [at(2, 0), at(2, 0.1), at(50, 0.1), at(50, 0.5), at(900, 0.5), at(900, 1)]
        let drawn = points(cdf)
        #expect(drawn.count == expected.count)
        #expect(zip(drawn, expected).allSatisfy { close($0, $1) })
        // Up is smaller y, right is larger x.
        #expect(drawn[1].y < drawn[0].y && drawn[2].x > drawn[1].x)

        // The dashed series (no steps: straight from point to point) with square markers centred on its points.
        let raw = try #require(lines.first { $0.attributes["stroke"] == Self.blue.hex })
        #expect(raw.attributes["stroke-dasharray"] != nil)
        #expect(points(raw).count == 2)
        #expect(zip(points(raw), [at(1, 0.2), at(3, 1)]).allSatisfy { close($0, $1) })
        let squares = parsed.all("rect").filter { $0.attributes["fill"] == Self.blue.hex }
        // Two on the plot, one in the legend.
        #expect(squares.count == 3)
        let first = squares[0]
        #expect(close((first.number("x")! + first.number("width")! / 2, first.number("y")! + first.number("height")! / 2), at(1, 0.2)))
    }

    @Test func emptySeriesDrawNoLineAndNoLegend() throws {
        let chart = Chart(title: "nothing", x: Chart.Axis(label: "x", min: 0, max: 1), y: Chart.Axis(label: "y", min: 0, max: 1),
                          series: [Chart.Series(name: "none", color: Self.red, points: [])])
        var svg = SVG(width: 300, height: 200)
        chart.draw(into: &svg, originX: 0, originY: 0, width: 300, height: 200)
        let parsed = try Parsed(svg.render())
        #expect(parsed.all("polyline").isEmpty)
        #expect(!parsed.texts.contains("none"))
    }
}
