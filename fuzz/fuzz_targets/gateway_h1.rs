//! The gateway's HTTP/1.1 path on arbitrary bytes: the chunked-body follower
//! and the rewrite of a replica's response head (see `h1::fuzz`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| tug_gateway::fuzzing::h1(data));
