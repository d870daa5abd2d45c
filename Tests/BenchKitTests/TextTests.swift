import BenchKit
import Testing

@Suite struct TextTests {
    @Test func tableAlignsColumns() {
        var t = TextTable(headers: ["case", "ev/s", "ratio"], alignments: [.left, .right, .right])
        t.add(["single, 1 writer", "9,000", "95%"])
        t.add(["batch", "81,204", "124%"])
        #expect(t.render() == [
            "case                ev/s  ratio",
            "----------------  ------  -----",
            "single, 1 writer   9,000    95%",
            "batch             81,204   124%",
        ])
    }

    @Test func tablePadsShortRowsWithoutTrailingSpaces() {
        var t = TextTable(headers: ["a", "b"])
        t.add(["x"])
        t.add(["longer", "y", "extra"])
        let lines = t.render()
        #expect(lines[2] == "x")
        #expect(lines[3] == "longer  y  extra")
        #expect(lines.allSatisfy { $0.last != " " })
    }

    @Test func unicodeCellsCountAsOneColumn() {
        var t = TextTable(headers: ["path", "ms"], alignments: [.left, .right])
        t.add(["commit → view", "1"])
        #expect(t.render()[2] == "commit → view   1")
    }

    @Test func progressLine() {
        #expect(ProgressLine.render(label: "rebuild", done: 5, total: 10, elapsedSeconds: 2.04, width: 10)
                == "[#####.....]  50%  rebuild  5/10  2.0 s")
        #expect(ProgressLine.render(label: "x", done: 12, total: 10, elapsedSeconds: 12.6, width: 4) == "[####] 100%  x  12/10  13 s")
        let unknown = ProgressLine.render(label: "waiting", done: 0, total: nil, elapsedSeconds: 0, width: 4)
        #expect(unknown.hasPrefix("[#   ]"))
        #expect(unknown.hasSuffix("waiting  0.0 s"))
    }

    @Test func figures() {
        #expect(Figure.grouped(1_234_567.8) == "1,234,568")
        #expect(Figure.grouped(999) == "999")
        #expect(Figure.grouped(-1000) == "-1,000")
        #expect(Figure.fixed(2.346, 2) == "2.35")
        #expect(Figure.fixed(0.05, 1) == "0.1")
        #expect(Figure.fixed(-1.5, 0) == "-2")
        #expect(Figure.fixed(3, 0) == "3")
        #expect(Figure.fixed(1.04, 2) == "1.04")
        #expect(Figure.ms(1565.2) == "1,565")
        #expect(Figure.ms(68.04) == "68.0")
        #expect(Figure.ms(7.314) == "7.31")
        #expect(Figure.ms(0.0421) == "0.042")
        #expect(Figure.percent(0.947) == "95%")
        #expect(Figure.mebibytes(300 * 1_048_576) == "300.0 MiB")
    }

    @Test func procStatus() {
        let status = "Name:\troutepl\nVmPeak:\t  812344 kB\nVmHWM:\t   81234 kB\nVmRSS:\t   61234 kB\nThreads:\t9\n"
        #expect(ProcStatus.bytes("VmRSS", in: status) == 61_234 * 1024)
        #expect(ProcStatus.bytes("VmHWM", in: status) == 81_234 * 1024)
        #expect(ProcStatus.bytes("Threads", in: status) == 9)
        #expect(ProcStatus.bytes("VmSwap", in: status) == nil)
        #expect(ProcStatus.bytes("Vm", in: status) == nil)
    }

    @Test func smapsSumsPerMapping() {
        let smaps = """
            55d0c0a00000-55d0c1200000 r-xp 00000000 08:01 1234                       /work/routeplane
            Size:               8192 kB
            Rss:                5120 kB
            Pss:                5120 kB
            55d0c1200000-55d0c1300000 r--p 00800000 08:01 1234                       /work/routeplane
            Rss:                1024 kB
            55d0c2000000-55d0c4000000 rw-p 00000000 00:00 0                          [heap]
            Rss:               20000 kB
            7f0000000000-7f0000100000 rw-p 00000000 00:00 0
            Rss:                 300 kB
            7f0000200000-7f0000300000 rw-p 00000000 00:00 0
            Rss:                 200 kB
            7f1000000000-7f1000100000 r-xp 00000000 08:01 99                         /usr/lib/x86_64-linux-gnu/lib with space.so
            Rss:                 100 kB
            """
        let byName = Smaps.residentByMapping(smaps)
        #expect(byName.map(\.name) == ["[heap]", "/work/routeplane", "[anonymous]", "/usr/lib/x86_64-linux-gnu/lib with space.so"])
        #expect(byName.map(\.bytes) == [20_000 * 1024, 6_144 * 1024, 500 * 1024, 100 * 1024])
    }

    @Test func natsInfo() {
        let info = #"INFO {"server_id":"NB3","server_name":"NB3","version": "2.9.15","proto":1,"go":"go1.19"}"# + "\r\n"
        #expect(NATSInfo.version(fromInfo: info) == "2.9.15")
        #expect(NATSInfo.version(fromInfo: "-ERR 'nope'") == nil)
        #expect(NATSInfo.version(fromInfo: #"INFO {"proto":1}"#) == nil)
    }

    @Test func statusCounts() {
        #expect(HTTPStatusCounts.parse("200\n200\r\n404\n\n000\n") == [200: 2, 404: 1, 0: 1])
    }
}
