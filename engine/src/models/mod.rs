//! Model files, one per architecture family.
