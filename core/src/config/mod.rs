//! Config model (being written).
