//! The HTML sanitizer policy and the cost bound checked before it runs.

use std::collections::{HashMap, HashSet};

use super::{MAX_HTML_DEPTH, MAX_HTML_TAGS};

/// The elements kept in sanitized HTML: text structure and formatting,
/// nothing that loads, runs or submits anything.
const ALLOWED_TAGS: &[&str] = &[
    "p",
    "br",
    "div",
    "span",
    "b",
    "i",
    "u",
    "s",
    "strong",
    "em",
    "small",
    "big",
    "sub",
    "sup",
    "code",
    "pre",
    "tt",
    "kbd",
    "samp",
    "var",
    "blockquote",
    "q",
    "cite",
    "abbr",
    "dfn",
    "mark",
    "del",
    "ins",
    "strike",
    "center",
    "font",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "ul",
    "ol",
    "li",
    "dl",
    "dt",
    "dd",
    "table",
    "thead",
    "tbody",
    "tfoot",
    "tr",
    "td",
    "th",
    "caption",
    "colgroup",
    "col",
    "address",
    "article",
    "aside",
    "footer",
    "header",
    "nav",
    "section",
    "main",
    "figure",
    "figcaption",
    "details",
    "summary",
    "bdi",
    "bdo",
    "ruby",
    "rt",
    "rp",
    "wbr",
];

/// The sanitizer policy: formatting and tables only. No element that loads
/// or submits anything, no attribute that takes a URL or CSS.
fn sanitizer() -> ammonia::Builder<'static> {
    let tags: HashSet<&'static str> = ALLOWED_TAGS.iter().copied().collect();
    let cell: HashSet<&'static str> = [
        "colspan", "rowspan", "align", "valign", "width", "height", "nowrap",
    ]
    .into_iter()
    .collect();
    let mut attrs: HashMap<&'static str, HashSet<&'static str>> = HashMap::new();
    attrs.insert("td", cell.clone());
    attrs.insert("th", cell);
    attrs.insert(
        "table",
        ["border", "cellpadding", "cellspacing", "width", "align"]
            .into_iter()
            .collect(),
    );
    for t in ["col", "colgroup"] {
        attrs.insert(t, ["span", "width", "align"].into_iter().collect());
    }
    for t in ["tr", "thead", "tbody", "tfoot"] {
        attrs.insert(t, ["align", "valign"].into_iter().collect());
    }
    for t in ["p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "caption"] {
        attrs.insert(t, ["align"].into_iter().collect());
    }
    attrs.insert(
        "hr",
        ["width", "size", "align", "noshade"].into_iter().collect(),
    );
    attrs.insert("ol", ["start", "type", "reversed"].into_iter().collect());
    attrs.insert("li", ["value", "type"].into_iter().collect());
    attrs.insert("font", ["color", "size", "face"].into_iter().collect());
    let mut b = ammonia::Builder::empty();
    b.tags(tags)
        .tag_attributes(attrs)
        .generic_attributes(["title", "lang", "dir"].into_iter().collect())
        .clean_content_tags(["script", "style", "title"].into_iter().collect())
        .url_schemes(HashSet::new())
        .url_relative(ammonia::UrlRelative::Deny)
        .link_rel(None)
        .strip_comments(true);
    b
}

/// Elements without an end tag.
const VOID: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source",
    "track", "wbr", "keygen",
];

/// Whether HTML nests deeper than [`MAX_HTML_DEPTH`] or has more than
/// [`MAX_HTML_TAGS`] start tags, estimated from the tags alone (an upper
/// bound: elements the parser closes implicitly count as open).
pub(super) fn too_complex(html: &str) -> bool {
    let b = html.as_bytes();
    let (mut depth, mut tags) = (0usize, 0usize);
    let mut i = 0;
    while i + 1 < b.len() {
        if b[i] != b'<' {
            i += 1;
            continue;
        }
        if b[i + 1] == b'/' {
            depth = depth.saturating_sub(1);
            i += 2;
            continue;
        }
        if !b[i + 1].is_ascii_alphabetic() {
            i += 1;
            continue;
        }
        let start = i + 1;
        let mut end = start;
        while end < b.len() && b[end].is_ascii_alphanumeric() {
            end += 1;
        }
        let name = html[start..end].to_ascii_lowercase();
        tags += 1;
        if !VOID.contains(&name.as_str()) {
            depth += 1;
        }
        if depth > MAX_HTML_DEPTH || tags > MAX_HTML_TAGS {
            return true;
        }
        i = end;
    }
    false
}

/// Sanitize HTML text (already decoded to Unicode).
pub fn sanitize_html(html: &str) -> String {
    sanitizer().clean(html).to_string()
}
