/// One legend entry: a label with the series' line sample and marker.
struct LegendEntry {
    var label: String
    var style: SeriesStyle
    /// Draw a line sample (false for distributions, which show a marker only).
    var showsLine: Bool = true
}

/// A legend laid out in a column outside the plot area (figures reserve its width on the right).
struct Legend {
    static let sampleWidth = 30.0
    static let rowHeight = 20.0
    static let maxLabelWidth = 230.0

    var entries: [LegendEntry]
    /// A note under the entries, e.g. what the shaded band means.
    var note: String?

    /// Width the legend needs (0 when there is nothing to show).
    var width: Double {
        guard !entries.isEmpty || note != nil else { return 0 }
        let labels = entries.map { Swift.min(Self.maxLabelWidth, Theme.textWidth($0.label, size: Theme.legendSize)) }
        let widest = (labels.max() ?? 0) + Self.sampleWidth + 8
        let noteWidth = noteLines.map { Theme.textWidth($0, size: Theme.tickSize) }.max() ?? 0
        return Swift.max(widest, noteWidth) + 28
    }

    /// The note broken into lines of at most ~24 characters at spaces.
    var noteLines: [String] {
        guard let note else { return [] }
        var lines: [String] = []
        var current = ""
        for word in note.split(separator: " ") {
            if !current.isEmpty && current.count + 1 + word.count > 24 {
                lines.append(current)
                current = String(word)
            } else {
                current += (current.isEmpty ? "" : " ") + word
            }
        }
        if !current.isEmpty { lines.append(current) }
        return lines
    }

    /// The legend with its top-left corner at (x, y).
    func render(x: Double, y: Double) -> SVGElement {
        var children: [SVGElement] = []
        var rowY = y + Self.rowHeight / 2
        let textX = x + Self.sampleWidth + 8
        for entry in entries {
            let style = entry.style
            var parts: [SVGElement] = [SVGElement("title", text: entry.label)]
            if entry.showsLine {
                var attributes: [(String, String)] = [
                    ("d", "M\(NumberFormat.coordinate(x)) \(NumberFormat.coordinate(rowY))h\(NumberFormat.coordinate(Self.sampleWidth))"),
                    ("fill", "none"), ("stroke", style.color), ("stroke-width", NumberFormat.coordinate(Theme.lineWidth)),
                ]
                if let dash = style.dash { attributes.append(("stroke-dasharray", dash)) }
                parts.append(SVGElement("path", attributes))
            }
            parts.append(markerElement(style, d: style.marker.path(x: x + Self.sampleWidth / 2, y: rowY, r: Theme.markerRadius)))
            let label = Draw.truncated(entry.label, size: Theme.legendSize, width: Self.maxLabelWidth)
            parts.append(Draw.text(label, x: textX, y: rowY + Theme.legendSize * 0.35, size: Theme.legendSize))
            children.append(SVGElement.group([("class", "legend-entry"), ("data-series", entry.label)], parts))
            rowY += Self.rowHeight
        }
        var noteY = rowY + 6
        for line in noteLines {
            children.append(Draw.text(line, x: x, y: noteY, size: Theme.tickSize, fill: Theme.mutedText, cls: "legend-note"))
            noteY += Theme.tickSize + 3
        }
        return SVGElement.group([("class", "legend")], children)
    }

    /// Height of the rendered legend.
    var height: Double {
        Double(entries.count) * Self.rowHeight + (noteLines.isEmpty ? 0 : 6 + Double(noteLines.count) * (Theme.tickSize + 3))
    }
}

/// The marker path of a style: filled shapes filled with the colour, open ones stroked.
func markerElement(_ style: SeriesStyle, d: String, cls: String = "marker") -> SVGElement {
    if style.marker.isOpen {
        return SVGElement("path", [("class", cls), ("d", d), ("fill", "none"), ("stroke", style.color), ("stroke-width", "1.6")])
    }
    return SVGElement("path", [("class", cls), ("d", d), ("fill", style.color), ("stroke", "#ffffff"), ("stroke-width", "0.6")])
}
