import Base
import Foundation

/// Generated texts kept on disk, so a probe set is generated once and rebuilt identically.
/// File: `{"version":1,"entries":{"<sha256 hex>":"<text>",...}}`, keys sorted; written atomically.
final class GenerationCache {
    /// The cache file; `nil` keeps the cache in memory only.
    let path: String?
    private var entries: [String: String] = [:]
    private var dirty = false

    /// Opens `path` (a missing file is an empty cache); `nil` gives an in-memory cache.
    init(path: String?) throws(ProbesError) {
        self.path = path
        guard let path, FileManager.default.fileExists(atPath: path) else { return }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw .cache(file: path, reason: "cannot read it")
        }
        let value: JSONValue
        do {
            value = try JSONValue.parse(Substring(try TextFile.decode(data, source: path)))
        } catch let error as JSONParseError {
            throw .cache(file: path, reason: error.message)
        } catch {
            throw .cache(file: path, reason: "\(error)")
        }
        guard case let .object(top) = value, top["version"] == .number(1), case let .object(stored)? = top["entries"] else {
            throw .cache(file: path, reason: "expected {\"version\":1,\"entries\":{...}}")
        }
        for (key, text) in stored {
            guard case let .string(s) = text else {
                throw .cache(file: path, reason: "entry \(key) is \(text.typeName), expected a string")
            }
            entries[key] = s
        }
    }

    /// Number of cached texts.
    var count: Int { entries.count }

    /// The key of one generation: sha256 over the generator identity, the template, the seed, the
    /// prompt and the source text (the prompt matters for generators that read no field).
    static func key(identity: String, template: String, seed: UInt64, prompt: String, text: String) -> String {
        var h = SHA256()
        for part in [identity, template, String(seed), prompt, text] {
            h.update(String(part.utf8.count) + ":")
            h.update(part)
        }
        return SHA256.hexString(h.finalize())
    }

    subscript(key: String) -> String? {
        get { entries[key] }
        set {
            entries[key] = newValue
            dirty = true
        }
    }

    /// Writes the file if anything changed.
    func save() throws(ProbesError) {
        guard dirty, let path else { return }
        let body = entries.keys.sorted().map { jsonQuoted($0) + ":" + jsonQuoted(entries[$0]!) }.joined(separator: ",\n")
        let text = "{\"version\":1,\"entries\":{\n" + body + "\n}}\n"
        do {
            try AtomicFile.write(text, to: path, createFolders: true)
        } catch {
            throw .cache(file: path, reason: "cannot write it (\(error.reason))")
        }
        dirty = false
    }
}
