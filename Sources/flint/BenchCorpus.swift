/// The built-in tokenizer benchmark corpus: deterministic, ~1 MB, mixed like real traffic
/// (mostly English prose, some other scripts, code, numbers, URLs, emoji). A fixed-seed
/// generator glues seed sentences into texts of 1-12 sentences, so every run and every peer
/// (via `--write-corpus`) sees the same bytes.
enum BenchCorpus {
    static let seeds: [String] = [
        "The quick brown fox jumps over the lazy dog.",
        "Transformers process every token of a sequence in parallel, which is why batching matters so much for throughput.",
        "In 2023, the company reported revenue of $4.2 billion, up 17% year over year.",
        "She didn't know whether the train would arrive on time, so she called ahead.",
        "Please reset your password at https://example.com/account/reset?token=abc123 before Friday.",
        "Contact support@example.org or call +1 (555) 010-4477 between 9:00 and 17:30.",
        "Naïve café owners in Zürich serve crème brûlée and façade-shaped pastries.",
        "Über den Wolken muss die Freiheit wohl grenzenlos sein.",
        "El rápido zorro marrón salta sobre el perro perezoso; ¿quién lo habría pensado?",
        "Le cœur a ses raisons que la raison ne connaît point.",
        "Быстрая коричневая лиса прыгает через ленивую собаку.",
        "Η γρήγορη καφέ αλεπού πηδάει πάνω από τον τεμπέλη σκύλο.",
        "自然语言处理是人工智能的一个重要分支。",
        "東京は日本の首都で、人口は約1400万人です。",
        "빠른 갈색 여우가 게으른 개를 뛰어넘습니다.",
        "اللغة العربية من أكثر اللغات انتشارا في العالم.",
        "עברית היא שפה שמית.",
        "हिन्दी भारत की राजभाषा है।",
        "ภาษาไทยเป็นภาษาที่มีวรรณยุกต์",
        "Great job everyone 🎉🎉 see you next week 👋🏽 ❤️",
        "def forward(self, x):\n    return self.norm(x + self.attn(x))",
        "for (int i = 0; i < n; ++i) { sum += a[i] * b[i]; }",
        "{\"id\": 42, \"name\": \"flint\", \"tags\": [\"fast\", \"exact\"]}",
        "The results were statistically significant (p < 0.001, n = 1,204).",
        "Q: What is the capital of Australia? A: Canberra, not Sydney.",
        "Once upon a time, in a kingdom far away, there lived a king who loved maps.",
        "Reviewers noted that the model's accuracy dropped sharply on out-of-distribution inputs.",
        "I'M NOT SHOUTING, I'm just excited!!! Aren't you???",
        "    Indented text\twith tabs\tand  double  spaces.  ",
        "Version 3.10.4 fixes CVE-2024-12345 and improves start-up time by ~30 ms.",
    ]

    static func make(bytes target: Int) -> [String] {
        var rng = SplitMix64(seed: 0x5EED_F117)
        var texts: [String] = []
        var total = 0
        while total < target {
            let sentences = 1 + Int(rng.next() % 12)
            var text = ""
            for k in 0..<sentences {
                if k > 0 { text += rng.next() % 7 == 0 ? "\n" : " " }
                text += seeds[Int(rng.next() % UInt64(seeds.count))]
                if rng.next() % 5 == 0 { text += " #\(rng.next() % 100_000)" }
            }
            total += text.utf8.count
            texts.append(text)
        }
        return texts
    }
}

/// A tiny deterministic generator (Steele et al., SplitMix64).
struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
