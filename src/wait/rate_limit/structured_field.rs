//! Just enough of RFC 8941 structured fields for the rate-limit headers: lists and dictionaries of
//! items with parameters. Anything outside the grammar fails the whole field, as RFC 8941 requires.

use http::header::GetAll;
use http::HeaderValue;

/// A bare item; only integers and names are looked at.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Item<'a> {
    Integer(i64),
    /// A string's raw content (escapes left in) or a token.
    Name(&'a str),
    Other,
}

impl<'a> Item<'a> {
    pub(super) fn non_negative(&self) -> Option<u64> {
        match *self {
            Item::Integer(n) => u64::try_from(n).ok(),
            _ => None,
        }
    }

    pub(super) fn name(&self) -> Option<&'a str> {
        match *self {
            Item::Name(name) => Some(name),
            _ => None,
        }
    }
}

/// A list member (`key` is `None`) or a dictionary member.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Member<'a> {
    pub(super) key: Option<&'a str>,
    pub(super) item: Item<'a>,
    pub(super) params: Vec<(&'a str, Item<'a>)>,
}

impl<'a> Member<'a> {
    /// A parameter's value; a repeated key: the last one counts.
    pub(super) fn param(&self, key: &str) -> Option<&Item<'a>> {
        self.params
            .iter()
            .rev()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
    }
}

/// Every line of a field, as one list; `None` if any line does not parse.
pub(super) fn parse_field<'a>(lines: GetAll<'a, HeaderValue>) -> Option<Vec<Member<'a>>> {
    let mut members = Vec::new();
    for line in lines {
        let text = std::str::from_utf8(line.as_bytes()).ok()?;
        Parser { s: text, i: 0 }.members(&mut members)?;
    }
    Some(members)
}

struct Parser<'a> {
    s: &'a str,
    i: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.i).copied()
    }

    fn skip(&mut self, f: impl Fn(u8) -> bool) {
        while self.peek().is_some_and(&f) {
            self.i += 1;
        }
    }

    fn members(&mut self, out: &mut Vec<Member<'a>>) -> Option<()> {
        self.skip(|b| b == b' ');
        if self.peek().is_none() {
            return Some(()); // an empty line adds nothing
        }
        loop {
            out.push(self.member()?);
            self.skip(|b| b == b' ' || b == b'\t');
            match self.peek() {
                None => return Some(()),
                Some(b',') => {
                    self.i += 1;
                    self.skip(|b| b == b' ' || b == b'\t');
                    self.peek()?; // a trailing comma is an error
                }
                Some(_) => return None,
            }
        }
    }

    fn member(&mut self) -> Option<Member<'a>> {
        // A dictionary member starts with a key followed by '=' or ';' or ends; a key is also a
        // valid token, so `limit=10` and `"default";r=0` are told apart by what follows.
        let start = self.i;
        if self
            .peek()
            .is_some_and(|b| b.is_ascii_lowercase() || b == b'*')
        {
            let key = self.key()?;
            if self.peek() == Some(b'=') {
                self.i += 1;
                let item = self.bare_item()?;
                let params = self.params()?;
                return Some(Member {
                    key: Some(key),
                    item,
                    params,
                });
            }
            self.i = start;
        }
        let item = if self.peek() == Some(b'(') {
            self.inner_list()?;
            Item::Other
        } else {
            self.bare_item()?
        };
        let params = self.params()?;
        Some(Member {
            key: None,
            item,
            params,
        })
    }

    fn inner_list(&mut self) -> Option<()> {
        self.i += 1; // '('
        loop {
            self.skip(|b| b == b' ');
            if self.peek() == Some(b')') {
                self.i += 1;
                return Some(());
            }
            self.bare_item()?;
            self.params()?;
            if !matches!(self.peek(), Some(b' ' | b')')) {
                return None;
            }
        }
    }

    fn params(&mut self) -> Option<Vec<(&'a str, Item<'a>)>> {
        let mut params = Vec::new();
        while self.peek() == Some(b';') {
            self.i += 1;
            self.skip(|b| b == b' ');
            let key = self.key()?;
            let value = if self.peek() == Some(b'=') {
                self.i += 1;
                self.bare_item()?
            } else {
                Item::Other // boolean true
            };
            params.push((key, value));
        }
        Some(params)
    }

    fn key(&mut self) -> Option<&'a str> {
        let start = self.i;
        if !self
            .peek()
            .is_some_and(|b| b.is_ascii_lowercase() || b == b'*')
        {
            return None;
        }
        self.skip(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'.' | b'*')
        });
        Some(&self.s[start..self.i])
    }

    fn bare_item(&mut self) -> Option<Item<'a>> {
        match self.peek()? {
            b'-' | b'0'..=b'9' => self.number(),
            b'"' => self.string(),
            b'*' | b'A'..=b'Z' | b'a'..=b'z' => {
                let start = self.i;
                self.i += 1;
                self.skip(is_token_char);
                Some(Item::Name(&self.s[start..self.i]))
            }
            b':' => {
                self.i += 1;
                self.skip(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='));
                (self.peek() == Some(b':')).then(|| self.i += 1)?;
                Some(Item::Other)
            }
            b'?' => {
                self.i += 1;
                matches!(self.peek(), Some(b'0' | b'1')).then(|| self.i += 1)?;
                Some(Item::Other)
            }
            _ => None,
        }
    }

    /// `["-"] 1*15DIGIT` or `["-"] 1*12DIGIT "." 1*3DIGIT`.
    fn number(&mut self) -> Option<Item<'a>> {
        let start = self.i;
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        let digits_start = self.i;
        self.skip(|b| b.is_ascii_digit());
        let whole = self.i - digits_start;
        if whole == 0 {
            return None;
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            let fraction_start = self.i;
            self.skip(|b| b.is_ascii_digit());
            let fraction = self.i - fraction_start;
            return (whole <= 12 && (1..=3).contains(&fraction)).then_some(Item::Other);
        }
        if whole > 15 {
            return None;
        }
        self.s[start..self.i].parse().ok().map(Item::Integer)
    }

    fn string(&mut self) -> Option<Item<'a>> {
        self.i += 1; // the opening quote
        let start = self.i;
        loop {
            match self.peek()? {
                b'"' => {
                    let content = &self.s[start..self.i];
                    self.i += 1;
                    return Some(Item::Name(content));
                }
                b'\\' => {
                    self.i += 1;
                    matches!(self.peek(), Some(b'"' | b'\\')).then(|| self.i += 1)?;
                }
                0x20..=0x7e => self.i += 1,
                _ => return None,
            }
        }
    }
}

/// `tchar / ":" / "/"` (RFC 9110 §5.6.2, RFC 8941 §3.3.4).
fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~:/".contains(&b)
}
