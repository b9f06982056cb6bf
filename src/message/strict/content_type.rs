//! The strict reader of one Content-Type field value (RFC 2045 §5.1).

use super::{amb, Ambiguous, ContentType};

fn is_tspecial(c: u8) -> bool {
    b"()<>@,;:\\\"/[]?=".contains(&c)
}

fn is_token_char(c: u8) -> bool {
    (33..=126).contains(&c) && !is_tspecial(c)
}

/// A position in a header field's value.
struct Cursor<'a> {
    value: &'a str,
    i: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.value.as_bytes().get(self.i).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            self.i += 1;
        }
    }

    /// Whitespace, then `c` (consumed) or false.
    fn eat(&mut self, c: u8) -> bool {
        self.skip_ws();
        let found = self.peek() == Some(c);
        if found {
            self.i += 1;
        }
        found
    }

    fn token(&mut self) -> &'a str {
        self.skip_ws();
        let s = self.i;
        while self.peek().is_some_and(is_token_char) {
            self.i += 1;
        }
        &self.value[s..self.i]
    }

    /// A quoted string after its opening quote: escapes resolved, folding
    /// line ends dropped.
    fn quoted(&mut self) -> Result<String, Ambiguous> {
        let b = self.value.as_bytes();
        let mut v = Vec::new();
        loop {
            match b.get(self.i) {
                None => return amb("an unterminated quoted parameter"),
                Some(b'"') => {
                    self.i += 1;
                    return Ok(String::from_utf8_lossy(&v).into_owned());
                }
                Some(b'\\') => {
                    let Some(&c) = b.get(self.i + 1) else {
                        return amb("an unterminated quoted parameter");
                    };
                    v.push(c);
                    self.i += 2;
                }
                Some(b'\r' | b'\n') => self.i += 1,
                Some(&c) => {
                    v.push(c);
                    self.i += 1;
                }
            }
        }
    }

    /// `attribute "=" value` after a `;`.
    fn parameter(&mut self) -> Result<(String, String), Ambiguous> {
        let name = self.token().to_ascii_lowercase();
        if name.is_empty() || !self.eat(b'=') {
            return amb("a malformed Content-Type parameter");
        }
        let value = if self.eat(b'"') {
            self.quoted()?
        } else {
            let v = self.token();
            if v.is_empty() {
                return amb("an empty Content-Type parameter");
            }
            v.to_string()
        };
        Ok((name, value))
    }
}

/// RFC 2045 Content-Type: `type/subtype *(";" attribute "=" value)`, with
/// whitespace around tokens and an optional trailing `;`. Comments are not
/// accepted: they are where parsers disagree most.
pub fn parse_content_type(value: &str) -> Result<ContentType, Ambiguous> {
    let mut c = Cursor { value, i: 0 };
    let t = c.token().to_ascii_lowercase();
    if t.is_empty() || !c.eat(b'/') {
        return amb("a Content-Type without type/subtype");
    }
    let st = c.token().to_ascii_lowercase();
    if st.is_empty() {
        return amb("a Content-Type without subtype");
    }
    let mut params: Vec<(String, String)> = Vec::new();
    loop {
        c.skip_ws();
        if c.peek().is_none() {
            break;
        }
        if !c.eat(b';') {
            return amb("unexpected text in a Content-Type field");
        }
        c.skip_ws();
        if c.peek().is_none() {
            break;
        }
        let (name, v) = c.parameter()?;
        let base = name.split('*').next().unwrap_or("");
        if params
            .iter()
            .any(|(n, _)| n == &name || n.split('*').next() == Some(base))
        {
            return amb(format!("the parameter {base} appears twice"));
        }
        params.push((name, v));
    }
    Ok(ContentType {
        mime_type: format!("{t}/{st}"),
        params,
    })
}
