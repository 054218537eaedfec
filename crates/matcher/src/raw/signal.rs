//! Reading a whole signal body from raw bytes with the rules of
//! `Signal::parse`: the size limit, one JSON object with only the known
//! fields, `name` and `id` checked by the model's own functions, `source` a
//! string, `producer` an object of strings and numbers, `occurred_at` RFC
//! 3339, `payload` any JSON, and the whole document well-formed. The value
//! of `params` is left to the caller, which reads it with
//! [`super::params::Params`] when [`Envelope::next`] stops at it.
//!
//! As everywhere on the raw path, anything unusual (a repeated field, an
//! escaped field name, a field the model would refuse) is a [`Bail`]: the
//! model's parser then decides, so the verdict and the error are its own.

use std::borrow::Cow;

use signalbox_model::Limits;
use signalbox_model::signal::{parse_rfc3339, validate_id, validate_name};

use super::params::decode;
use super::scan::{Bail, Budget, Cursor, Scan, StrToken};

/// Where [`Envelope::next`] stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// At the value of `params` (an object: `{` is next).
    Params,
    /// After the signal's closing brace and trailing whitespace.
    End,
}

/// The fields of a signal, by bit.
const FIELDS: [&[u8]; 7] = [
    b"name",
    b"id",
    b"params",
    b"payload",
    b"source",
    b"producer",
    b"occurred_at",
];

/// A signal body being read.
pub(crate) struct Envelope<'a> {
    pub(crate) cur: Cursor<'a>,
    /// Fields seen so far (bits in the order of [`FIELDS`]).
    seen: u8,
    /// The signal's name, once read.
    pub(crate) name: Option<Cow<'a, str>>,
    /// Whether the object's first member is still to come.
    first: bool,
}

impl<'a> Envelope<'a> {
    /// Starts reading `body`: the size limit and the opening brace.
    pub(crate) fn open(body: &'a [u8], limits: &Limits) -> Scan<Envelope<'a>> {
        if body.len() > limits.max_message_bytes {
            return Err(Bail);
        }
        let mut cur = Cursor::new(body);
        cur.expect(b'{')?;
        Ok(Envelope {
            cur,
            seen: 0,
            name: None,
            first: true,
        })
    }

    /// Reads fields up to the value of `params` or the end of the signal.
    /// After [`Stop::Params`], the caller reads the params object and calls
    /// `next` again.
    pub(crate) fn next(&mut self) -> Scan<Stop> {
        loop {
            let close = if self.first {
                self.first = false;
                self.cur.ws() == Some(b'}')
            } else {
                match self.cur.ws() {
                    Some(b',') => {
                        self.cur.i += 1;
                        false
                    }
                    Some(b'}') => true,
                    _ => return Err(Bail),
                }
            };
            if close {
                self.cur.i += 1;
                self.cur.end()?;
                if self.name.is_none() {
                    return Err(Bail);
                }
                return Ok(Stop::End);
            }
            if self.cur.ws() != Some(b'"') {
                return Err(Bail);
            }
            let key = self.cur.string()?;
            if key.escaped {
                return Err(Bail);
            }
            let field = FIELDS
                .iter()
                .position(|f| *f == &self.cur.b[key.start..key.end])
                .ok_or(Bail)?;
            if self.seen & (1 << field) != 0 {
                return Err(Bail);
            }
            self.seen |= 1 << field;
            self.cur.expect(b':')?;
            match field {
                0 => {
                    let s = self.string()?.ok_or(Bail)?;
                    let name = self.text(s)?;
                    validate_name(&name).map_err(|_| Bail)?;
                    self.name = Some(name);
                }
                1 => {
                    if let Some(s) = self.string()? {
                        validate_id(&self.text(s)?).map_err(|_| Bail)?;
                    }
                }
                2 => match self.cur.ws() {
                    Some(b'n') => {
                        if self.cur.literal()? != crate::view::Leaf::Null {
                            return Err(Bail);
                        }
                    }
                    Some(b'{') => return Ok(Stop::Params),
                    _ => return Err(Bail),
                },
                3 => self.cur.skip(&mut Budget::NONE.clone(), 0, 1)?,
                4 => {
                    self.string()?;
                }
                5 => self.producer()?,
                _ => {
                    if let Some(s) = self.string()? {
                        parse_rfc3339(&self.text(s)?).map_err(|_| Bail)?;
                    }
                }
            }
        }
    }

    /// A string or `null` (`None`).
    fn string(&mut self) -> Scan<Option<StrToken>> {
        match self.cur.ws() {
            Some(b'"') => self.cur.string().map(Some),
            Some(b'n') => match self.cur.literal()? {
                crate::view::Leaf::Null => Ok(None),
                _ => Err(Bail),
            },
            _ => Err(Bail),
        }
    }

    /// The text of a string token.
    fn text(&self, s: StrToken) -> Scan<Cow<'a, str>> {
        if s.escaped {
            return decode(self.cur.b, s).map(Cow::Owned);
        }
        std::str::from_utf8(&self.cur.b[s.start..s.end])
            .map(Cow::Borrowed)
            .map_err(|_| Bail)
    }

    /// `producer`: `null`, or an object whose values are strings or numbers.
    fn producer(&mut self) -> Scan<()> {
        match self.cur.ws() {
            Some(b'n') => {
                if self.cur.literal()? != crate::view::Leaf::Null {
                    return Err(Bail);
                }
                return Ok(());
            }
            Some(b'{') => self.cur.i += 1,
            _ => return Err(Bail),
        }
        if self.cur.ws() == Some(b'}') {
            self.cur.i += 1;
            return Ok(());
        }
        loop {
            if self.cur.ws() != Some(b'"') {
                return Err(Bail);
            }
            self.cur.string()?;
            self.cur.expect(b':')?;
            match self.cur.ws() {
                Some(b'"') => {
                    self.cur.string()?;
                }
                Some(b'-' | b'0'..=b'9') => {
                    self.cur.number()?;
                }
                _ => return Err(Bail),
            }
            match self.cur.ws() {
                Some(b',') => self.cur.i += 1,
                Some(b'}') => {
                    self.cur.i += 1;
                    return Ok(());
                }
                _ => return Err(Bail),
            }
        }
    }
}
