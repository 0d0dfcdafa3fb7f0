//! Locating a block's old lines in a file under the matching rules.
