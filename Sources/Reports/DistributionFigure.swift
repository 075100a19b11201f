import Foundation

/// The values of one group (e.g. the per-probe changes of one category).
public struct Distribution: Sendable {
    public var label: String
    public var values: [Double]
    public var style: SeriesStyle

    public init(label: String, values: [Double], style: SeriesStyle) {
        self.label = label
        self.values = values
        self.style = style
    }
}

/// One panel: a horizontal box plot with the individual points over it, one row per group.
public struct DistributionPanel: Sendable {
    public var title: String
    public var valueLabel: String
    public var groups: [Distribution]
    /// A dashed vertical reference line (e.g. 0 = no change), always inside the value range.
    public var referenceValue: Double?

    public init(title: String, valueLabel: String, groups: [Distribution], referenceValue: Double? = nil) {
        self.title = title
        self.valueLabel = valueLabel
        self.groups = groups
        self.referenceValue = referenceValue
    }
}

/// Box-and-strip plots side by side. Each row: the box spans the quartiles (R's type 7), the thick
/// line is the median, whiskers reach the most extreme values within 1.5 IQR of the box, the
/// group's marker sits at the mean, and every value is a dot (jittered vertically by a fixed
/// sequence, so output is deterministic). Group labels are on the left, so no legend is needed.
public struct DistributionFigure: Sendable {
    public var title: String
    public var panels: [DistributionPanel]
    /// Panels share one value range.
    public var sharedRange: Bool
    public var width: Double
    /// Panels per row: as many as fit `LineFigure.maxWidth`.
    public var columns: Int

    static let rowHeight = 42.0
    static let top = 62.0
    static let bottomMargin = 52.0

    public init(title: String, panels: [DistributionPanel], sharedRange: Bool = true, width: Double? = nil) {
        precondition(!panels.isEmpty, "a figure needs at least one panel")
        self.title = title
        self.panels = panels
        self.sharedRange = sharedRange
        columns = width == nil ? Swift.min(panels.count, Swift.max(1, Int((LineFigure.maxWidth - 20) / 440))) : panels.count
        self.width = width ?? Double(columns) * 440 + 20
    }

    /// One row of panels' height.
    var panelHeight: Double {
        let rows = panels.map(\.groups.count).max() ?? 0
        return Swift.max(220, Self.top + Double(Swift.max(rows, 1)) * Self.rowHeight + Self.bottomMargin)
    }

    public var height: Double {
        let rows = (panels.count + columns - 1) / columns
        return rows == 1 ? panelHeight : 30 + Double(rows) * (panelHeight - 30)
    }

    /// The figure as a standalone SVG document.
    public func svg() -> String {
        let height = self.height
        var document = SVGDocument(width: width, height: height, title: title)
        let titleSize = Draw.fittingSize(title, size: Theme.titleSize, width: width - 24)
        let shown = Draw.truncated(title, size: titleSize, width: width - 24)
        document.append(Draw.text(shown, x: width / 2, y: 24, size: titleSize, anchor: "middle", weight: "bold", cls: "figure-title"))
        let panelWidth = (width - 10) / Double(columns)
        let labelWidth = Swift.min(180, panels.flatMap(\.groups).map { Theme.textWidth($0.label, size: Theme.labelSize) }.max() ?? 0)
        let tickCount = Swift.max(4, Int((panelWidth - labelWidth - 40) / 55))
        var shared: NumericAxis?
        if sharedRange {
            shared = NumericAxis(values: panels.flatMap { $0.groups.flatMap(\.values) }, extra: panels.compactMap(\.referenceValue), count: tickCount)
        }
        for (index, panel) in panels.enumerated() {
            let axis = shared ?? NumericAxis(values: panel.groups.flatMap(\.values), extra: panel.referenceValue.map { [$0] } ?? [], count: tickCount)
            let (row, column) = index.quotientAndRemainder(dividingBy: columns)
            let offset = Double(row) * (panelHeight - 30)
            let area = Rect(x: Double(column) * panelWidth, y: offset, width: panelWidth, height: panelHeight)
            document.append(render(panel, axis: axis, area: area, top: Self.top + offset, bottom: offset + panelHeight - Self.bottomMargin))
        }
        return document.render()
    }

