/// One line of a line chart. Points whose `y` is nil or not finite are missing: the line breaks
/// there (and so does the band).
public struct LineSeries: Sendable {
    public var label: String
    public var x: [Double]
    public var y: [Double?]
    /// Optional shaded band (e.g. a 95% interval): lower and upper bound per point, nil = none.
    public var band: (lower: [Double?], upper: [Double?])?
    public var style: SeriesStyle

    public init(label: String, x: [Double], y: [Double?], band: (lower: [Double?], upper: [Double?])? = nil, style: SeriesStyle) {
        precondition(x.count == y.count, "series '\(label)': \(x.count) x values, \(y.count) y values")
        if let band {
            precondition(band.lower.count == x.count && band.upper.count == x.count, "series '\(label)': band length")
        }
        self.label = label
        self.x = x
        self.y = y
        self.band = band
        self.style = style
    }

    func value(_ i: Int) -> Double? {
        guard let v = y[i], v.isFinite, x[i].isFinite else { return nil }
        return v
    }

    func bounds(_ i: Int) -> (Double, Double)? {
        guard let band, x[i].isFinite, let lo = band.lower[i], let hi = band.upper[i], lo.isFinite, hi.isFinite else { return nil }
        return (lo, hi)
    }
}

/// One panel of a line figure: its own axes and series.
public struct LinePanel: Sendable {
    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var series: [LineSeries]
    /// A dashed horizontal reference line (e.g. 0 for changes), always inside the y range.
    public var referenceY: Double?

    public init(title: String, xLabel: String, yLabel: String, series: [LineSeries], referenceY: Double? = nil) {
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.series = series
        self.referenceY = referenceY
    }
}

/// A figure of one or more line-chart panels as small multiples, a title, and one legend for all panels
/// in a column on the right, outside every plot area. Panels wrap into rows so the figure stays within
/// `maxWidth` (a 1280 px window shows it at full size). Fixed size with a `viewBox`.
public struct LineFigure: Sendable {
    public var title: String
    public var panels: [LinePanel]
    /// Panels share one y range (compare train and held-out at a glance).
    public var sharedY: Bool
    /// Text under the legend, e.g. "shaded: 95% interval of the mean".
    public var legendNote: String?
    /// Draw the legend (off when every panel's title already names its only series).
    public var showsLegend: Bool
    /// Panels per row.
    public var columns: Int
    public var width: Double
    /// The height of one row of panels (the first row also holds the title).
    public var rowHeight: Double

    /// The widest a figure is made by default (a 1280 px window less margins).
    public static let maxWidth = 1200.0

    /// `width` defaults to 430 per panel plus 40 with a legend, 340 per panel without; panels wrap into rows of
    /// as many as fit `maxWidth`.
    public init(
        title: String, panels: [LinePanel], sharedY: Bool = false, legendNote: String? = nil, showsLegend: Bool = true,
        width: Double? = nil, height: Double = 400
    ) {
        precondition(!panels.isEmpty, "a figure needs at least one panel")
        self.title = title
        self.panels = panels
        self.sharedY = sharedY
        self.legendNote = legendNote
        self.showsLegend = showsLegend
        let perPanel = showsLegend ? 430.0 : 340.0, extra = showsLegend ? 40.0 : 0
        columns = width == nil ? Swift.min(panels.count, Swift.max(1, Int((Self.maxWidth - extra) / perPanel))) : panels.count
        self.width = width ?? Double(columns) * perPanel + extra
        self.rowHeight = height
    }

    public var rows: Int { (panels.count + columns - 1) / columns }

    /// The whole figure's height: the title band (30) once, then each row.
    public var height: Double { rows == 1 ? rowHeight : 30 + Double(rows) * (rowHeight - 30) }

    /// Legend entries: each distinct label once, in order of first appearance.
    var legend: Legend {
        guard showsLegend else { return Legend(entries: [], note: nil) }
        var seen = Set<String>()
        var entries: [LegendEntry] = []
        for panel in panels {
            for series in panel.series where !seen.contains(series.label) {
                seen.insert(series.label)
                entries.append(LegendEntry(label: series.label, style: series.style))
            }
        }
        let hasBand = panels.contains { $0.series.contains { $0.band != nil } }
        return Legend(entries: entries, note: hasBand ? legendNote : nil)
    }

