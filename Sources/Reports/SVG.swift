/// A minimal SVG element tree: elements with ordered attributes, children and text, rendered as
/// standalone XML with a fixed size and a `viewBox` (so it scales). Attribute order is the order
/// given, and numbers are formatted by the caller (`NumberFormat`), so output is deterministic.
struct SVGElement {
    var name: String
    var attributes: [(String, String)]
    var children: [SVGElement]
    var text: String?

    init(_ name: String, _ attributes: [(String, String)] = [], text: String? = nil, children: [SVGElement] = []) {
        self.name = name
        self.attributes = attributes
        self.children = children
        self.text = text
    }

    /// A `<g>` with attributes and children.
    static func group(_ attributes: [(String, String)] = [], _ children: [SVGElement]) -> SVGElement {
        SVGElement("g", attributes, children: children)
    }

    mutating func append(_ child: SVGElement) { children.append(child) }
    mutating func append(contentsOf more: [SVGElement]) { children.append(contentsOf: more) }

    func render(into out: inout String, depth: Int) {
        out += String(repeating: "  ", count: depth) + "<" + name
        for (key, value) in attributes {
            out += " " + key + "=\"" + XMLText.escape(value, attribute: true) + "\""
        }
        if children.isEmpty && text == nil {
            out += "/>\n"
            return
        }
        out += ">"
        if let text { out += XMLText.escape(text, attribute: false) }
        if !children.isEmpty {
            out += "\n"
            for child in children { child.render(into: &out, depth: depth + 1) }
            out += String(repeating: "  ", count: depth)
        }
        out += "</" + name + ">\n"
    }
}

/// A whole SVG document of `width` × `height` user units (pixels), white background.
struct SVGDocument {
    var width: Double
    var height: Double
    var title: String
    var body: [SVGElement] = []

    init(width: Double, height: Double, title: String) {
        precondition(width > 0 && height > 0)
        self.width = width
        self.height = height
        self.title = title
    }

    mutating func append(_ element: SVGElement) { body.append(element) }

    func render() -> String {
        let w = NumberFormat.coordinate(width)
        let h = NumberFormat.coordinate(height)
        var root = SVGElement(
            "svg",
            [
                ("xmlns", "http://www.w3.org/2000/svg"), ("version", "1.1"), ("width", w), ("height", h),
                ("viewBox", "0 0 \(w) \(h)"), ("font-family", Theme.fontFamily),
            ])
        root.append(SVGElement("title", text: title))
        root.append(SVGElement("rect", [("width", w), ("height", h), ("fill", "#ffffff")]))
        root.append(contentsOf: body)
        var out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        root.render(into: &out, depth: 0)
        return out
    }
}

/// Escaping for XML (SVG, HTML) text and attribute values.
enum XMLText {
    /// Escapes `& < >` (and `" '` in attributes) and replaces characters XML 1.0 forbids
    /// (C0 controls other than tab, LF, CR; U+FFFE, U+FFFF) with U+FFFD, so any run name or
    /// response text gives a well-formed document.
    static func escape(_ text: String, attribute: Bool) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"" where attribute: out += "&quot;"
            case "'" where attribute: out += "&#39;"
            case "\n" where attribute: out += "&#10;"
            case "\r": out += "&#13;"
            case "\t", "\n": out.unicodeScalars.append(scalar)
            default:
                if scalar.value < 0x20 || scalar.value == 0xFFFE || scalar.value == 0xFFFF {
                    out += "\u{FFFD}"
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out
    }
}
