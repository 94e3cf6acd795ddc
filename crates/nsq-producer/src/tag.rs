//! The data a router's policy attaches to a request.

use std::any::Any;
use std::fmt;

/// Data a policy attaches to a request; the router carries it and never reads it. Empty (no
/// allocation) for every request no policy has marked, and one pointer wide (the value is
/// boxed twice), so that it adds no more to a request than the one pointer an empty field
/// takes.
#[derive(Default)]
#[allow(
    clippy::redundant_allocation,
    reason = "a thin pointer keeps every request small"
)]
pub(crate) struct Tag(Option<Box<Box<dyn Any + Send>>>);

impl Tag {
    /// A tag holding `value`.
    pub(crate) fn new<T: Any + Send>(value: T) -> Self {
        Self(Some(Box::new(Box::new(value))))
    }

    /// What the tag holds, if it holds a `T`.
    pub(crate) fn get<T: Any>(&self) -> Option<&T> {
        self.0.as_ref().and_then(|v| (***v).downcast_ref())
    }

    /// What the tag holds, made from `T::default()` if it holds nothing (or not a `T`).
    pub(crate) fn get_mut<T: Any + Send + Default>(&mut self) -> &mut T {
        if self.get::<T>().is_none() {
            *self = Self::new(T::default());
        }
        self.0
            .as_mut()
            .and_then(|v| (***v).downcast_mut())
            .expect("the tag was just given a value of this type")
    }
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() { "Tag(..)" } else { "Tag" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_holds_what_a_policy_put_in_it() {
        let mut tag = Tag::default();
        assert_eq!(tag.get::<u32>(), None);
        *tag.get_mut::<u32>() += 3;
        *tag.get_mut::<u32>() += 4;
        assert_eq!(tag.get::<u32>(), Some(&7));
        assert_eq!(tag.get::<String>(), None);
        assert_eq!(format!("{tag:?}"), "Tag(..)");
        assert_eq!(std::mem::size_of::<Tag>(), std::mem::size_of::<usize>());
    }
}
