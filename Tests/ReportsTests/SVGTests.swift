import Foundation
import XCTest

@testable import Reports

#if canImport(FoundationXML)
    import FoundationXML
#endif

final class SVGTests: XCTestCase {
    func sampleFigure() -> LineFigure {
        let x: [Double] = [0, 10, 20, 30, 40]
        let a = LineSeries(label: "chosen", x: x, y: [-50, -45, -40, -38, -35], band: ([-52, -47, -42, -40, -37], [-48, -43, -38, -36, -33]), style: .at(0))
        let b = LineSeries(label: "rejected <&> \"q\"", x: x, y: [-40, nil, -39, .nan, -37], style: .at(1))
        let c = LineSeries(label: "non_response", x: x, y: [-80, -81, -82, -83, -84], style: .at(2))
        return LineFigure(
            title: "Run A & B: <mean> log-probability",
            panels: [
                LinePanel(title: "train probes", xLabel: "step", yLabel: "mean log-probability (nats)", series: [a, b, c]),
                LinePanel(title: "held-out probes", xLabel: "step", yLabel: "mean log-probability (nats)", series: [a, c], referenceY: 0),
            ],
            sharedY: true, legendNote: "shaded: 95% interval")
    }

    func testLineFigureStructure() throws {
        let svg = sampleFigure().svg()
        let document = try XCTUnwrap(parseXML(svg, "line figure"))
        let root = try XCTUnwrap(document.rootElement())
        XCTAssertEqual(root.name, "svg")
        XCTAssertEqual(root.value(of: "viewBox"), "0 0 900 400")
        XCTAssertEqual(root.value(of: "width"), "900")
        XCTAssertEqual(root.value(of: "height"), "400")

        let panels = elements(root, "g", where: "class", is: "panel")
        XCTAssertEqual(panels.count, 2)
        // One line path per series in each panel.
        XCTAssertEqual(elements(panels[0], "path", where: "class", is: "line").count, 3)
        XCTAssertEqual(elements(panels[1], "path", where: "class", is: "line").count, 2)
        XCTAssertEqual(elements(panels[0], "path", where: "class", is: "band").count, 1)
        // The series with missing points is broken into subpaths: 3 runs of points -> 3 moves.
        let broken = try XCTUnwrap(elements(panels[0], "g", where: "class", is: "series").first {
            $0.value(of: "data-series") == "rejected <&> \"q\""
        })
        let d = try XCTUnwrap(elements(broken, "path", where: "class", is: "line").first?.value(of: "d"))
        XCTAssertEqual(d.filter { $0 == "M" }.count, 3, d)
        XCTAssertEqual(d.filter { $0 == "L" }.count, 0, "no segment crosses a gap: \(d)")

        // Legend: each distinct label once, outside the plot areas (right of every panel).
        let entries = elements(root, "g", where: "class", is: "legend-entry")
        XCTAssertEqual(entries.compactMap { $0.value(of: "data-series") }, ["chosen", "rejected <&> \"q\"", "non_response"])
        let legendTexts = entries.flatMap(texts)
        XCTAssertEqual(legendTexts, ["chosen", "rejected <&> \"q\"", "non_response"])
        let legendX = try XCTUnwrap(elements(root, "g", where: "class", is: "legend").first.map { elements($0, "path").compactMap { $0.value(of: "d") }.first })
        let legendStart = try XCTUnwrap(Double(legendX!.dropFirst().split(separator: " ")[0]))
        for panel in panels {
            for frame in elements(panel, "path", where: "class", is: "axis") {
                let right = try XCTUnwrap(frame.value(of: "d")?.split(separator: "H").last.flatMap { Double($0) })
                XCTAssertLessThan(right, legendStart, "legend overlaps a plot")
            }
        }

        // Title, panel titles and axis labels.
        let allTexts = texts(root)
        XCTAssertTrue(allTexts.contains("Run A & B: <mean> log-probability"))
        XCTAssertEqual(elements(root, "text", where: "class", is: "axis-label").compactMap(\.stringValue),
                       ["step", "mean log-probability (nats)", "step", "mean log-probability (nats)"])
        XCTAssertTrue(allTexts.contains("train probes") && allTexts.contains("held-out probes"))
        XCTAssertTrue(allTexts.contains("shaded: 95% interval"))
        // A reference line at 0 and y ticks reaching it (0 is inside the shared range).
        XCTAssertEqual(elements(panels[1], "line", where: "class", is: "reference").count, 1)
        XCTAssertTrue(allTexts.contains("0"), "\(allTexts)")
    }

    func testSeriesStylesDifferInColourDashAndMarker() {
        let styles = (0..<40).map(SeriesStyle.at)
        XCTAssertEqual(Set(styles.map { "\($0.color)|\($0.dash ?? "-")|\($0.marker)" }).count, 40)
        for i in 0..<7 {
            XCTAssertNotEqual(styles[i].marker, styles[i + 1].marker)
            XCTAssertNotEqual(styles[i].dash, styles[i + 1].dash)
            XCTAssertNotEqual(styles[i].color, styles[i + 1].color)
        }
        XCTAssertEqual(styles[0].color, "#0072B2")
    }

