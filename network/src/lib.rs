//! The simulator as a local IC network: real clients (ic-agent, the `icp` CLI, the JS agent, a
//! browser through the HTTP gateway protocol) talk to canisters running on [`ic_sim::Sim`].
