import BenchKit
import Testing

@Suite struct RasterTests {
    @Test func linesReachBothEnds() {
        var c = Canvas(width: 20, height: 10)
        let red = c.color(PNG.RGB(255, 0, 0))
        c.line(1, 1, 18, 8, red)
        #expect(c[1, 1] == PNG.RGB(255, 0, 0))
        #expect(c[18, 8] == PNG.RGB(255, 0, 0))
        #expect(c[18, 1] == PNG.RGB(255, 255, 255))
        // Same color twice: same palette entry.
        #expect(c.color(PNG.RGB(255, 0, 0)) == red)
        #expect(c.palette.count == 2)
    }

    @Test func dashedLinesHaveGaps() {
        var c = Canvas(width: 40, height: 3)
        let ink = c.color(PNG.RGB(0, 0, 0))
        c.line(0, 1, 39, 1, ink, dash: (on: 4, off: 4))
        let row = (0..<40).map { c[$0, 1] == PNG.RGB(0, 0, 0) }
        #expect(row.prefix(8) == [true, true, true, true, false, false, false, false])
        #expect(row.filter { $0 }.count == 20)
    }

    @Test func thickLinesAndClipping() {
        var c = Canvas(width: 10, height: 10)
        let ink = c.color(PNG.RGB(0, 0, 0))
        c.line(-5, 5, 15, 5, ink, thickness: 3)  // partly outside: clipped, no crash
        #expect((0..<10).allSatisfy { c[$0, 4] == PNG.RGB(0, 0, 0) && c[$0, 6] == PNG.RGB(0, 0, 0) })
        #expect(c[0, 3] == PNG.RGB(255, 255, 255))
    }

    @Test func textStaysInItsBox() {
        var c = Canvas(width: 100, height: 30)
        let ink = c.color(PNG.RGB(0, 0, 0))
        let text = "p99 1,565 ms"
        c.text(text, x: 2, y: 3, ink, scale: 2)
        let w = Canvas.textWidth(text, scale: 2), h = Canvas.textHeight(scale: 2)
        var inside = 0
        for y in 0..<30 {
            for x in 0..<100 where c[x, y] != PNG.RGB(255, 255, 255) {
                #expect(x >= 2 && x < 2 + w && y >= 3 && y < 3 + h)
                inside += 1
            }
        }
        #expect(inside > 50)
    }

    @Test func verticalTextIsTheRotation() {
        var flat = Canvas(width: 60, height: 8)
        var turned = Canvas(width: 8, height: 60)
        let a = flat.color(PNG.RGB(0, 0, 0)), b = turned.color(PNG.RGB(0, 0, 0))
        flat.text("ms 42 py", x: 0, y: 0, a)
        turned.verticalText("ms 42 py", x: 0, y: 0, b)
        let length = Canvas.textWidth("ms 42 py")
        for u in 0..<length {
            for v in 0..<8 {
                #expect(flat[u, v] == turned[v, length - 1 - u])
            }
        }
    }

    @Test func wrapsAtSpaces() {
        // 6 px per character at scale 1 (minus the last column).
        #expect(Canvas.wrap("aaa bbb ccc", maxWidth: 6 * 7 - 1) == ["aaa bbb", "ccc"])
        #expect(Canvas.wrap("aaa bbb ccc", maxWidth: 1_000) == ["aaa bbb ccc"])
        #expect(Canvas.wrap("abcdefgh x", maxWidth: 12) == ["abcdefgh", "x"])
        #expect(Canvas.wrap("", maxWidth: 10) == [""])
    }

    @Test func descendersDrawBelowTheBaseline() {
        var c = Canvas(width: 6, height: 8)
        let ink = c.color(PNG.RGB(0, 0, 0))
        c.text("g", x: 0, y: 0, ink)
        #expect((0..<6).contains { c[$0, 7] == PNG.RGB(0, 0, 0) })
        var d = Canvas(width: 6, height: 8)
        d.text("a", x: 0, y: 0, d.color(PNG.RGB(0, 0, 0)))
        #expect(!(0..<6).contains { d[$0, 7] == PNG.RGB(0, 0, 0) })
    }

    @Test func fontCoversPrintableASCII() {
        for v in 32...126 {
            #expect(Font5x7.glyph(Unicode.Scalar(UInt8(v))).count == 5)
        }
        #expect(Font5x7.glyph(" ").allSatisfy { $0 == 0 })
        #expect(Array(Font5x7.glyph("é")) == Array(Font5x7.glyph("?")))
        #expect(Array(Font5x7.glyph("µ")) == Array(Font5x7.glyph("u")))
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

    @Test func chartDrawsInsideItsPanel() {
        var c = Canvas(width: 500, height: 400)
        let chart = Chart(
            title: "latency CDF", subtitle: "sub",
            x: Chart.Axis(label: "ms", scale: .log10, min: 1, max: 10_000), y: Chart.Axis(label: "fraction", min: 0, max: 1),
            series: [Chart.Series(name: "a", color: PNG.RGB(200, 0, 0), points: [(2, 0.1), (50, 0.5), (900, 1)], steps: true),
                     Chart.Series(name: "b", color: PNG.RGB(0, 0, 200), points: [(1, 0.2), (3, 1)], dashed: true, markers: true, pointLabels: ["x", ""])],
            markers: [Chart.VerticalMarker(x: 1000, label: "1 s", color: PNG.RGB(120, 120, 120))])
        c.fill(x: 0, y: 0, width: 500, height: 400, c.color(PNG.RGB(250, 250, 250)))
        chart.draw(into: &c, originX: 50, originY: 20, width: 400, height: 300)
        var seriesPixels = 0
        for y in 0..<400 {
            for x in 0..<500 where c[x, y] != PNG.RGB(250, 250, 250) {
                #expect(x >= 50 && x < 450 && y >= 20 && y < 320, "pixel outside the panel at \(x),\(y)")
                if c[x, y] == PNG.RGB(200, 0, 0) { seriesPixels += 1 }
            }
        }
        #expect(seriesPixels > 100)
        #expect(c.palette.contains(PNG.RGB(0, 0, 200)))
        // And it encodes.
        #expect(c.png().count > 100)
    }
}
