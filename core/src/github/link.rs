//! Pagination through GitHub's `Link` header.
//!
//! Only the `page` or `cursor` value of the `rel="next"` link is taken; the next request is
//! rebuilt on the configured API base, so a `Link` pointing at another host can never receive
//! our token.

/// Where the next page starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NextPage {
    /// Numbered pages (`page=N`): runners.
    Page(u32),
    /// Opaque cursors (`cursor=...`): webhook deliveries.
    Cursor(String),
}

impl NextPage {
    /// The query parameter to append (`page=2`, `cursor=...`), already encoded as received.
    pub fn query(&self) -> String {
        match self {
            NextPage::Page(n) => format!("page={n}"),
            NextPage::Cursor(c) => format!("cursor={c}"),
        }
    }
}

/// Reads the `rel="next"` link of a `Link` header, if there is one with a page or cursor.
pub fn next_page(link_header: Option<&str>) -> Option<NextPage> {
    let header = link_header?;
    for part in header.split(',') {
        let mut pieces = part.split(';');
        let target = pieces.next()?.trim();
        let is_next = pieces.any(|p| {
            let p = p.trim();
            p == "rel=\"next\"" || p == "rel=next"
        });
        if !is_next {
            continue;
        }
        let url = target.strip_prefix('<')?.strip_suffix('>')?;
        let (_, query) = url.split_once('?')?;
        let mut cursor = None;
        let mut page = None;
        for pair in query.split('&') {
            match pair.split_once('=') {
                Some(("cursor", v)) if !v.is_empty() && is_url_safe(v) => {
                    cursor = Some(v.to_owned())
                }
                Some(("page", v)) => page = v.parse::<u32>().ok(),
                _ => {}
            }
        }
        return cursor.map(NextPage::Cursor).or(page.map(NextPage::Page));
    }
    None
}

/// A cursor goes back into a query string verbatim, so it may hold only characters that
/// cannot change the URL's shape.
fn is_url_safe(v: &str) -> bool {
    v.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'%' | b'+'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_next_cursor_and_page() {
        let h = "<https://api.github.com/repos/o/r/hooks/1/deliveries?per_page=100&cursor=v1_12>; rel=\"next\", <https://api.github.com/repos/o/r/hooks/1/deliveries?per_page=100&cursor=v1_9>; rel=\"prev\"";
        assert_eq!(next_page(Some(h)), Some(NextPage::Cursor("v1_12".into())));
        let h = "<https://api.github.com/repositories/1/actions/runners?per_page=100&page=1>; rel=\"prev\", <https://api.github.com/repositories/1/actions/runners?per_page=100&page=3>; rel=\"next\", <https://x?page=9>; rel=\"last\"";
        assert_eq!(next_page(Some(h)), Some(NextPage::Page(3)));
    }

    #[test]
    fn no_next_or_garbage_means_done() {
        assert_eq!(next_page(None), None);
        assert_eq!(next_page(Some("")), None);
        assert_eq!(next_page(Some("<https://x?page=1>; rel=\"prev\"")), None);
        assert_eq!(next_page(Some("https://x?page=2; rel=\"next\"")), None);
        assert_eq!(
            next_page(Some("<https://x?per_page=5>; rel=\"next\"")),
            None
        );
        assert_eq!(
            next_page(Some("<https://x?cursor=a/../b>; rel=\"next\"")),
            None
        );
    }
}