    /// The figure as a standalone SVG document.
    public func svg() -> String {
        var document = SVGDocument(width: width, height: height, title: title)
        let legend = self.legend
        let titleSize = Draw.fittingSize(title, size: Theme.titleSize, width: width - 24)
        let shown = Draw.truncated(title, size: titleSize, width: width - 24)
        document.append(Draw.text(shown, x: width / 2, y: 24, size: titleSize, anchor: "middle", weight: "bold", cls: "figure-title"))

        let top = 62.0
        let bottom = rowHeight - 50
        let panelsWidth = width - legend.width
        let panelWidth = panelsWidth / Double(columns)
        let yTickCount = Swift.max(3, Int((bottom - top) / 55))

        var sharedAxis: NumericAxis?
        if sharedY {
            sharedAxis = NumericAxis(values: panels.flatMap(Self.yValues), extra: panels.compactMap(\.referenceY), count: yTickCount)
        }
        for (index, panel) in panels.enumerated() {
            let yAxis = sharedAxis ?? NumericAxis(values: Self.yValues(panel), extra: panel.referenceY.map { [$0] } ?? [], count: yTickCount)
            let (row, column) = index.quotientAndRemainder(dividingBy: columns)
            let offset = Double(row) * (rowHeight - 30)
            let area = Rect(x: Double(column) * panelWidth, y: offset, width: panelWidth, height: rowHeight)
            document.append(render(panel, yAxis: yAxis, area: area, top: top + offset, bottom: bottom + offset))
        }
        if legend.width > 0 {
            document.append(legend.render(x: panelsWidth + 10, y: top))
        }
        return document.render()
    }

    static func yValues(_ panel: LinePanel) -> [Double] {
        var values: [Double] = []
        for series in panel.series {
            for i in series.x.indices {
                if let v = series.value(i) { values.append(v) }
                if let (lo, hi) = series.bounds(i) { values += [lo, hi] }
            }
        }
        return values
    }

    private func render(_ panel: LinePanel, yAxis: NumericAxis, area: Rect, top: Double, bottom: Double) -> SVGElement {
        let xValues = panel.series.flatMap { s in s.x.indices.compactMap { s.value($0) == nil ? nil : s.x[$0] } }
        let approximateWidth = area.width - 110
        let xAxis = NumericAxis(values: xValues, count: Swift.max(3, Int(approximateWidth / 75)))
        let left = area.x + 10 + Theme.labelSize + 10 + yAxis.widestLabel + 8
        let lastLabel = Theme.textWidth(xAxis.labels.last ?? "", size: Theme.tickSize) / 2
        let right = area.right - Swift.max(16, lastLabel + 4)
        let plot = Rect(x: left, y: top, width: right - left, height: bottom - top)
        // Data at the domain's ends stays clear of the axis lines and the panel title.
        let inset = Theme.plotInset
        let xScale = LinearScale(domain: xAxis.domain, range: (plot.x + inset, plot.right - inset))
        let yScale = LinearScale(domain: yAxis.domain, range: (plot.bottom - inset, plot.y + inset))

        var children: [SVGElement] = []
        let titleSize = Draw.fittingSize(panel.title, size: Theme.panelTitleSize, width: plot.width)
        children.append(Draw.text(panel.title, x: plot.midX, y: top - 12, size: titleSize, anchor: "middle", weight: "bold", cls: "panel-title"))
        children += Draw.yAxis(yAxis, scale: yScale, plot: plot)
        children += Draw.xAxis(xAxis, scale: xScale, plot: plot)
        if let reference = panel.referenceY {
            children.append(Draw.line(plot.x, yScale(reference), plot.right, yScale(reference), stroke: "#888888", width: 1, dash: "4 3", cls: "reference"))
        }
        children.append(Draw.frame(plot))
        children.append(Draw.text(panel.xLabel, x: plot.midX, y: bottom + 40, size: Theme.labelSize, anchor: "middle", cls: "axis-label x"))
        let yLabelX = area.x + 10 + Theme.labelSize
        children.append(Draw.text(panel.yLabel, x: yLabelX, y: plot.midY, size: Draw.fittingSize(panel.yLabel, size: Theme.labelSize, width: plot.height), anchor: "middle", cls: "axis-label y", rotate: -90))

        let hasData = panel.series.contains { s in s.x.indices.contains { s.value($0) != nil } }
        if !hasData {
            children.append(Draw.text("no data", x: plot.midX, y: plot.midY, size: Theme.labelSize, anchor: "middle", fill: Theme.mutedText, cls: "no-data"))
        }
        // Bands first, then lines, then markers, so no band hides a line.
        var bands: [SVGElement] = []
        var lines: [SVGElement] = []
        for series in panel.series {
            if let d = Self.bandPath(series, x: xScale, y: yScale) {
                bands.append(SVGElement("path", [("class", "band"), ("data-series", series.label), ("d", d), ("fill", series.style.color), ("fill-opacity", Theme.bandOpacity), ("stroke", "none")]))
            }
            guard let (line, markers) = Self.linePaths(series, x: xScale, y: yScale) else { continue }
            var attributes: [(String, String)] = [
                ("class", "line"), ("d", line), ("fill", "none"), ("stroke", series.style.color),
                ("stroke-width", NumberFormat.coordinate(Theme.lineWidth)), ("stroke-linejoin", "round"), ("stroke-linecap", "round"),
            ]
            if let dash = series.style.dash { attributes.append(("stroke-dasharray", dash)) }
            lines.append(SVGElement.group(
                [("class", "series"), ("data-series", series.label)],
                [SVGElement("path", attributes), markerElement(series.style, d: markers, cls: "markers")]))
        }
        children.append(SVGElement.group([("class", "bands")], bands))
        children.append(contentsOf: lines)
        return SVGElement.group([("class", "panel"), ("data-panel", panel.title)], children)
    }

