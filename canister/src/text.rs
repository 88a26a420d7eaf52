//! Cutting texts to a byte bound on a character boundary, for errors, renders and reports
//! that must stay within a reply's limits.

/// The longest prefix of `text` of at most `max` bytes that ends on a character boundary.
pub fn prefix(text: &str, max: usize) -> &str {
    let mut end = max.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// `text` when it has at most `max` bytes, else its prefix followed by `...`, `max` bytes in
/// all (`max` is at least 3).
pub fn cut_with_ellipsis(text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    format!("{}...", prefix(&text, max - 3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_land_on_character_boundaries_within_the_bound() {
        assert_eq!(prefix("héllo", 2), "h");
        assert_eq!(prefix("héllo", 3), "hé");
        assert_eq!(prefix("abc", 10), "abc");
        assert_eq!(cut_with_ellipsis("abcdef".into(), 6), "abcdef");
        assert_eq!(cut_with_ellipsis("abcdefg".into(), 6), "abc...");
        let cut = cut_with_ellipsis("ééééé".into(), 7);
        assert!(cut.len() <= 7 && cut.ends_with("..."), "{cut}");
    }
}
