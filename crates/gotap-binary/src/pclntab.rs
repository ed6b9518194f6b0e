//! TODO(owner: binary analysis)
