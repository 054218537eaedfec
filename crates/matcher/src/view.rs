//! A read-only view of a signal's params, so that the evaluator and the index
//! walk run unchanged over two representations: the model's owned
//! [`Map`]/[`Value`] tree, and the borrowed projection the raw-bytes path
//! builds ([`crate::raw`]), which holds only the fields some pattern names.
//!
//! Invariant: a view answers exactly what the [`Value`] it stands for would:
//! the same keys with the same values, arrays in order, scalars as [`Leaf`]s;
//! [`ValueView::to_value`] gives that value back (used only for custom
//! operators, whose interface takes a [`Value`]).

use std::borrow::Cow;

use signalbox_model::{Map, Value};

/// A scalar of the params, borrowed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Leaf<'v> {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer that fits `i64`.
    Int(i64),
    /// Any other (finite) number.
    Float(f64),
    /// A string.
    Str(&'v str),
}

impl<'v> Leaf<'v> {
    /// The string inside, if this is a string.
    #[inline]
    pub(crate) fn as_str(self) -> Option<&'v str> {
        match self {
            Leaf::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The leaf as an owned value.
    pub(crate) fn to_value(self) -> Value {
        match self {
            Leaf::Null => Value::Null,
            Leaf::Bool(b) => Value::Bool(b),
            Leaf::Int(i) => Value::Int(i),
            Leaf::Float(f) => Value::Float(f),
            Leaf::Str(s) => Value::String(s.to_string()),
        }
    }
}

/// What a value is: a scalar, an object, or an array.
pub(crate) enum Shape<'v, V: ValueView<'v>> {
    /// A scalar.
    Leaf(Leaf<'v>),
    /// An object.
    Object(V::Obj),
    /// An array, element by element.
    Array(V::Items),
}

/// One value of the params.
pub(crate) trait ValueView<'v>: Copy {
    /// The object type of this view.
    type Obj: ObjView<'v, Val = Self>;
    /// An iterator over an array's elements.
    type Items: Iterator<Item = Self> + Clone;
    /// Which kind of value this is.
    fn shape(self) -> Shape<'v, Self>;
    /// The value as a model [`Value`] (borrowed when the view holds one).
    fn to_value(self) -> Cow<'v, Value>;
}

/// One object of the params.
pub(crate) trait ObjView<'v>: Copy {
    /// The value type of this view.
    type Val: ValueView<'v, Obj = Self>;
    /// An iterator over the object's entries.
    type Entries: Iterator<Item = (&'v str, Self::Val)>;
    /// The value under `key`.
    fn get(self, key: &str) -> Option<Self::Val>;
    /// Number of entries.
    fn len(self) -> usize;
    /// The entries, in any order.
    fn entries(self) -> Self::Entries;
}

impl<'v> ValueView<'v> for &'v Value {
    type Obj = &'v Map;
    type Items = std::slice::Iter<'v, Value>;

    #[inline(always)]
    fn shape(self) -> Shape<'v, Self> {
        match self {
            Value::Null => Shape::Leaf(Leaf::Null),
            Value::Bool(b) => Shape::Leaf(Leaf::Bool(*b)),
            Value::Int(i) => Shape::Leaf(Leaf::Int(*i)),
            Value::Float(f) => Shape::Leaf(Leaf::Float(*f)),
            Value::String(s) => Shape::Leaf(Leaf::Str(s)),
            Value::Array(items) => Shape::Array(items.iter()),
            Value::Object(m) => Shape::Object(m),
        }
    }

    fn to_value(self) -> Cow<'v, Value> {
        Cow::Borrowed(self)
    }
}

/// The entries of a [`Map`] as `(&str, &Value)`.
pub(crate) type MapEntries<'v> =
    std::iter::Map<std::collections::btree_map::Iter<'v, String, Value>, MapEntry<'v>>;
type MapEntry<'v> = fn((&'v String, &'v Value)) -> (&'v str, &'v Value);

/// Up to this many entries, [`ObjView::get`] on a [`Map`] scans.
const SCAN_UP_TO: usize = 16;

impl<'v> ObjView<'v> for &'v Map {
    type Val = &'v Value;
    type Entries = MapEntries<'v>;

    /// Small maps are scanned, comparing lengths before bytes: most keys
    /// differ in length, and a tree search compares bytes at every step.
    #[inline]
    fn get(self, key: &str) -> Option<&'v Value> {
        if self.len() <= SCAN_UP_TO {
            self.iter()
                .find(|(k, _)| k.len() == key.len() && k.as_bytes() == key.as_bytes())
                .map(|(_, v)| v)
        } else {
            Map::get(self, key)
        }
    }

    #[inline]
    fn len(self) -> usize {
        Map::len(self)
    }

    fn entries(self) -> Self::Entries {
        self.iter().map(|(k, v)| (k.as_str(), v))
    }
}
