//! What every tug process sets up to be seen: its log subscriber (stderr for
//! commands, a rotated file for the agent), and later its traces and metrics.

pub mod log;
