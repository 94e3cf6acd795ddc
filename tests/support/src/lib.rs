//! Test support for the NSQ workspace.
