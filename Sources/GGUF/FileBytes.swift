import Base

/// The bytes of a GGUF file (`Base.MappedFile`).
typealias FileBytes = MappedFile

extension MappedFile {
    /// Maps the GGUF at `path`; a failure is `GGUFError.cannotOpen`.
    convenience init(mapping path: String) throws {
        do {
            try self.init(path: path)
        } catch {
            throw GGUFError.cannotOpen(file: path, reason: error.reason)
        }
    }
}