    /// The line (subpaths broken at missing points) and the marker shapes of a series; nil when
    /// it has no finite point. Markers go on at most ~15 points (every k-th, plus isolated points)
    /// so dense curves stay readable.
    static func linePaths(_ series: LineSeries, x: LinearScale, y: LinearScale) -> (String, String)? {
        let present = series.x.indices.filter { series.value($0) != nil }
        guard !present.isEmpty else { return nil }
        let stride = Swift.max(1, (present.count + 14) / 15)
        var line = ""
        var markers = ""
        var previousPresent = false
        var rank = 0
        for i in series.x.indices {
            guard let v = series.value(i) else {
                previousPresent = false
                continue
            }
            let px = x(series.x[i])
            let py = y(v)
            line += (previousPresent ? "L" : "M") + NumberFormat.coordinate(px) + " " + NumberFormat.coordinate(py)
            let isolated = !previousPresent && (i + 1 >= series.x.count || series.value(i + 1) == nil)
            if isolated || rank % stride == 0 || rank == present.count - 1 {
                markers += series.style.marker.path(x: px, y: py, r: Theme.markerRadius)
            }
            rank += 1
            previousPresent = true
        }
        return (line, markers)
    }

    /// The band as closed polygons, one per run of consecutive points with both bounds.
    static func bandPath(_ series: LineSeries, x: LinearScale, y: LinearScale) -> String? {
        guard series.band != nil else { return nil }
        var d = ""
        var run: [(Double, Double, Double)] = []
        func flush() {
            defer { run.removeAll() }
            guard run.count >= 2 else { return }
            for (k, point) in run.enumerated() {
                d += (k == 0 ? "M" : "L") + NumberFormat.coordinate(x(point.0)) + " " + NumberFormat.coordinate(y(point.2))
            }
            for point in run.reversed() {
                d += "L" + NumberFormat.coordinate(x(point.0)) + " " + NumberFormat.coordinate(y(point.1))
            }
            d += "Z"
        }
        for i in series.x.indices {
            if let (lo, hi) = series.bounds(i) {
                run.append((series.x[i], lo, hi))
            } else {
                flush()
            }
        }
        flush()
        return d.isEmpty ? nil : d
    }
}
