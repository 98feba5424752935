//! The frozen result classes are declared from one field list each, never copied by hand.
//!
//! [`mirror!`] declares a frozen `#[pyclass]` whose listed fields are read-only attributes, and
//! its `From<&core value>` conversion. A field is cloned from the core value's field of the same
//! name, or computed by `= expression` from the core value (bound to the name given after `as`).
//! `keep name` also keeps the whole core value in a hidden field, for methods that compute with
//! it. The `.pyi` stubs stay hand-written (they carry the docs) and stubtest checks them.

macro_rules! mirror {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident from $core:ty as $r:ident $(, keep $keep:ident)? {
            $( $(#[$fmeta:meta])* $field:ident : $ty:ty $(= $conv:expr)? ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[pyo3::pyclass(frozen, module = "rawcore._core")]
        $vis struct $name {
            $( $(#[$fmeta])* #[pyo3(get)] $field: $ty, )*
            $( $keep: $core, )?
        }

        impl From<&$core> for $name {
            fn from($r: &$core) -> Self {
                Self {
                    $( $field: $crate::mirror::mirror_field!($r, $field $(, $conv)?), )*
                    $( $keep: ::core::clone::Clone::clone($r), )?
                }
            }
        }
    };
}

/// One field of a [`mirror!`] conversion: the given expression, or a clone of the same field.
macro_rules! mirror_field {
    ($r:ident, $field:ident) => {
        ::core::clone::Clone::clone(&$r.$field)
    };
    ($r:ident, $field:ident, $conv:expr) => {
        $conv
    };
}

pub(crate) use {mirror, mirror_field};
