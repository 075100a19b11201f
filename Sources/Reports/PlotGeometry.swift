/// A rectangle in SVG user units (y grows downwards).
struct Rect {
    var x: Double
    var y: Double
    var width: Double
    var height: Double
    var right: Double { x + width }
    var bottom: Double { y + height }
    var midX: Double { x + width / 2 }
    var midY: Double { y + height / 2 }
}

/// Maps a data interval linearly onto a pixel interval (either may be reversed).
struct LinearScale {
    var domain: (Double, Double)
    var range: (Double, Double)

    func callAsFunction(_ value: Double) -> Double {
        let span = domain.1 - domain.0
        guard span != 0 else { return (range.0 + range.1) / 2 }
        return range.0 + (value - domain.0) / span * (range.1 - range.0)
    }
}

/// A numeric axis: its ticks (round numbers enclosing the data), their labels, and the domain.
struct NumericAxis {
    var ticks: [Double]
    var labels: [String]
    var domain: (Double, Double) { (ticks.first!, ticks.last!) }

    /// Ticks for `values` (non-finite ignored), with `extra` values that must be inside the domain
    /// (e.g. 0 for a reference line); `[0, 1]` when there is nothing finite.
    init(values: [Double], extra: [Double] = [], count: Int) {
        let finite = (values + extra).filter { $0.isFinite }
        if let lo = finite.min(), let hi = finite.max() {
            ticks = niceTicks(min: lo, max: hi, count: Swift.max(2, count))
        } else {
            ticks = [0, 0.5, 1]
        }
        if ticks.count < 2 { ticks = [0, 1] }
        labels = tickLabels(ticks)
    }

    var widestLabel: Double { labels.map { Theme.textWidth($0, size: Theme.tickSize) }.max() ?? 0 }
}

/// Drawing helpers shared by the figures.
enum Draw {
    static func line(_ x1: Double, _ y1: Double, _ x2: Double, _ y2: Double, stroke: String, width: Double = 1, dash: String? = nil, cls: String? = nil) -> SVGElement {
        var attributes: [(String, String)] = []
        if let cls { attributes.append(("class", cls)) }
        attributes += [
            ("x1", NumberFormat.coordinate(x1)), ("y1", NumberFormat.coordinate(y1)),
            ("x2", NumberFormat.coordinate(x2)), ("y2", NumberFormat.coordinate(y2)),
            ("stroke", stroke), ("stroke-width", NumberFormat.coordinate(width)),
        ]
        if let dash { attributes.append(("stroke-dasharray", dash)) }
        return SVGElement("line", attributes)
    }

    static func text(
        _ content: String, x: Double, y: Double, size: Double, anchor: String = "start", weight: String? = nil,
        fill: String = Theme.text, cls: String? = nil, rotate: Double? = nil
    ) -> SVGElement {
        var attributes: [(String, String)] = []
        if let cls { attributes.append(("class", cls)) }
        attributes += [
            ("x", NumberFormat.coordinate(x)), ("y", NumberFormat.coordinate(y)),
            ("font-size", NumberFormat.coordinate(size)), ("fill", fill),
        ]
        if anchor != "start" { attributes.append(("text-anchor", anchor)) }
        if let weight { attributes.append(("font-weight", weight)) }
        if let rotate {
            attributes.append(
                ("transform", "rotate(\(NumberFormat.coordinate(rotate)) \(NumberFormat.coordinate(x)) \(NumberFormat.coordinate(y)))"))
        }
        return SVGElement("text", attributes, text: content)
    }

    /// Font size at most `size` that makes `content` fit in `width` (never below 60% of `size`).
    static func fittingSize(_ content: String, size: Double, width: Double) -> Double {
        let needed = Theme.textWidth(content, size: size)
        guard needed > width, needed > 0 else { return size }
        return Swift.max(size * 0.6, size * width / needed)
    }

    /// `content` shortened with an ellipsis to fit `width` at `size`.
    static func truncated(_ content: String, size: Double, width: Double) -> String {
        if Theme.textWidth(content, size: size) <= width { return content }
        var scalars = Array(content)
        while !scalars.isEmpty && Theme.textWidth(String(scalars) + "…", size: size) > width { scalars.removeLast() }
        return String(scalars) + "…"
    }

    /// Horizontal grid lines and labelled ticks on the left edge of `plot`.
    static func yAxis(_ axis: NumericAxis, scale: LinearScale, plot: Rect) -> [SVGElement] {
        var grid: [SVGElement] = []
        var labels: [SVGElement] = []
        for (tick, label) in zip(axis.ticks, axis.labels) {
            let y = scale(tick)
            grid.append(line(plot.x, y, plot.right, y, stroke: Theme.grid))
            labels.append(line(plot.x - 4, y, plot.x, y, stroke: Theme.axis))
            labels.append(text(label, x: plot.x - 7, y: y + Theme.tickSize * 0.35, size: Theme.tickSize, anchor: "end", fill: Theme.mutedText))
        }
        return [SVGElement.group([("class", "grid y")], grid), SVGElement.group([("class", "ticks y")], labels)]
    }

    /// Vertical grid lines and labelled ticks along the bottom edge of `plot`.
    static func xAxis(_ axis: NumericAxis, scale: LinearScale, plot: Rect) -> [SVGElement] {
        var grid: [SVGElement] = []
        var labels: [SVGElement] = []
        for (tick, label) in zip(axis.ticks, axis.labels) {
            let x = scale(tick)
            grid.append(line(x, plot.y, x, plot.bottom, stroke: Theme.grid))
            labels.append(line(x, plot.bottom, x, plot.bottom + 4, stroke: Theme.axis))
            labels.append(text(label, x: x, y: plot.bottom + 8 + Theme.tickSize * 0.8, size: Theme.tickSize, anchor: "middle", fill: Theme.mutedText))
        }
        return [SVGElement.group([("class", "grid x")], grid), SVGElement.group([("class", "ticks x")], labels)]
    }

    /// The left and bottom axis lines of `plot`.
    static func frame(_ plot: Rect) -> SVGElement {
        SVGElement(
            "path",
            [
                ("class", "axis"),
                ("d", "M\(NumberFormat.coordinate(plot.x)) \(NumberFormat.coordinate(plot.y))V\(NumberFormat.coordinate(plot.bottom))H\(NumberFormat.coordinate(plot.right))"),
                ("fill", "none"), ("stroke", Theme.axis), ("stroke-width", "1"),
            ])
    }
}