    func testEmptyPanelsAndManySeriesStayValid() throws {
        let many = (0..<12).map { k in
            LineSeries(label: "series \(k)", x: [0, 1, 2], y: [Double(k), Double(k) + 1, nil], style: .at(k))
        }
        let figure = LineFigure(
            title: "many", panels: [
                LinePanel(title: "all", xLabel: "x", yLabel: "y", series: many),
                LinePanel(title: "none", xLabel: "x", yLabel: "y", series: [LineSeries(label: "empty", x: [0, 1], y: [nil, .nan], style: .at(0))]),
            ])
        let document = try XCTUnwrap(parseXML(figure.svg(), "many-series figure"))
        let root = try XCTUnwrap(document.rootElement())
        let panels = elements(root, "g", where: "class", is: "panel")
        XCTAssertEqual(elements(panels[0], "path", where: "class", is: "line").count, 12)
        XCTAssertEqual(elements(panels[1], "path", where: "class", is: "line").count, 0)
        XCTAssertEqual(elements(panels[1], "text", where: "class", is: "no-data").count, 1)
        XCTAssertEqual(elements(root, "g", where: "class", is: "legend-entry").count, 13)
    }

    func testDistributionFigureStructure() throws {
        let groups = ["chosen", "rejected", "random"].enumerated().map { k, name in
            Distribution(label: name, values: (0..<20).map { Double(($0 * 7 + k * 3) % 11) - 5 }, style: .at(k))
        }
        let figure = DistributionFigure(title: "changes", panels: [
            DistributionPanel(title: "train probes", valueLabel: "change (nats)", groups: groups, referenceValue: 0),
            DistributionPanel(title: "held-out probes", valueLabel: "change (nats)", groups: Array(groups.prefix(2)) + [Distribution(label: "none", values: [], style: .at(5))], referenceValue: 0),
        ])
        let root = try XCTUnwrap(parseXML(figure.svg(), "distribution figure")?.rootElement())
        let panels = elements(root, "g", where: "class", is: "panel")
        XCTAssertEqual(panels.count, 2)
        XCTAssertEqual(elements(panels[0], "rect", where: "class", is: "box").count, 3)
        XCTAssertEqual(elements(panels[1], "rect", where: "class", is: "box").count, 2)
        XCTAssertEqual(elements(panels[0], "text", where: "class", is: "group-label").compactMap(\.stringValue), ["chosen", "rejected", "random"])
        // Every value is drawn: 20 circles (2 arcs each) per group.
        let points = try XCTUnwrap(elements(panels[0], "path", where: "class", is: "points").first?.value(of: "d"))
        XCTAssertEqual(points.filter { $0 == "M" }.count, 20)
        XCTAssertEqual(elements(root, "text", where: "class", is: "axis-label").compactMap(\.stringValue), ["change (nats)", "change (nats)"])
    }

    func testBoxSummaryMatchesRType7() {
        let summary = BoxSummary(sorted: [1, 2, 3, 4, 5, 6, 7, 8, 100])
        XCTAssertEqual(summary.q1, 3)
        XCTAssertEqual(summary.median, 5)
        XCTAssertEqual(summary.q3, 7)
        XCTAssertEqual(summary.lowWhisker, 1)
        XCTAssertEqual(summary.highWhisker, 8, "100 is beyond 1.5 IQR")
        XCTAssertEqual(BoxSummary.quantile([1, 2, 3, 4], 0.25), 1.75)
        XCTAssertEqual(BoxSummary(sorted: [4]), BoxSummary(sorted: [4, 4]))
    }

    func testEscapingKeepsDocumentsWellFormed() throws {
        XCTAssertEqual(XMLText.escape("a<b>&\"c\"'", attribute: true), "a&lt;b&gt;&amp;&quot;c&quot;&#39;")
        XCTAssertEqual(XMLText.escape("a<b>\"", attribute: false), "a&lt;b&gt;\"")
        XCTAssertEqual(XMLText.escape("bell\u{7}nul\u{0}", attribute: false), "bell\u{FFFD}nul\u{FFFD}")
        let nasty = "<script>\u{1}&amp;\n\"'"
        let figure = LineFigure(title: nasty, panels: [LinePanel(title: nasty, xLabel: nasty, yLabel: nasty, series: [LineSeries(label: nasty, x: [0, 1], y: [0, 1], style: .at(0))])])
        let root = try XCTUnwrap(parseXML(figure.svg(), "figure with control characters")?.rootElement())
        XCTAssertEqual(elements(root, "title").first?.stringValue, "<script>\u{FFFD}&amp;\n\"'")
    }

    func testStatistics() throws {
        let s = try XCTUnwrap(SampleSummary([1, 2, 3, 4]))
        XCTAssertEqual(s.mean, 2.5)
        XCTAssertEqual(s.sd!, (5.0 / 3).squareRoot(), accuracy: 1e-12)
        XCTAssertEqual(s.sem!, (5.0 / 3).squareRoot() / 2, accuracy: 1e-12)
        XCTAssertEqual(s.tHalfWidth!, 3.182 * s.sem!, accuracy: 1e-12)
        XCTAssertNil(SampleSummary([7])?.sem)
        XCTAssertNil(SampleSummary([]))
        XCTAssertEqual(studentT975(degreesOfFreedom: 1), 12.706)
        XCTAssertEqual(studentT975(degreesOfFreedom: 40), 2.021, accuracy: 5e-4)
        XCTAssertEqual(studentT975(degreesOfFreedom: 120), 1.980, accuracy: 5e-4)
        XCTAssertEqual(studentT975(degreesOfFreedom: 1_000_000), 1.96, accuracy: 1e-3)
    }
}
