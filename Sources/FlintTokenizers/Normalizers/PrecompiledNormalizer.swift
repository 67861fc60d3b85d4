/// SentencePiece's normalization (e.g. `nmt_nfkc`) from the `precompiled_charsmap` of a
/// `tokenizer.json`, exactly as Hugging Face's `Precompiled` normalizer applies it:
/// for each extended grapheme cluster shorter than 6 UTF-8 bytes, the replacement of the shortest
/// map key that prefixes it replaces the whole cluster; otherwise each scalar of the cluster is
/// looked up alone. HF's own comment calls this "weird" but it is what XLM-R, mBART and Marian
/// were checked against, so Flint copies it, alignment quirks included (see `transform`).
///
/// Clusters come from Swift's `Character`, HF's from the `unicode-segmentation` crate; both
/// follow UAX #29 and differ only where their Unicode versions do.
public struct PrecompiledNormalizer: Normalizer {
    let map: PrecompiledCharsMap

    public init(base64 charsmap: String, path: String) throws(TokenizerError) {
        map = try PrecompiledCharsMap(base64: charsmap, path: path)
    }

    public func normalize(_ text: inout NormalizedText) {
        guard !text.isEmpty else { return }
        var view = String.UnicodeScalarView()
        view.append(contentsOf: text.scalars)
        var changes: [NormalizedText.Change] = []
        changes.reserveCapacity(text.count)
        var modified = false
        var utf8: [UInt8] = []
        for cluster in String(view) {
            utf8.removeAll(keepingCapacity: true)
            utf8.append(contentsOf: cluster.utf8)
            if utf8.count < 6, let replacement = map.replacement(for: utf8) {
                modified = true
                Self.replace(&changes, oldCount: cluster.unicodeScalars.count, with: replacement)
                continue
            }
            for s in cluster.unicodeScalars {
                if let replacement = map.replacement(for: UTF8.encode(s)!) {
                    modified = true
                    Self.replace(&changes, oldCount: 1, with: replacement)
                } else {
                    changes.append(.init(s, 0))
                }
            }
        }
        if modified { text.transform(changes, initialOffset: 0) }
    }

    /// HF's `replace` helper: the new scalars replace the old ones one for one; extra new ones are
    /// insertions; fewer new ones fold the difference into the last change so far (which, for a
    /// removal, is the previous cluster's: HF's quirk, kept).
    static func replace(_ changes: inout [NormalizedText.Change], oldCount: Int, with new: Substring.UnicodeScalarView) {
        let first = changes.count
        for s in new { changes.append(.init(s, 0)) }
        let diff = (changes.count - first) - oldCount
        if diff > 0 {
            for i in (changes.count - diff)..<changes.count { changes[i].change = 1 }
        } else if diff < 0, !changes.isEmpty {
            changes[changes.count - 1].change += diff
        }
    }
}
