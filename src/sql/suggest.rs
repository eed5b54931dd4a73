//! "Did you mean …?": the closest of a few known names (options, connectors,
//! keywords) to one the user misspelt.

/// The candidate nearest to `word`, ignoring case, when it is near enough to
/// be a slip of the keyboard: at most two edits, or a quarter of a long name.
pub fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let word = word.to_lowercase();
    candidates
        .iter()
        .map(|c| (levenshtein(&word, &c.to_lowercase()), *c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 4))
        .min()
        .map(|(_, c)| c)
}

/// Edit distance (insertions, deletions, substitutions) in characters.
pub fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swapped_letters_are_two_edits() {
        assert_eq!(levenshtein("gruop", "group"), 2);
        assert_eq!(levenshtein("kafak", "kafka"), 2);
        assert_eq!(levenshtein("", "abc"), 3);
    }

    #[test]
    fn the_nearest_close_candidate_wins() {
        let connectors = ["datagen", "file", "kafka", "nexmark", "socket"];
        assert_eq!(closest("kafak", &connectors), Some("kafka"));
        assert_eq!(closest("KAFKA", &connectors), Some("kafka"));
        assert_eq!(closest("postgres", &connectors), None);
    }
}
