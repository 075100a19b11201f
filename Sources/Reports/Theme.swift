import Foundation

/// How one series is drawn. Colour, dash pattern and marker all vary with the style index, so
/// series stay apart for colour-blind readers and in grayscale print.
public struct SeriesStyle: Sendable, Equatable {
    /// `#rrggbb`.
    public var color: String
    /// SVG `stroke-dasharray`, nil for a solid line.
    public var dash: String?
    public var marker: Marker

    /// The style of series number `index` (0-based): Okabe–Ito colours (8), 5 dash patterns and 8
    /// marker shapes cycle independently, so the first 40 styles are all distinct.
    public static func at(_ index: Int) -> SeriesStyle {
        precondition(index >= 0)
        return SeriesStyle(
            color: Theme.palette[index % Theme.palette.count],
            dash: Theme.dashes[index % Theme.dashes.count],
            marker: Marker.allCases[index % Marker.allCases.count])
    }
}

/// Marker shapes drawn at data points (filled shapes first, then open strokes).
public enum Marker: String, Sendable, CaseIterable {
    case circle, square, triangle, diamond, cross, plus, triangleDown, star

    /// An SVG path of the marker centred at (x, y), `r` the half-size.
    func path(x: Double, y: Double, r: Double) -> String {
        func p(_ dx: Double, _ dy: Double) -> String {
            NumberFormat.coordinate(x + dx) + " " + NumberFormat.coordinate(y + dy)
        }
        switch self {
        case .circle:
            // Two arcs: a full circle in path syntax.
            let rr = NumberFormat.coordinate(r)
            return "M" + p(-r, 0) + "A" + rr + " " + rr + " 0 1 0 " + p(r, 0) + "A" + rr + " " + rr + " 0 1 0 " + p(-r, 0) + "Z"
        case .square:
            let s = r * 0.9
            return "M" + p(-s, -s) + "L" + p(s, -s) + "L" + p(s, s) + "L" + p(-s, s) + "Z"
        case .triangle:
            return "M" + p(0, -r * 1.15) + "L" + p(r * 1.05, r * 0.75) + "L" + p(-r * 1.05, r * 0.75) + "Z"
        case .triangleDown:
            return "M" + p(0, r * 1.15) + "L" + p(r * 1.05, -r * 0.75) + "L" + p(-r * 1.05, -r * 0.75) + "Z"
        case .diamond:
            return "M" + p(0, -r * 1.2) + "L" + p(r, 0) + "L" + p(0, r * 1.2) + "L" + p(-r, 0) + "Z"
        case .cross:
            return "M" + p(-r, -r) + "L" + p(r, r) + "M" + p(-r, r) + "L" + p(r, -r)
        case .plus:
            let s = r * 1.2
            return "M" + p(-s, 0) + "L" + p(s, 0) + "M" + p(0, -s) + "L" + p(0, s)
        case .star:
            var d = ""
            for i in 0..<10 {
                let radius = i % 2 == 0 ? r * 1.3 : r * 0.55
                let angle = Double.pi * Double(i) / 5 - Double.pi / 2
                d += (i == 0 ? "M" : "L") + p(radius * cos(angle), radius * sin(angle))
            }
            return d + "Z"
        }
    }

    /// Open markers are drawn with a stroke only; the others are filled.
    var isOpen: Bool { self == .cross || self == .plus }
}

/// Fixed visual constants of every figure.
enum Theme {
    /// Okabe & Ito (2008) colour-blind-safe palette, ordered so the first colours differ most;
    /// yellow, hard to see on white, comes last.
    static let palette = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"]
    static let dashes: [String?] = [nil, "7 3", "2 2.5", "9 3 2 3", "4 2 1 2 1 2"]
    static let fontFamily = "DejaVu Sans, Helvetica, Arial, sans-serif"
    static let text = "#222222"
    static let mutedText = "#555555"
    static let axis = "#444444"
    static let grid = "#e4e4e4"
    static let titleSize = 16.0
    static let panelTitleSize = 13.0
    static let labelSize = 12.0
    static let tickSize = 11.0
    static let legendSize = 12.0
    static let lineWidth = 1.8
    static let markerRadius = 3.4
    static let bandOpacity = "0.16"
    /// Pixels between the plot frame and the ends of the data range.
    static let plotInset = 7.0

    /// A conservative estimate of the rendered width of `text` in a sans-serif font of `size`
    /// pixels (no font metrics are available when writing a file); used to reserve room for labels
    /// so they are not clipped. Errs on the wide side.
    static func textWidth(_ text: String, size: Double) -> Double {
        var units = 0.0
        for ch in text.unicodeScalars {
            switch ch {
            case "i", "j", "l", ".", ",", ":", ";", "'", "!", "|", "I", " ", "(", ")", "[", "]", "f", "t", "r":
                units += 0.36
            case "m", "w", "M", "W", "@", "%":
                units += 0.92
            case "A"..."Z", "0"..."9", "_", "-", "=", "+", "<", ">", "#", "&", "~":
                units += 0.68
            default:
                units += ch.value > 0x2E80 ? 1.0 : 0.6
            }
        }
        return units * size
    }
}