    private func render(_ panel: DistributionPanel, axis: NumericAxis, area: Rect, top: Double, bottom: Double) -> SVGElement {
        let labelWidth = Swift.min(180, panel.groups.map { Theme.textWidth($0.label, size: Theme.labelSize) }.max() ?? 0)
        let left = area.x + 10 + labelWidth + 10
        let lastLabel = Theme.textWidth(axis.labels.last ?? "", size: Theme.tickSize) / 2
        let plot = Rect(x: left, y: top, width: area.right - Swift.max(16, lastLabel + 4) - left, height: bottom - top)
        let scale = LinearScale(domain: axis.domain, range: (plot.x + Theme.plotInset, plot.right - Theme.plotInset))
        var children: [SVGElement] = []
        let titleSize = Draw.fittingSize(panel.title, size: Theme.panelTitleSize, width: plot.width)
        children.append(Draw.text(panel.title, x: plot.midX, y: top - 12, size: titleSize, anchor: "middle", weight: "bold", cls: "panel-title"))
        children += Draw.xAxis(axis, scale: scale, plot: plot)
        if let reference = panel.referenceValue {
            children.append(Draw.line(scale(reference), plot.y, scale(reference), plot.bottom, stroke: "#888888", width: 1, dash: "4 3", cls: "reference"))
        }
        children.append(Draw.frame(plot))
        children.append(Draw.text(panel.valueLabel, x: plot.midX, y: bottom + 40, size: Theme.labelSize, anchor: "middle", cls: "axis-label x"))
        let rowHeight = plot.height / Double(Swift.max(panel.groups.count, 1))
        if panel.groups.allSatisfy({ $0.values.filter(\.isFinite).isEmpty }) {
            children.append(Draw.text("no data", x: plot.midX, y: plot.midY, size: Theme.labelSize, anchor: "middle", fill: Theme.mutedText, cls: "no-data"))
        }
        for (row, group) in panel.groups.enumerated() {
            let center = plot.y + (Double(row) + 0.5) * rowHeight
            let label = Draw.truncated(group.label, size: Theme.labelSize, width: 180)
            var parts: [SVGElement] = [
                Draw.text(label, x: plot.x - 8, y: center + Theme.labelSize * 0.35, size: Theme.labelSize, anchor: "end", cls: "group-label")
            ]
            parts += Self.box(group, center: center, rowHeight: rowHeight, scale: scale)
            children.append(SVGElement.group([("class", "group"), ("data-group", group.label)], parts))
        }
        return SVGElement.group([("class", "panel"), ("data-panel", panel.title)], children)
    }

    static func box(_ group: Distribution, center: Double, rowHeight: Double, scale: LinearScale) -> [SVGElement] {
        let values = group.values.filter(\.isFinite)
        guard !values.isEmpty else { return [] }
        let sorted = values.sorted()
        let summary = BoxSummary(sorted: sorted)
        let color = group.style.color
        let half = Swift.min(rowHeight * 0.28, 12)
        var parts: [SVGElement] = []
        parts.append(Draw.line(scale(summary.lowWhisker), center, scale(summary.q1), center, stroke: color, width: 1.2, cls: "whisker"))
        parts.append(Draw.line(scale(summary.q3), center, scale(summary.highWhisker), center, stroke: color, width: 1.2, cls: "whisker"))
        for end in [summary.lowWhisker, summary.highWhisker] {
            parts.append(Draw.line(scale(end), center - half / 2, scale(end), center + half / 2, stroke: color, width: 1.2, cls: "whisker"))
        }
        let boxX = scale(summary.q1)
        parts.append(SVGElement("rect", [
            ("class", "box"), ("x", NumberFormat.coordinate(boxX)), ("y", NumberFormat.coordinate(center - half)),
            ("width", NumberFormat.coordinate(Swift.max(0.5, scale(summary.q3) - boxX))), ("height", NumberFormat.coordinate(2 * half)),
            ("fill", color), ("fill-opacity", "0.12"), ("stroke", color), ("stroke-width", "1.2"),
        ]))
        parts.append(Draw.line(scale(summary.median), center - half, scale(summary.median), center + half, stroke: color, width: 2.6, cls: "median"))
        // Points in their original order, jittered by the golden-ratio sequence (deterministic, even).
        var dots = ""
        let r = 1.9
        for (i, value) in values.enumerated() {
            let jitter = ((Double(i) * 0.618_033_988_75).truncatingRemainder(dividingBy: 1) - 0.5) * 1.6 * half
            let x = scale(value)
            let y = center + jitter
            dots += "M" + NumberFormat.coordinate(x - r) + " " + NumberFormat.coordinate(y)
                + "a" + NumberFormat.coordinate(r) + " " + NumberFormat.coordinate(r) + " 0 1 0 " + NumberFormat.coordinate(2 * r) + " 0"
                + "a" + NumberFormat.coordinate(r) + " " + NumberFormat.coordinate(r) + " 0 1 0 " + NumberFormat.coordinate(-2 * r) + " 0Z"
        }
        // Fainter dots when there are many, so the box stays visible.
        let opacity = Swift.min(0.45, Swift.max(0.12, 0.45 * (40 / Double(values.count)).squareRoot()))
        parts.append(SVGElement("path", [("class", "points"), ("d", dots), ("fill", color), ("fill-opacity", NumberFormat.fixed(opacity, decimals: 2)), ("stroke", "none")]))
        let mean = values.reduce(0, +) / Double(values.count)
        parts.append(markerElement(group.style, d: group.style.marker.path(x: scale(mean), y: center, r: Theme.markerRadius + 0.6), cls: "mean"))
        return parts
    }
}

/// Quartiles (linear interpolation between order statistics, R's type 7) and Tukey whiskers.
struct BoxSummary: Equatable {
    var q1: Double
    var median: Double
    var q3: Double
    var lowWhisker: Double
    var highWhisker: Double

    init(sorted: [Double]) {
        precondition(!sorted.isEmpty)
        q1 = Self.quantile(sorted, 0.25)
        median = Self.quantile(sorted, 0.5)
        q3 = Self.quantile(sorted, 0.75)
        let reach = 1.5 * (q3 - q1)
        let (lo, hi) = (q1 - reach, q3 + reach)
        lowWhisker = sorted.first { $0 >= lo } ?? q1
        highWhisker = sorted.last { $0 <= hi } ?? q3
    }

    static func quantile(_ sorted: [Double], _ p: Double) -> Double {
        let h = Double(sorted.count - 1) * p
        let i = Int(h.rounded(.down))
        guard i + 1 < sorted.count else { return sorted[i] }
        return sorted[i] + (h - Double(i)) * (sorted[i + 1] - sorted[i])
    }
}
